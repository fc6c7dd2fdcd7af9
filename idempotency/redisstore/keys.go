package redisstore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// recordMarker follows the prefix in every record key, so other kinds of
// keys can share the prefix later and Scan matches records only.
const recordMarker = "r:"

// escapes reports, for each byte value, whether keyField escapes it: '%'
// (the escape character), ':' (the field separator), '{' and '}' (Redis
// Cluster hash-tag delimiters, so that only the prefix can carry a hash tag),
// the glob metacharacters '*', '?', '[', ']' and '\' (so a field can be
// pasted into a SCAN MATCH pattern as it is), space, control characters and
// every byte outside printable ASCII.
var escapes = func() (t [256]bool) {
	for i := range t {
		t[i] = i <= ' ' || i >= 0x7f
	}
	for _, c := range "%:{}*?[]\\" {
		t[c] = true
	}
	return t
}()

const upperHex = "0123456789ABCDEF"

// appendField appends f to dst with every byte that escapes marks written as
// %XX (two upper-case hex digits). Any other byte is copied, so the usual
// client ids, API names and request ids stay readable as they are.
func appendField(dst []byte, f string) []byte {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if escapes[c] {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// errBadKeyName is wrapped (with idempotency.ErrCorruptRecord) by
// decodeRecordKey's errors.
var errBadKeyName = errors.New("key name is not a record key of this store")

// unescapeField reverses appendField. It accepts only the canonical form
// appendField produces: every byte that must be escaped is escaped, with
// upper-case hex digits, and no other byte is. One key therefore has
// exactly one name.
func unescapeField(s string) (string, error) {
	if !strings.Contains(s, "%") {
		for i := 0; i < len(s); i++ {
			if escapes[s[i]] {
				return "", fmt.Errorf("unescaped byte 0x%02x", s[i])
			}
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if escapes[c] {
				return "", fmt.Errorf("unescaped byte 0x%02x", c)
			}
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated escape")
		}
		hi, lo := strings.IndexByte(upperHex, s[i+1]), strings.IndexByte(upperHex, s[i+2])
		if hi < 0 || lo < 0 {
			return "", errors.New("escape is not two upper-case hex digits")
		}
		d := byte(hi<<4 | lo)
		if !escapes[d] {
			return "", fmt.Errorf("byte 0x%02x escaped although it needs no escape", d)
		}
		b = append(b, d)
		i += 2
	}
	return string(b), nil
}

// probeKey is the key ProbeDurability writes under prefix: no record key
// (those follow the prefix with recordMarker) and no queue key.
func probeKey(prefix string) string { return prefix + "h:probe" }

// recordKey returns the Redis key of k under prefix:
//
//	<prefix>r:<ClientID>:<API>:<RequestID>
//
// with each field escaped by appendField.
func recordKey(prefix string, k idempotency.Key) string {
	b := make([]byte, 0, len(prefix)+len(recordMarker)+len(k.ClientID)+len(k.API)+len(k.RequestID)+8)
	b = append(b, prefix...)
	b = append(b, recordMarker...)
	b = appendField(b, k.ClientID)
	b = append(b, ':')
	b = appendField(b, k.API)
	b = append(b, ':')
	b = appendField(b, k.RequestID)
	return string(b)
}

// decodeRecordKey parses a key made by recordKey with the same prefix. The
// error wraps idempotency.ErrCorruptRecord: a key under the store's record
// prefix that does not decode was not written by this store.
func decodeRecordKey(prefix, name string) (idempotency.Key, error) {
	rest, ok := strings.CutPrefix(name, prefix+recordMarker)
	if !ok {
		return idempotency.Key{}, fmt.Errorf("%w: %w: missing prefix", idempotency.ErrCorruptRecord, errBadKeyName)
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 {
		return idempotency.Key{}, fmt.Errorf("%w: %w: %d fields, want 3", idempotency.ErrCorruptRecord, errBadKeyName, len(parts))
	}
	var fields [3]string
	for i, p := range parts {
		f, err := unescapeField(p)
		if err != nil {
			return idempotency.Key{}, fmt.Errorf("%w: %w: field %d: %v", idempotency.ErrCorruptRecord, errBadKeyName, i+1, err)
		}
		fields[i] = f
	}
	k := idempotency.Key{ClientID: fields[0], API: fields[1], RequestID: fields[2]}
	if err := idempotency.ValidateKey(k); err != nil {
		return idempotency.Key{}, fmt.Errorf("%w: %w: %v", idempotency.ErrCorruptRecord, errBadKeyName, err)
	}
	return k, nil
}

// globEscape escapes the SCAN MATCH metacharacters in s with a backslash,
// so s matches only itself.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
