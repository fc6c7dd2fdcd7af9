package notification

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The catalog: one spec per notify API. A new API is a new spec in
// dwsSpecs (below) or antomSpecs (antom.go); the walker does not change.
// The DWS rules have a second copy, written apart from this one:
// seedRulesBreak in fuzz_test.go, the oracle of FuzzValidate. Change both
// together (TestSeedRulesOracleKnowsEveryRule fails while the oracle lacks
// a catalog rule), with cases in validate_test.go: DEVELOPERS.md,
// "Changing a notify API's rules".

// paymentMethodFields are the rules both seed APIs share (SPEC §2).
var paymentMethodFields = []field{
	{path: "requestId", need: always, min: 1, max: 64, headerSafe: true},
	{path: "referenceCustomerId", min: 1, max: 64},
	{path: "referenceUserId", min: 1, max: 64},
	{path: "paymentMethodDetail", object: true, need: always},
	{path: "paymentMethodDetail.paymentMethodDetailType", need: always, min: 1, enum: []string{"CARD"}, foldCase: true},
	{path: "paymentMethodDetail.card", object: true, when: &equals{"paymentMethodDetail.paymentMethodDetailType", "CARD"}},
	{path: "paymentMethodDetail.card.cardToken", need: always, min: 1, max: 2048},
	{path: "operateSource", need: strictOnly, min: 1, max: 16, enum: []string{"MERCHANT"}},
}

var dwsSpecs = []spec{
	{
		name:   "addPaymentMethod",
		family: DWS,
		key:    []string{"requestId"},
		fields: paymentMethodFields,
		oneOf:  [][]string{{"referenceCustomerId", "referenceUserId"}},
	},
	{
		name:   "removePaymentMethod",
		family: DWS,
		key:    []string{"requestId"},
		fields: paymentMethodFields,
		oneOf:  [][]string{{"referenceCustomerId", "referenceUserId"}},
	},
}

// spec declares the rules of one notify API.
type spec struct {
	name   string
	family Family
	// key lists the paths of the string fields whose values make up the
	// idempotency key, Result.Key, in this order (see key.go for the form
	// and the checks newAPI makes).
	key []string
	// keyContent appends a digest of the body's canonical form to the key,
	// for an API whose reference names no fields that tell two different
	// notifications apart: then a resend (the same content) is one
	// notification and any change of content is another.
	keyContent bool
	// keyContentIf, when not empty (with keyContent), adds the digest only
	// when one of its conditions holds: the key field at its path holds
	// exactly its value (case counts). For an API where some kinds of
	// notification need it and the others have a key of their fields that
	// must stay as it is.
	keyContentIf []equals
	fields       []field    // checked in this order; the first failure is the error
	oneOf        [][]string // groups of paths of which exactly one must be present, checked after fields
}

// field is one rule: what the member at path must be when its parent object
// is present. Members the catalog does not name are allowed; like every
// member they must be strings, objects or arrays.
type field struct {
	path   string // member keys from the root, joined by dots
	object bool   // the value is an object; otherwise it is a string
	// also lets the value be a JSON boolean or number instead of a
	// string, at this path only: for a member Antom really sends as one
	// although its reference types every field as a String (each use
	// cites its source). The length and enum rules apply only when the
	// value is a string. Not for an object field, a key field or a when
	// dependency (newAPI panics).
	also scalars
	need presence
	// when narrows or widens need: an optional field with when is
	// required when it holds; a strictOnly field with when is required
	// only under Options.Strict and when it holds (what a failure
	// legitimately lacks: a failed vaulting's paymentMethodDetail).
	when     *equals
	min, max int      // length bounds of a string in runes; max 0 means no bound
	enum     []string // the values allowed, when not empty
	foldCase bool     // compare with enum ignoring case
	// strictEnum checks enum only when Options.Strict is set. The Antom
	// reference's enums grow (the official SDKs know dispute notification
	// types its pages do not list yet), and a notification refused for a
	// value the catalog does not know is lost after Antom's last resend.
	strictEnum bool
	// headerSafe: the value travels in an HTTP header (the requestId
	// becomes X-Dws-Request-Id; every key field is part of the key the
	// backend receives), so it may hold no character of the
	// Unicode categories Cc (controls, NEL included), Zs (every space,
	// U+0020 and NBSP included), Zl, Zp (U+2028, U+2029) or Cf (format
	// characters: zero-width space and joiners, BOM, bidi marks). Header
	// parsers, trimming functions and loggers strip, fold or split on these
	// (JavaScript's trim() removes NBSP and U+2028; a zero-width character
	// is invisible), so the backend could read, show or match another
	// requestId than the one deduplicated.
	headerSafe bool
}

// scalars is a set of the non-string JSON scalars a field may hold.
type scalars uint8

const (
	alsoBoolean scalars = 1 << iota // true or false
	alsoNumber                      // a JSON number
)

// typeRule is the rule a value of the wrong type breaks at a field that
// allows s besides a string.
func (s scalars) typeRule() string {
	switch s {
	case alsoBoolean:
		return "must be a JSON string or boolean"
	case alsoNumber:
		return "must be a JSON string or number"
	case alsoBoolean | alsoNumber:
		return "must be a JSON string, boolean or number"
	}
	return "must be a JSON string"
}

// presence says when a field must be present (non-null).
type presence uint8

const (
	optional   presence = iota
	always              // required in every mode
	strictOnly          // required when Options.Strict is set
)

// equals holds when the string at path equals value, ignoring case, as a
// field's when condition. In a spec's keyContentIf it compares exactly
// (a key is made of the exact bytes; see resultKey).
type equals struct{ path, value string }

// API is one notify API: its name, its family and the rules its bodies
// must meet. It is immutable and safe for concurrent use.
type API struct {
	name   string
	family Family
	nodes  []node // the tree of paths the rules name; node 0 is the body
	// also holds, per node, the scalars its field allows besides a
	// string (field.also); the walker reads it.
	also   []scalars
	rules  []rule
	groups []group
	key    apiKey
}

// node is a member path the walker records: the kind of value seen there
// and, for a string, the value.
type node struct {
	parent int32
	edges  []edge
	// loose holds the edges' keys as checkFoldedKeys compares them
	// (appendLooseKey), each form once: keys with one loose form share it.
	// looseIndex maps each form to its index in loose; looseLens has bit
	// min(len(form), 63) set for each, to pass over most other keys
	// without hashing them. They are apart from edges to keep the walk's
	// lookups (child) on small entries.
	loose      []string
	looseIndex map[string]int
	looseLens  uint64
}

// looseForm returns the index in n.loose of form, or -1.
func (n *node) looseForm(form []byte) int {
	if n.looseLens&(1<<min(len(form), 63)) == 0 {
		return -1
	}
	if i, ok := n.looseIndex[string(form)]; ok {
		return i
	}
	return -1
}

// edge leads from a node to the node of its member key.
type edge struct {
	key  string
	node int32
}

// rule is a field compiled against the node tree.
type rule struct {
	field
	node, parent int32
	whenNode     int32  // node of when.path, when when is set
	enumRule     string // "must be CARD", "must be one of A, B"
}

// group is a compiled oneOf group.
type group struct {
	parent int32 // node of the object the members belong to
	nodes  []int32
	paths  []string
}

var catalog = func() map[string]*API {
	m := make(map[string]*API)
	for _, s := range slices.Concat(dwsSpecs, antomSpecs) {
		if _, dup := m[s.name]; dup {
			panic("notification: two specs named " + s.name)
		}
		m[s.name] = newAPI(s)
	}
	return m
}()

// Lookup returns the API of any family with the given name, matched exactly
// ("addPaymentMethod", "notifyPayment").
func Lookup(name string) (*API, bool) {
	a, ok := catalog[name]
	return a, ok
}

// Names returns the names of the APIs of the given families (of every
// family when none is given), sorted, in a new slice.
func Names(families ...Family) []string {
	var names []string
	for name, a := range catalog {
		if len(families) == 0 || slices.Contains(families, a.family) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Name returns the API's name as Lookup knows it.
func (a *API) Name() string { return a.name }

// Family returns the family the API belongs to.
func (a *API) Family() Family { return a.family }

// newAPI compiles s. It panics when s is inconsistent, which is a mistake
// in the catalog.
func newAPI(s spec) *API {
	if s.family != DWS && s.family != Antom {
		panic("notification: " + s.name + ": no family")
	}
	a := &API{name: s.name, family: s.family, nodes: []node{{parent: -1}}}
	byPath := make(map[string]*rule) // valid once a.rules is complete
	for _, f := range s.fields {
		n := a.addPath(f.path)
		a.rules = append(a.rules, rule{field: f, node: n, parent: a.nodes[n].parent, whenNode: -1})
	}
	a.also = make([]scalars, len(a.nodes))
	for i := range a.rules {
		r := &a.rules[i]
		byPath[r.path] = r
		if r.also != 0 {
			if r.object {
				panic("notification: " + s.name + ": " + r.path + " is an object field that allows a scalar")
			}
			a.also[r.node] = r.also
		}
	}
	for i := range a.rules {
		r := &a.rules[i]
		if r.when != nil {
			dep, ok := byPath[r.when.path]
			if !ok || dep.object || dep.also != 0 {
				panic("notification: " + s.name + ": " + r.path + " depends on " + r.when.path + ", which is not a string field")
			}
			r.whenNode = dep.node
		}
		switch len(r.enum) {
		case 0:
		case 1:
			r.enumRule = "must be " + r.enum[0]
		default:
			r.enumRule = "must be one of " + strings.Join(r.enum, ", ")
		}
	}
	a.key = compileKey(s, byPath)
	for _, paths := range s.oneOf {
		g := group{paths: paths}
		for _, p := range paths {
			m, ok := byPath[p]
			if !ok || m.parent != byPath[paths[0]].parent {
				panic("notification: " + s.name + ": one-of member " + p + " is not a field beside " + paths[0])
			}
			g.nodes = append(g.nodes, m.node)
		}
		g.parent = byPath[paths[0]].parent
		a.groups = append(a.groups, g)
	}
	return a
}

// addPath returns the node of path, adding it and its ancestors when new.
func (a *API) addPath(path string) int32 {
	n := int32(0)
	for key := range strings.SplitSeq(path, ".") {
		n = a.addEdge(n, key)
	}
	return n
}

func (a *API) addEdge(from int32, key string) int32 {
	for _, e := range a.nodes[from].edges {
		if e.key == key {
			return e.node
		}
	}
	n := int32(len(a.nodes))
	a.nodes = append(a.nodes, node{parent: from})
	a.nodes[from].edges = append(a.nodes[from].edges, edge{key, n})
	nd := &a.nodes[from]
	loose := appendLooseKey(nil, []byte(key))
	if nd.looseForm(loose) >= 0 {
		return n
	}
	if nd.looseIndex == nil {
		nd.looseIndex = make(map[string]int)
	}
	nd.looseIndex[string(loose)] = len(nd.loose)
	nd.loose = append(nd.loose, string(loose))
	nd.looseLens |= 1 << min(len(loose), 63)
	return n
}

// child returns the node of member key under node n, or -1 when the rules
// name no such path. n may be -1.
func (a *API) child(n int32, key []byte) int32 {
	if n < 0 {
		return -1
	}
	for _, e := range a.nodes[n].edges {
		if e.key == string(key) {
			return e.node
		}
	}
	return -1
}

// check applies the rules to what the walker recorded.
func (a *API) check(seen []slot, vals []byte, strict bool) error {
	str := func(n int32) []byte { return vals[seen[n].off:seen[n].end] }
	for i := range a.rules {
		r := &a.rules[i]
		if seen[r.parent].kind != kindObject {
			continue // the parent is absent, or of the wrong type and reported as such
		}
		s := seen[r.node]
		if s.kind == kindAbsent {
			holds := r.when != nil && seen[r.whenNode].kind == kindString && bytes.EqualFold(str(r.whenNode), []byte(r.when.value))
			if r.need == always || r.need == strictOnly && strict && (r.when == nil || holds) || r.need == optional && holds {
				return &FieldError{Path: r.path, Rule: "is required"}
			}
			continue
		}
		if r.object {
			if s.kind != kindObject {
				return &FieldError{Path: r.path, Rule: "must be a JSON object"}
			}
			continue
		}
		if s.kind == kindBoolean || s.kind == kindNumber {
			continue // the walker let it through only where r.also allows it
		}
		if s.kind != kindString {
			return &FieldError{Path: r.path, Rule: r.also.typeRule()}
		}
		if err := r.checkString(str(r.node)); err != nil {
			return err
		}
		if r.strictEnum && strict {
			if err := r.checkEnum(str(r.node)); err != nil {
				return err
			}
		}
	}
	for _, g := range a.groups {
		if seen[g.parent].kind != kindObject {
			continue
		}
		present := 0
		for _, n := range g.nodes {
			if seen[n].kind != kindAbsent {
				present++
			}
		}
		switch {
		case present == 0:
			return &FieldError{Path: g.paths[0], Rule: "or " + strings.Join(g.paths[1:], " or ") + " is required"}
		case present > 1:
			return &FieldError{Path: g.paths[0], Rule: "and " + strings.Join(g.paths[1:], " and ") + " are mutually exclusive"}
		}
	}
	return nil
}

// checkString applies the length and enum bounds to a string value.
func (r *rule) checkString(v []byte) error {
	n := utf8.RuneCount(v)
	switch {
	case n == 0 && r.min > 0:
		return &FieldError{Path: r.path, Rule: "must not be empty"}
	case n < r.min:
		return &FieldError{Path: r.path, Rule: "must be at least " + strconv.Itoa(r.min) + " characters"}
	case r.max > 0 && n > r.max:
		return &FieldError{Path: r.path, Rule: "must be at most " + strconv.Itoa(r.max) + " characters"}
	}
	if r.headerSafe {
		if rule := headerUnsafe(v); rule != "" {
			return &FieldError{Path: r.path, Rule: rule}
		}
	}
	if len(r.enum) == 0 || r.strictEnum {
		return nil
	}
	return r.checkEnum(v)
}

// checkEnum checks a string value against the rule's enum.
func (r *rule) checkEnum(v []byte) error {
	for _, e := range r.enum {
		if r.foldCase && bytes.EqualFold(v, []byte(e)) || !r.foldCase && string(v) == e {
			return nil
		}
	}
	return &FieldError{Path: r.path, Rule: r.enumRule}
}

// headerUnsafe returns the rule a header-bound value breaks, or "" when it
// holds no control (Cc), space or separator (Zs, Zl, Zp) or format (Cf)
// character. v is valid UTF-8 (the walker checked it).
func headerUnsafe(v []byte) string {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c < 0x20 || c == 0x7f:
				return "must not contain control characters"
			case c == ' ':
				return "must not contain spaces or separators"
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(v[i:])
		i += size
		switch {
		case unicode.Is(unicode.Cc, r):
			return "must not contain control characters"
		case unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp):
			return "must not contain spaces or separators"
		case unicode.Is(unicode.Cf, r):
			return "must not contain format characters (zero-width, bidi, BOM)"
		}
	}
	return ""
}
