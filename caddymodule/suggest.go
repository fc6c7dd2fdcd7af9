package caddymodule

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dwsnotify/dws_notify/config"
)

// errUnknown is the Caddyfile error about a name that no known one of a
// block matches (what: "unknown subdirective", "store redis: unknown
// option", ...), at the dispenser's line: with "did you mean" when one
// known name is a likely typo of it, else with the known names.
func errUnknown(d *caddyfile.Dispenser, what, name string, known []string) error {
	if guess := config.Closest(name, known); guess != "" {
		return d.Errf("%s %q; did you mean %s?", what, name, guess)
	}
	return d.Errf("%s %s (known: %s)", what, shownToken(name), strings.Join(known, ", "))
}

// maxShownToken bounds a token an error quotes.
const maxShownToken = 40

// shownToken is a Caddyfile token as an error about it may quote it: as
// it is when it reads as a name or a number, else only its length. A
// key pasted without backticks is split into tokens, one per line, and
// each line of it would otherwise be quoted in the error and the logs.
func shownToken(tok string) string {
	if len(tok) <= maxShownToken && strings.IndexFunc(tok, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' || r == '.')
	}) < 0 {
		return strconv.Quote(tok)
	}
	return fmt.Sprintf("(a %d-byte token that is not a name: key material written without backticks?)", len(tok))
}
