package notification

import (
	"encoding/hex"
	"strings"
)

// Family is a family of notify APIs: the documents their rules come from
// and the answer their sender expects. Both families share the signature
// scheme, the string typing and the envelope; the envelope's message key is
// spelt as each family's documents spell it.
type Family uint8

// The families.
const (
	// DWS is Alipay's Digital Wallet Solution: notify addPaymentMethod and
	// notify removePaymentMethod (the seed documents).
	DWS Family = iota + 1
	// Antom is Alipay's cross-border acquiring (AMS): notifyPayment,
	// notifyCapture and the other notifications docs/antom.md lists.
	Antom
)

// String returns "dws" or "antom", for logs and metric labels.
func (f Family) String() string {
	switch f {
	case DWS:
		return "dws"
	case Antom:
		return "antom"
	}
	return "unknown"
}

// MessageField returns the spelling of the answer's message key in the
// family's documents: resultMsg in the DWS seeds, resultMessage in the
// Antom reference. It is the default the answer uses; an operator's
// setting overrides it.
func (f Family) MessageField() MessageField {
	if f == Antom {
		return ResultMessage
	}
	return ResultMsg
}

// The idempotency key.
//
// Result.Key names one notification: resends of it share the key, two
// different notifications never do. Each API's spec lists the string fields
// whose values make up the key (docs/antom.md gives each choice and its
// source). With one field and nothing else, the key is that field's decoded
// value as it is: a DWS key is the requestId, byte for byte. Otherwise the
// key is the fields' values in spec order, separated by ':', each value
// with '%' written as "%25" and ':' as "%3A" (so the parts can be told
// apart again), an absent optional field giving an empty part; a spec with
// keyContent adds, as a last part, the first 16 bytes of the body's
// fingerprint in lower-case hex. For example notifyPayment's key is
//
//	2020010123456789XXXX:PAYMENT_RESULT:S
//
// The key travels to the backend in an HTTP header, so every key field is
// header-safe (field.headerSafe) and has a maximum length: newAPI checks
// that no key can exceed MaxKeyLength bytes.

// MaxKeyLength is the most bytes Result.Key can have, whatever the API.
const MaxKeyLength = 512

// ContentDigest stands for the content digest among KeyFields.
const ContentDigest = "(content digest)"

// keySeparator separates the parts of a composed key.
const keySeparator = ':'

// keyDigestBytes is how many bytes of the fingerprint a key carries.
const keyDigestBytes = 16

// apiKey is a spec's key compiled against the node tree.
type apiKey struct {
	nodes   []int32  // nodes of the key fields, in order
	paths   []string // their paths
	content bool     // the content digest is the last part
	raw     bool     // one required field and nothing else: the key is its value as it is
}

// compileKey checks and compiles s.key. Every key field must be a
// header-safe string field with a maximum length and no case folding; a
// required one must sit under required objects only (so a valid body
// always has it); a key of one field and no digest must be a required one.
func compileKey(s spec, byPath map[string]*rule) apiKey {
	k := apiKey{content: s.keyContent, paths: s.key}
	if len(s.key) == 0 && !s.keyContent {
		panic("notification: " + s.name + ": no key")
	}
	size := 0
	if s.keyContent {
		size = 2 * keyDigestBytes
	}
	for i, p := range s.key {
		r, ok := byPath[p]
		if !ok || r.object || !r.headerSafe || r.max <= 0 || r.foldCase {
			panic("notification: " + s.name + ": key field " + p + " is not a header-safe string field with a maximum length")
		}
		if r.need == always && !alwaysThere(r, byPath) {
			panic("notification: " + s.name + ": key field " + p + " is required but sits under an object that is not")
		}
		if i > 0 || s.keyContent {
			size++ // a separator
		}
		size += 4 * r.max // a rune is at most 4 bytes, an escaped byte 3
		k.nodes = append(k.nodes, r.node)
	}
	if size > MaxKeyLength {
		panic("notification: " + s.name + ": its key can exceed MaxKeyLength")
	}
	if len(s.key) == 1 && !s.keyContent {
		if byPath[s.key[0]].need != always {
			panic("notification: " + s.name + ": a key of one field needs a required field")
		}
		k.raw = true
	}
	return k
}

// alwaysThere reports whether every object above r is a required field of
// the catalog.
func alwaysThere(r *rule, byPath map[string]*rule) bool {
	p := r.path
	for {
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			return true
		}
		p = p[:i]
		parent, ok := byPath[p]
		if !ok || !parent.object || parent.need != always {
			return false
		}
	}
}

// KeyFields returns the paths of the fields the API's idempotency key is
// made of, in order, and ContentDigest last when the key ends with a digest
// of the body; in a new slice.
func (a *API) KeyFields() []string {
	f := append([]string(nil), a.key.paths...)
	if a.key.content {
		f = append(f, ContentDigest)
	}
	return f
}

// resultKey returns the key of the body the walker has just checked, whose
// fingerprint is fp. It allocates the string and nothing else.
func (a *API) resultKey(w *walker, fp *[32]byte) string {
	if a.key.raw {
		s := w.seen[a.key.nodes[0]]
		return string(w.vals[s.off:s.end])
	}
	b := w.tmp[:0]
	for i, n := range a.key.nodes {
		if i > 0 {
			b = append(b, keySeparator)
		}
		if s := w.seen[n]; s.kind == kindString {
			b = appendKeyPart(b, w.vals[s.off:s.end])
		}
	}
	if a.key.content {
		if len(a.key.nodes) > 0 {
			b = append(b, keySeparator)
		}
		b = hex.AppendEncode(b, fp[:keyDigestBytes])
	}
	w.tmp = b
	return string(b)
}

// JoinKeyParts joins values as a composed key joins its fields' values:
// in order, separated by ':', each with '%' written "%25" and ':' "%3A".
// It is how a key would read from values got some other way (the log line
// of a body the rules refused names what could be read of its key).
func JoinKeyParts(parts ...string) string {
	var b []byte
	for i, p := range parts {
		if i > 0 {
			b = append(b, keySeparator)
		}
		b = appendKeyPart(b, []byte(p))
	}
	return string(b)
}

// appendKeyPart appends v with '%' and the separator percent-encoded.
func appendKeyPart(dst, v []byte) []byte {
	for _, c := range v {
		switch c {
		case '%':
			dst = append(dst, "%25"...)
		case keySeparator:
			dst = append(dst, "%3A"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
