package notification

import (
	"encoding/hex"
	"slices"
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
// fingerprint in lower-case hex (with keyContentIf, only when a key field
// holds one of the given values). For example notifyPayment's key is
//
//	2020010123456789XXXX:PAYMENT_RESULT:S
//
// and, for an UPDATE_AMOUNT_RESULT (one payment can have several amount
// adjustments, nothing in the body numbers them) or a failure (a failed
// subscription charge can be retried under one paymentId, each failed try
// with another retryInfo),
//
//	2020010123456789XXXX:UPDATE_AMOUNT_RESULT:S:7822e0962ff585ed45cdd88c6e3fcd2e
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
	nodes    []int32  // nodes of the key fields, in order
	paths    []string // their paths
	required []bool   // whether every valid body has the field
	content  bool     // the content digest is the last part
	// contentIf, when content and not empty, makes the digest
	// conditional: it is a part only when, for one of them, the key field
	// at node contentIfNodes[i] holds exactly contentIf[i].value.
	contentIf      []equals
	contentIfNodes []int32
	raw            bool // one required field and nothing else: the key is its value as it is
}

// compileKey checks and compiles s.key. Every key field must be a
// header-safe string field with a maximum length, no case folding and no
// boolean or number allowance (field.also); a
// required one must sit under required objects only (so a valid body
// always has it); a key of one field and no digest must be a required one.
// Each condition of a conditional digest (keyContentIf) must depend on a
// required key field, so that the key itself shows whether the digest is
// there. The bound counts the digest and its separator whether or not it
// is conditional.
func compileKey(s spec, byPath map[string]*rule) apiKey {
	k := apiKey{content: s.keyContent, paths: s.key, contentIf: s.keyContentIf}
	if len(s.key) == 0 && !s.keyContent {
		panic("notification: " + s.name + ": no key")
	}
	for _, c := range s.keyContentIf {
		r, ok := byPath[c.path]
		if !s.keyContent || !ok || !slices.Contains(s.key, c.path) || r.need != always {
			panic("notification: " + s.name + ": the digest's condition must name a required key field of a key with keyContent")
		}
		k.contentIfNodes = append(k.contentIfNodes, r.node)
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
		if r.also != 0 {
			// A boolean or number has no string value to put in the key.
			panic("notification: " + s.name + ": key field " + p + " allows a boolean or number, not only a string")
		}
		if r.need == always && !alwaysThere(r, byPath) {
			panic("notification: " + s.name + ": key field " + p + " is required but sits under an object that is not")
		}
		if i > 0 || s.keyContent {
			size++ // a separator
		}
		size += 4 * r.max // a rune is at most 4 bytes, an escaped byte 3
		k.nodes = append(k.nodes, r.node)
		k.required = append(k.required, r.need == always && alwaysThere(r, byPath))
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

// KeyPart describes one part of an API's idempotency key.
type KeyPart struct {
	// Path is the key field's path; "" for the content digest.
	Path string
	// Required: every valid body has the part (a field required in every
	// mode under required objects only). An absent optional field is an
	// empty part, as Validate builds the key.
	Required bool
	// Digest: the part is the content digest.
	Digest bool
	// If, when not empty, makes a digest part conditional: it is part of
	// the key only when one of the conditions holds (notifyPayment's
	// digest, only when notifyType is UPDATE_AMOUNT_RESULT or
	// result.resultStatus is F).
	If []KeyCondition
}

// KeyCondition is a condition of a conditional digest: the key field at
// Path holds exactly Value (case counts).
type KeyCondition struct {
	Path, Value string
}

// String names the part as KeyFields does: a key field's path,
// ContentDigest, or "(content digest if <path> is <value> or <path> is
// <value>)".
func (p KeyPart) String() string {
	switch {
	case !p.Digest:
		return p.Path
	case len(p.If) > 0:
		s := "(content digest if "
		for i, c := range p.If {
			if i > 0 {
				s += " or "
			}
			s += c.Path + " is " + c.Value
		}
		return s + ")"
	}
	return ContentDigest
}

// KeyParts returns the parts of the API's idempotency key, in order, in a
// new slice.
func (a *API) KeyParts() []KeyPart {
	parts := make([]KeyPart, 0, len(a.key.paths)+1)
	for i, p := range a.key.paths {
		parts = append(parts, KeyPart{Path: p, Required: a.key.required[i]})
	}
	if a.key.content {
		d := KeyPart{Digest: true, Required: len(a.key.contentIf) == 0}
		for _, c := range a.key.contentIf {
			d.If = append(d.If, KeyCondition{Path: c.path, Value: c.value})
		}
		parts = append(parts, d)
	}
	return parts
}

// KeyFields returns the paths of the fields the API's idempotency key is
// made of, in order, and last, when the key ends with a digest of the
// body, ContentDigest, or for a digest that only some bodies' keys carry
// "(content digest if <path> is <value>)", its conditions joined by " or "
// (KeyPart.String); in a new slice.
func (a *API) KeyFields() []string {
	var f []string
	for _, p := range a.KeyParts() {
		f = append(f, p.String())
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
	if a.key.content && a.digestApplies(w) {
		if len(a.key.nodes) > 0 {
			b = append(b, keySeparator)
		}
		b = hex.AppendEncode(b, fp[:keyDigestBytes])
	}
	w.tmp = b
	return string(b)
}

// digestApplies reports whether the key of the body the walker has just
// checked carries the content digest: always, unless the digest is
// conditional and no condition's key field holds its value exactly.
func (a *API) digestApplies(w *walker) bool {
	if len(a.key.contentIf) == 0 {
		return true
	}
	for i, c := range a.key.contentIf {
		s := w.seen[a.key.contentIfNodes[i]]
		if s.kind == kindString && string(w.vals[s.off:s.end]) == c.value {
			return true
		}
	}
	return false
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
