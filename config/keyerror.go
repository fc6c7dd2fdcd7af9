package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dwsnotify/dws_notify/signature"
)

// ParseKey parses key material: a private key when private, else a
// public one. Its error is KeyRefusal's.
func ParseKey(material string, private bool) error {
	var err error
	if private {
		_, err = signature.ParsePrivateKey(material)
	} else {
		_, err = signature.ParsePublicKey(material)
	}
	return KeyRefusal(material, err)
}

// KeyRefusal is the error about key material that package signature
// refused (err, a *signature.KeyError), as an operator reads it: the
// problem without the package's "signature: " prefix and, when the
// material looks like a file path (LooksLikePath) and is too short to be
// a key of MinKeyBits in any encoding, the {file.…} placeholder that
// reads the file. errors.As still finds the *signature.KeyError. Any
// other err (nil included) is returned as it is. material is what was
// configured, not what a placeholder resolved to; the error quotes it
// only when it has a character Base64 never has.
func KeyRefusal(material string, err error) error {
	var ke *signature.KeyError
	if !errors.As(err, &ke) {
		return err
	}
	r := &keyRefusal{ke: ke}
	// A 2048-bit RSA key takes 392 Base64 characters at the least.
	if path := strings.TrimSpace(material); LooksLikePath(path) && len(path) <= 256 {
		switch {
		case !strings.ContainsAny(path, "._-~"):
			r.hint = "it looks like a file path: the setting takes the key itself; to read it from a file write {file.<path>}"
		case strings.HasPrefix(path, "~"):
			r.hint = fmt.Sprintf("%q looks like a file path: the setting takes the key itself; to read it from the file write {file.<absolute path>} (~ is not expanded)", path)
		default:
			r.hint = fmt.Sprintf("%q looks like a file path: the setting takes the key itself; to read it from the file write {file.%s}", path, path)
		}
	}
	return r
}

type keyRefusal struct {
	ke   *signature.KeyError
	hint string
}

func (e *keyRefusal) Error() string {
	if e.hint == "" {
		return e.ke.Problem
	}
	return e.ke.Problem + "; " + e.hint
}

func (e *keyRefusal) Unwrap() error { return e.ke }

// LooksLikePath reports whether a setting's value looks like a file path
// rather than material: one line that starts with /, ./, ../ or ~, or
// ends in .pem, .b64, .der, .key or .pub.
func LooksLikePath(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return false
	}
	for _, p := range []string{"/", "./", "../", "~"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	lower := strings.ToLower(s)
	for _, ext := range []string{".pem", ".b64", ".der", ".key", ".pub"} {
		if strings.HasSuffix(lower, ext) {
			return true
		}
	}
	return false
}

// Describe names the handler the way its config does, for the errors of
// its provisioning and its warnings: its Client-Ids and APIs with their
// paths ("client_id 2188… (api addPaymentMethod at /dws/add)"). A config
// with several sites has several handlers; this tells the operator which
// one a message is about. It is bounded: at most three Client-Ids and four
// APIs, each value cut at 64 bytes.
func (h *Handler) Describe() string {
	ids := make([]string, len(h.ClientID))
	for i, id := range h.ClientID {
		ids[i] = clip(id)
	}
	apis := make([]string, len(h.API))
	for i, a := range h.API {
		apis[i] = clip(a.Name)
		if a.Path != "" {
			apis[i] += " at " + clip(a.Path)
		}
	}
	return listOf("client_id", ids, 3) + " (" + listOf("api", apis, 4) + ")"
}

// listOf is what followed by at most max items, saying how many more
// there are, or "no " and what.
func listOf(what string, items []string, max int) string {
	switch {
	case len(items) == 0:
		return "no " + what
	case len(items) > max:
		return fmt.Sprintf("%s %s and %d more", what, strings.Join(items[:max], ", "), len(items)-max)
	}
	return what + " " + strings.Join(items, ", ")
}

// clip quotes a value that is not plain printable text and cuts it at 64
// bytes.
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == ' ' {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

// KeySource names where a key setting's material comes from, for an
// error about that material: the placeholder when the setting is exactly
// one {file.*} or {env.*} placeholder (a path or a variable's name, which
// the operator wrote and which tells two rotated key files apart), else
// "". Material written inline is never quoted: it may be a private key.
func KeySource(setting string) string {
	s := strings.TrimSpace(setting)
	if len(s) > 258 || !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") || strings.ContainsAny(s[1:len(s)-1], "{}\r\n") {
		return ""
	}
	if name := s[1 : len(s)-1]; strings.HasPrefix(name, "file.") || strings.HasPrefix(name, "env.") {
		return s
	}
	return ""
}
