package caddymodule

import (
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
	return d.Errf("%s %q (known: %s)", what, name, strings.Join(known, ", "))
}
