package notification

import (
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// FieldError is why a body was rejected: the field path and the rule it
// breaks. It never carries a value from the body, only keys, so it is safe
// to log and to send back in the envelope.
type FieldError struct {
	// Path names the field: member keys joined by dots, array elements as
	// [i], for example paymentMethodDetail.card.expiryYear or extra[2].a.
	// A key that is not plain ASCII letters, digits, '_' or '-' is written
	// as ["key"] with JSON escapes (controls, format characters such as
	// bidi overrides and zero-width ones, and line and paragraph
	// separators as \uXXXX), long keys and paths are cut short with
	// "…". Problems with the body as a whole, and with keys at its root,
	// have the path "body".
	Path string
	// Rule is what the field breaks, for example "must be a JSON string",
	// "is required", "must be at most 64 characters".
	Rule string
}

// Error returns the path and the rule separated by a space: the message the
// envelope carries. Paths are cut to their last 192 bytes, so the message
// fits in the envelope's MaxMessageLength.
func (e *FieldError) Error() string { return e.Path + " " + e.Rule }

// Limits on how much of the sender's keys an error path shows.
const (
	maxKeyRunes  = 48
	maxPathBytes = 192
)

// appendPathKey appends key as a path segment: after a dot when it is plain
// and not the first segment, otherwise as ["key"].
func appendPathKey(dst []byte, key []byte) []byte {
	cut := len(key)
	runes := 0
	for i := 0; i < len(key); {
		if runes == maxKeyRunes {
			cut = i
			break
		}
		_, size := utf8.DecodeRune(key[i:])
		i += size
		runes++
	}
	if plainKey(key[:cut]) {
		if len(dst) > 0 {
			dst = append(dst, '.')
		}
		dst = append(dst, key[:cut]...)
		if cut < len(key) {
			dst = append(dst, "…"...)
		}
		return dst
	}
	dst = append(dst, '[', '"')
	for i := 0; i < cut; {
		r, size := utf8.DecodeRune(key[i:])
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case invisible(r) || r == utf8.RuneError && size == 1:
			// The path reaches the answer and the log: what a terminal
			// or an editor would not show as it is goes escaped.
			dst = appendEscapedRune(dst, r)
		default:
			dst = append(dst, key[i:i+size]...)
		}
		i += size
	}
	if cut < len(key) {
		dst = append(dst, "…"...)
	}
	return append(dst, '"', ']')
}

// invisible reports whether a path shows r escaped: controls (Cc), format
// characters (Cf: bidi overrides, zero-width characters, BOM), line and
// paragraph separators (Zl, Zp), every space but U+0020 (Zs: NBSP, hair
// space), what is not graphic at all (unassigned code points, private
// use), variation selectors (U+FE0F, U+E0100), and the other default
// ignorable code points, which render as nothing (the Hangul fillers
// U+115F and U+3164, the combining grapheme joiner U+034F). U+2800, the
// blank Braille pattern, is graphic and shows as a space: it is escaped
// too.
func invisible(r rune) bool {
	return r != ' ' && (!unicode.IsGraphic(r) ||
		unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zs, unicode.Zl, unicode.Zp,
			unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)) ||
		r == '\u2800'
}

// appendEscapedRune appends r as \uXXXX, or as a surrogate pair of them
// above U+FFFF.
func appendEscapedRune(dst []byte, r rune) []byte {
	if r > 0xFFFF {
		hi, lo := utf16.EncodeRune(r)
		return appendEscapedRune(appendEscapedRune(dst, hi), lo)
	}
	return append(dst, '\\', 'u', hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
}

// appendPathIndex appends an array index segment, [i].
func appendPathIndex(dst []byte, i int) []byte {
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, int64(i), 10)
	return append(dst, ']')
}

// plainKey reports whether key can stand in a path without quotes.
func plainKey(key []byte) bool {
	if len(key) == 0 {
		return false
	}
	for _, c := range key {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// finishPath turns a rendered path into the FieldError form: "body" when
// empty, and only its last maxPathBytes bytes, after "…", when longer.
func finishPath(p []byte) string {
	if len(p) == 0 {
		return "body"
	}
	if len(p) <= maxPathBytes {
		return string(p)
	}
	tail := p[len(p)-maxPathBytes:]
	for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
		tail = tail[1:]
	}
	return "…" + string(tail)
}
