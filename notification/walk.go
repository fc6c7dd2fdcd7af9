package notification

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays a body may have; the
// body's own object is level 1.
const MaxDepth = 32

// Options tune Validate.
type Options struct {
	// Strict makes the fields the catalog marks strict-only required
	// (operateSource, which the add sample omits although its table marks
	// it required; Antom fields one reference page marks required and
	// another does not) and checks the Antom enums, which Antom extends
	// over time.
	Strict bool
}

// Result is what Validate learns from a valid body.
type Result struct {
	// Key is the idempotency key: the decoded requestId for DWS, the value
	// the API's key fields compose for Antom (see key.go). It is at most
	// MaxKeyLength bytes and safe to send in an HTTP header.
	Key string
	// Fingerprint is the SHA-256 of the body's canonical form (see the
	// package documentation): equal for the same members and values in any
	// key order, spacing or string escaping, different for any other change.
	Fingerprint [32]byte
}

// Validate checks body against the API's rules in one pass over its bytes
// and returns its idempotency key and fingerprint. A body that breaks a
// rule gets a *FieldError, whose message names the field path and the
// rule. body is only read, and not kept after Validate returns.
func (a *API) Validate(body []byte, opts Options) (Result, error) {
	if uint64(len(body)) > math.MaxUint32 {
		return Result{}, &FieldError{Path: "body", Rule: "is larger than 4 GiB"}
	}
	w := walkers.Get().(*walker)
	defer w.release()
	w.reset(a, body)
	if err := w.walk(); err != nil {
		return Result{}, err
	}
	if err := a.check(w.seen, w.vals, opts.Strict); err != nil {
		return Result{}, err
	}
	fp := sha256.Sum256(w.canon)
	return Result{Key: a.resultKey(w, &fp), Fingerprint: fp}, nil
}

// kind is the kind of value the walker saw at a rule path.
type kind uint8

const (
	kindAbsent kind = iota // not there, or null
	kindString
	kindObject
	kindArray
	kindBoolean // only where the field allows it (field.also)
	kindNumber  // only where the field allows it (field.also)
)

// slot records the value seen at an API node; a string's decoded value is
// vals[off:end].
type slot struct {
	kind     kind
	off, end int
}

// member is an object member written to canon[start:end], its decoded key at
// canon[keyOff:keyEnd]. A member whose value is null is dropped when its
// object is closed.
type member struct {
	keyOff, keyEnd int
	start, end     int
	null           bool
}

// segment is one step of the path to the value being walked: a key at
// canon[keyOff:keyEnd], or an array index when index >= 0.
type segment struct {
	keyOff, keyEnd int
	index          int
}

// walker holds the state and the reusable scratch of one Validate call.
type walker struct {
	api     *API
	body    []byte
	pos     int
	canon   []byte    // the canonical form, written as the walk goes
	tmp     []byte    // scratch for reordering an object's members
	vals    []byte    // decoded string values at API nodes
	members []member  // members of the open objects, innermost last
	path    []segment // path to the value being walked
	seen    []slot    // per API node
	loose   []byte    // scratch: one key as checkFoldedKeys compares it
	pairs   []pair    // scratch: per loose form of a node, its two earliest members
}

// pair is, for one loose form of the names at a node, the indexes in an
// object's members of the two members with that form that start earliest
// in the body, a before b; -1 when there are fewer.
type pair struct {
	a, b int
}

var walkers = sync.Pool{New: func() any { return new(walker) }}

// maxRetained bounds the scratch a pooled walker keeps.
const maxRetained = 1 << 20

func (w *walker) reset(a *API, body []byte) {
	w.api, w.body, w.pos = a, body, 0
	w.canon, w.tmp, w.vals = w.canon[:0], w.tmp[:0], w.vals[:0]
	w.members, w.path = w.members[:0], w.path[:0]
	w.loose, w.pairs = w.loose[:0], w.pairs[:0]
	w.seen = append(w.seen[:0], make([]slot, len(a.nodes))...)
}

func (w *walker) release() {
	w.api, w.body = nil, nil
	if cap(w.canon) > maxRetained || cap(w.tmp) > maxRetained || cap(w.vals) > maxRetained || cap(w.loose) > maxRetained {
		return
	}
	walkers.Put(w)
}

// Canonical form. Every value is written as a tag and its contents:
//
//	string  's' len value
//	object  '{' ( 'k' len key value )* '}'   members sorted by key, null members left out
//	array   '[' value* ']'
//	true    't'                              only where the field allows a boolean
//	false   'f'                              only where the field allows a boolean
//	number  'n' len form                     only where the field allows a number
//
// where len is the decoded length in bytes as a 4-byte big-endian integer
// and key and value are the decoded UTF-8 bytes; a number's form is its
// value written one way only (see number: "42e2" for 4200, 4.2e3 and
// 4200.0). As every string and number carries its length and every tag is
// distinct, the form can be read back unambiguously: two bodies have the
// same form exactly when they hold the same members and values, and the
// boolean true and the string "true" (or the number 2 and the string "2")
// differ.

// walk checks the body's syntax and typing in one pass, recording the values
// at API nodes in seen and vals and writing the canonical form to canon.
func (w *walker) walk() error {
	b := w.body
	if bytes.HasPrefix(b, []byte("\xEF\xBB\xBF")) {
		return &FieldError{Path: "body", Rule: "starts with a byte order mark"}
	}
	w.skipSpace()
	if w.pos == len(b) {
		return &FieldError{Path: "body", Rule: "is empty"}
	}
	switch c := b[w.pos]; {
	case c == '{':
	case c == '[' || c == '"' || c == 't' || c == 'f' || c == 'n' || c == '-' || '0' <= c && c <= '9':
		return &FieldError{Path: "body", Rule: "must be a JSON object"}
	default:
		return w.syntax(w.pos)
	}
	w.seen[0].kind = kindObject
	if err := w.object(0, 1); err != nil {
		return err
	}
	w.skipSpace()
	if w.pos < len(b) {
		return &FieldError{Path: "body", Rule: "has data after the JSON object at offset " + strconv.Itoa(w.pos)}
	}
	return nil
}

// value walks the value at w.pos, named by the top of w.path, inside a
// container at level depth. n is its API node, or -1. It returns the kind
// of the value, kindAbsent for null.
func (w *walker) value(n int32, depth int) (kind, error) {
	switch c := w.peek(); {
	case c == '"':
		at := len(w.canon)
		w.canon = append(w.canon, 's', 0, 0, 0, 0)
		if err := w.str(false); err != nil {
			return 0, err
		}
		w.putLen(at + 1)
		if n >= 0 {
			off := len(w.vals)
			w.vals = append(w.vals, w.canon[at+5:]...)
			w.seen[n] = slot{kind: kindString, off: off, end: len(w.vals)}
		}
		return kindString, nil
	case c == '{':
		if n >= 0 {
			w.seen[n].kind = kindObject
		}
		return kindObject, w.object(n, depth+1)
	case c == '[':
		if n >= 0 {
			w.seen[n].kind = kindArray
		}
		return kindArray, w.array(depth + 1)
	case c == 'n':
		if !bytes.HasPrefix(w.body[w.pos:], []byte("null")) {
			return 0, w.syntax(w.pos)
		}
		w.pos += 4
		return kindAbsent, nil
	case c == 't' || c == 'f':
		if n >= 0 && w.api.also[n]&alsoBoolean != 0 {
			return w.boolean(n)
		}
		return 0, w.fail(w.typeRule(n))
	case c == '-' || '0' <= c && c <= '9':
		if n >= 0 && w.api.also[n]&alsoNumber != 0 {
			return w.number(n)
		}
		return 0, w.fail(w.typeRule(n))
	}
	return 0, w.syntax(w.pos)
}

// typeRule is the rule a value of the wrong type breaks at API node n
// (or -1): "must be a JSON string", or what the field allows besides.
func (w *walker) typeRule(n int32) string {
	if n < 0 {
		return "must be a JSON string"
	}
	return w.api.also[n].typeRule()
}

// boolean walks the literal true or false at w.pos, at API node n whose
// field allows a boolean, and writes it to canon as 't' or 'f'.
func (w *walker) boolean(n int32) (kind, error) {
	rest := w.body[w.pos:]
	switch {
	case bytes.HasPrefix(rest, []byte("true")):
		w.canon = append(w.canon, 't')
		w.pos += 4
	case bytes.HasPrefix(rest, []byte("false")):
		w.canon = append(w.canon, 'f')
		w.pos += 5
	default:
		return 0, w.syntax(w.pos)
	}
	w.seen[n] = slot{kind: kindBoolean}
	return kindBoolean, nil
}

// The bounds of a number a field allows: its text, and the significant
// digits of its exponent. No value Antom sends comes near them; they keep
// the exponent arithmetic in an int.
const (
	maxNumberBytes    = 64
	maxExponentDigits = 6
)

// number walks the JSON number at w.pos (RFC 8259's grammar, nothing
// looser: no '+', no leading zero, no bare '.'), at API node n whose field
// allows a number, and writes its value to canon as 'n' len form, where
// form is "0" for zero (-0 included) and otherwise an optional '-', the
// significant digits without leading or trailing zeros, 'e' and the
// decimal exponent: the value is digits × 10^exponent. So 4200, 4.2e3
// and 4200.0 have one form, "42e2", and any other value another.
func (w *walker) number(n int32) (kind, error) {
	b := w.body
	start, i := w.pos, w.pos
	at := len(w.canon)
	w.canon = append(w.canon, 'n', 0, 0, 0, 0)
	if b[i] == '-' {
		w.canon = append(w.canon, '-')
		i++
	}
	digits := len(w.canon)
	digit := func(i int) bool { return i < len(b) && '0' <= b[i] && b[i] <= '9' }
	exp := 0
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digit(i):
		for ; digit(i); i++ {
			w.canon = append(w.canon, b[i])
		}
	default:
		return 0, w.syntax(i)
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digit(i) {
			return 0, w.syntax(i)
		}
		for ; digit(i); i++ {
			w.canon = append(w.canon, b[i])
			exp--
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		neg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			neg = b[i] == '-'
			i++
		}
		if !digit(i) {
			return 0, w.syntax(i)
		}
		e, sig := 0, 0
		for ; digit(i); i++ {
			if sig > 0 || b[i] != '0' {
				sig++
			}
			if sig > maxExponentDigits {
				return 0, w.fail("must be a JSON number with an exponent of at most " + strconv.Itoa(maxExponentDigits) + " digits")
			}
			e = e*10 + int(b[i]-'0')
		}
		if neg {
			e = -e
		}
		exp += e
	}
	if i-start > maxNumberBytes {
		return 0, w.fail("must be a JSON number of at most " + strconv.Itoa(maxNumberBytes) + " characters")
	}
	d := w.canon[digits:]
	lead := 0
	for lead < len(d) && d[lead] == '0' {
		lead++
	}
	end := len(d)
	for end > lead && d[end-1] == '0' {
		end--
		exp++
	}
	if lead == end {
		w.canon = append(w.canon[:at+5], '0')
	} else {
		w.canon = append(w.canon[:digits], d[lead:end]...) // copy moves the digits down
		w.canon = append(w.canon, 'e')
		w.canon = strconv.AppendInt(w.canon, int64(exp), 10)
	}
	w.putLen(at + 1)
	w.pos = i
	w.seen[n] = slot{kind: kindNumber}
	return kindNumber, nil
}

// object walks the object at w.pos, at level depth, with API node n or -1.
func (w *walker) object(n int32, depth int) error {
	if depth > MaxDepth {
		return w.fail("is nested deeper than " + strconv.Itoa(MaxDepth) + " levels")
	}
	w.pos++
	w.canon = append(w.canon, '{')
	base := len(w.members)
	w.skipSpace()
	if w.peek() == '}' {
		w.pos++
		return w.closeObject(n, base)
	}
	for {
		if w.peek() != '"' {
			return w.syntax(w.pos)
		}
		m := member{start: len(w.canon)}
		w.canon = append(w.canon, 'k', 0, 0, 0, 0)
		m.keyOff = len(w.canon)
		if err := w.str(true); err != nil {
			return err
		}
		m.keyEnd = len(w.canon)
		w.putLen(m.start + 1)
		w.skipSpace()
		if w.peek() != ':' {
			return w.syntax(w.pos)
		}
		w.pos++
		w.skipSpace()
		w.path = append(w.path, segment{keyOff: m.keyOff, keyEnd: m.keyEnd, index: -1})
		k, err := w.value(w.api.child(n, w.canon[m.keyOff:m.keyEnd]), depth)
		if err != nil {
			return err
		}
		w.path = w.path[:len(w.path)-1]
		m.null = k == kindAbsent
		m.end = len(w.canon)
		w.members = append(w.members, m)
		w.skipSpace()
		switch w.peek() {
		case ',':
			w.pos++
			w.skipSpace()
		case '}':
			w.pos++
			return w.closeObject(n, base)
		default:
			return w.syntax(w.pos)
		}
	}
}

// closeObject rejects duplicate keys among the members from base on (of
// the object at API node n, or -1), puts them in key order without the
// null ones, and ends the object.
func (w *walker) closeObject(n int32, base int) error {
	ms := w.members[base:]
	w.members = w.members[:base]
	if len(ms) == 0 {
		w.canon = append(w.canon, '}')
		return nil
	}
	start := ms[0].start // sorting reorders ms
	key := func(m member) []byte { return w.canon[m.keyOff:m.keyEnd] }
	ordered, nulls := true, false
	for i := range ms {
		nulls = nulls || ms[i].null
		if i > 0 && bytes.Compare(key(ms[i-1]), key(ms[i])) >= 0 {
			ordered = false
		}
	}
	if !ordered {
		slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(key(a), key(b)) })
		for i := 1; i < len(ms); i++ {
			if bytes.Equal(key(ms[i-1]), key(ms[i])) {
				return w.failKey(ms[i], "is a duplicate key")
			}
		}
	}
	if err := w.checkFoldedKeys(n, ms); err != nil {
		return err
	}
	if !ordered || nulls {
		w.tmp = w.tmp[:0]
		for _, m := range ms {
			if !m.null {
				w.tmp = append(w.tmp, w.canon[m.start:m.end]...)
			}
		}
		w.canon = append(w.canon[:start], w.tmp...)
	}
	w.canon = append(w.canon, '}')
	return nil
}

// checkFoldedKeys rejects an object at API node n two of whose members
// stand for one member the catalog names there (a field the rules check,
// or an object on the way to one) when letter case is ignored
// (appendFoldedKey), and '_' and '-' too: "RequestId" or "REQUESTID",
// "request\u0131d" with the dotless i, "request_id" or "request-id" beside
// "requestId", or two of them without it. Go's encoding/json matches struct
// fields by simple case folding and takes the last member; Java's
// equalsIgnoreCase, JavaScript's and Python's case mappings upper-case ı
// to I; snake- and kebab-case binders (Rails' underscore, Jackson's naming
// strategies, pydantic's aliases) map the aliases onto one field: a
// backend could read another value than the one checked and deduplicated.
// Members the catalog does not name are left alone ("fooBar" beside
// "foobar" or "foo_bar", "cardHolderName" beside "cardholderName" in a
// vaulted card): nothing checks them, and a genuine notification may
// carry both (the official Go SDK's CardPaymentMethodDetail has both of
// those two). Of two members the later one in the body is reported; of
// several such pairs, the one whose later member comes first. Each
// member's loose form (appendLooseKey) is looked up once in the node's
// map, so the cost does not grow with the names at n. ms are the object's
// members; their keys must still be where canon has them.
func (w *walker) checkFoldedKeys(n int32, ms []member) error {
	if len(ms) < 2 || n < 0 || len(w.api.nodes[n].loose) == 0 {
		return nil
	}
	nd := &w.api.nodes[n]
	w.pairs = w.pairs[:0]
	for range len(nd.loose) {
		w.pairs = append(w.pairs, pair{-1, -1})
	}
	for i, m := range ms {
		w.loose = appendLooseKey(w.loose[:0], w.canon[m.keyOff:m.keyEnd])
		f := nd.looseForm(w.loose)
		if f < 0 {
			continue
		}
		p := &w.pairs[f]
		switch {
		case p.a < 0 || m.start < ms[p.a].start:
			p.a, p.b = i, p.a
		case p.b < 0 || m.start < ms[p.b].start:
			p.b = i
		}
	}
	first, dup := -1, -1 // the member to report, dup, and the earlier one it stands beside
	for _, p := range w.pairs {
		if p.b >= 0 && (dup < 0 || ms[p.b].start < ms[dup].start) {
			first, dup = p.a, p.b
		}
	}
	if dup < 0 {
		return nil
	}
	w.loose = appendFoldedKey(w.loose[:0], w.canon[ms[first].keyOff:ms[first].keyEnd])
	mid := len(w.loose)
	w.loose = appendFoldedKey(w.loose, w.canon[ms[dup].keyOff:ms[dup].keyEnd])
	if bytes.Equal(w.loose[:mid], w.loose[mid:]) {
		return w.failKey(ms[dup], "is a duplicate key when letter case is ignored")
	}
	return w.failKey(ms[dup], "is a duplicate key when letter case, '_' and '-' are ignored")
}

// appendLooseKey appends key as checkFoldedKeys compares keys: case-folded
// (appendFoldedKey), with every '_' and '-' left out. Folding keeps those
// two as they are and yields neither for any other rune, so this is the
// same as leaving them out of key first. key is valid UTF-8.
func appendLooseKey(dst, key []byte) []byte {
	off := len(dst)
	dst = appendFoldedKey(dst, key)
	j := off
	for _, c := range dst[off:] {
		if c != '_' && c != '-' {
			dst[j] = c
			j++
		}
	}
	return dst[:j]
}

// failKey reports rule broken by the key of member m of the object being
// closed.
func (w *walker) failKey(m member, rule string) error {
	w.path = append(w.path, segment{keyOff: m.keyOff, keyEnd: m.keyEnd, index: -1})
	return w.fail(rule)
}

// appendFoldedKey appends key with letter case folded, so that two keys
// are equal ignoring case exactly when their folded forms are equal: every
// rune r is mapped through unicode.ToUpper then unicode.ToLower (which
// takes the dotless ı and the dotted İ to i, as Java's equalsIgnoreCase
// and JavaScript's and Python's upper-casing match them) and replaced by
// the smallest rune of its simple case-folding orbit (unicode.SimpleFold:
// ſ and s, the Kelvin sign and k). Keys equal under simple folding stay
// equal: every orbit maps to one form. For ASCII letters the form is the
// upper-case letter. key is valid UTF-8.
func appendFoldedKey(dst, key []byte) []byte {
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(key[i:])
		i += size
		r = unicode.ToLower(unicode.ToUpper(r))
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		dst = utf8.AppendRune(dst, least)
	}
	return dst
}

// array walks the array at w.pos, at level depth. Its elements match no
// API node; a null element is a non-string scalar like any other.
func (w *walker) array(depth int) error {
	if depth > MaxDepth {
		return w.fail("is nested deeper than " + strconv.Itoa(MaxDepth) + " levels")
	}
	w.pos++
	w.canon = append(w.canon, '[')
	w.skipSpace()
	if w.peek() == ']' {
		w.pos++
		w.canon = append(w.canon, ']')
		return nil
	}
	for i := 0; ; i++ {
		w.path = append(w.path, segment{index: i})
		k, err := w.value(-1, depth)
		if err != nil {
			return err
		}
		if k == kindAbsent {
			return w.fail("must be a JSON string")
		}
		w.path = w.path[:len(w.path)-1]
		w.skipSpace()
		switch w.peek() {
		case ',':
			w.pos++
			w.skipSpace()
		case ']':
			w.pos++
			w.canon = append(w.canon, ']')
			return nil
		default:
			return w.syntax(w.pos)
		}
	}
}

// plain marks the bytes a string can hold as they are: ASCII other than
// controls, '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str walks the string at w.pos and appends its decoded bytes to canon. A
// problem in a key is reported against the object holding it.
func (w *walker) str(isKey bool) error {
	b := w.body
	i := w.pos + 1
	for {
		start := i
		for i < len(b) {
			if c := b[i]; plain[c] {
				i++
			} else if c < utf8.RuneSelf {
				break
			} else if r, size := utf8.DecodeRune(b[i:]); r == utf8.RuneError && size == 1 {
				return w.badString(isKey, "invalid UTF-8")
			} else {
				i += size
			}
		}
		w.canon = append(w.canon, b[start:i]...)
		if i == len(b) {
			return w.syntax(i)
		}
		switch b[i] {
		case '"':
			w.pos = i + 1
			return nil
		case '\\':
			n, err := w.escape(i, isKey)
			if err != nil {
				return err
			}
			i += n
		default:
			return w.badString(isKey, "an unescaped control character")
		}
	}
}

// escape decodes the escape sequence at body[i], appends it to canon and
// returns its length. Surrogate escapes must come as a high and low pair;
// a lone one has no UTF-8 encoding and is rejected.
func (w *walker) escape(i int, isKey bool) (int, error) {
	b := w.body
	if i+1 == len(b) {
		return 0, w.badString(isKey, "an invalid escape")
	}
	var c byte
	switch b[i+1] {
	case '"', '\\', '/':
		c = b[i+1]
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		r, ok := hex4(b, i+2)
		if !ok {
			return 0, w.badString(isKey, "an invalid escape")
		}
		n := 6
		if 0xD800 <= r && r < 0xE000 {
			lo, ok := rune(0), false
			if r < 0xDC00 && i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				lo, ok = hex4(b, i+8)
			}
			if !ok || lo < 0xDC00 || lo >= 0xE000 {
				return 0, w.badString(isKey, "an unpaired surrogate escape")
			}
			r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			n = 12
		}
		w.canon = utf8.AppendRune(w.canon, r)
		return n, nil
	default:
		return 0, w.badString(isKey, "an invalid escape")
	}
	w.canon = append(w.canon, c)
	return 2, nil
}

// hex4 decodes the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (w *walker) peek() byte {
	if w.pos < len(w.body) {
		return w.body[w.pos]
	}
	return 0
}

func (w *walker) skipSpace() {
	for w.pos < len(w.body) {
		switch w.body[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// putLen writes the length of what follows the 4 bytes at canon[at:].
func (w *walker) putLen(at int) {
	binary.BigEndian.PutUint32(w.canon[at:], uint32(len(w.canon)-at-4))
}

func (w *walker) syntax(offset int) error {
	return &FieldError{Path: "body", Rule: "is not valid JSON at offset " + strconv.Itoa(offset)}
}

// fail reports rule broken by the value at the current path.
func (w *walker) fail(rule string) error {
	var buf [maxPathBytes + 64]byte
	p := buf[:0]
	for _, s := range w.path {
		if s.index >= 0 {
			p = appendPathIndex(p, s.index)
		} else {
			p = appendPathKey(p, w.canon[s.keyOff:s.keyEnd])
		}
	}
	return &FieldError{Path: finishPath(p), Rule: rule}
}

// badString reports a string that holds what, a problem of its own if it is
// a value, of the object holding it if it is a key.
func (w *walker) badString(isKey bool, what string) error {
	if isKey {
		return w.fail("has a key containing " + what)
	}
	return w.fail("contains " + what)
}
