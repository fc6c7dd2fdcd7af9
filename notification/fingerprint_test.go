package notification

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// refCanonical appends the canonical form (see walk.go) of v, a value decoded
// by encoding/json, written independently of the walker. It reports false
// when v holds a value that is not a string, object or array, or null
// anywhere but as a member.
func refCanonical(dst []byte, v any) ([]byte, bool) {
	return refCanonicalAt(dst, v, "", nil)
}

// refCanonicalAt is refCanonical for v at path (member keys from the root
// joined by dots, "" for the body) of a body whose API lets the fields in
// allow also be a boolean or a number (field.also); v is decoded with
// UseNumber, so a number is a json.Number holding its text. Array elements
// match no field.
func refCanonicalAt(dst []byte, v any, path string, allow map[string]scalars) ([]byte, bool) {
	putString := func(dst []byte, tag byte, s string) []byte {
		dst = append(dst, tag)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
		return append(dst, s...)
	}
	ok := true
	switch v := v.(type) {
	case string:
		return putString(dst, 's', v), true
	case bool:
		if allow[path]&alsoBoolean == 0 {
			return dst, false
		}
		if v {
			return append(dst, 't'), true
		}
		return append(dst, 'f'), true
	case json.Number:
		if allow[path]&alsoNumber == 0 {
			return dst, false
		}
		return putString(dst, 'n', refNumber(string(v))), true
	case map[string]any:
		dst = append(dst, '{')
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if v[k] == nil {
				continue
			}
			dst = putString(dst, 'k', k)
			p := k
			if path != "" {
				p = path + "." + k
			}
			if dst, ok = refCanonicalAt(dst, v[k], p, allow); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	case []any:
		dst = append(dst, '[')
		for _, e := range v {
			if dst, ok = refCanonicalAt(dst, e, "", nil); !ok || e == nil {
				return dst, false
			}
		}
		return append(dst, ']'), true
	}
	return dst, false
}

// refNumber writes the JSON number s as the canonical form writes a
// number's value: "0", or the significant digits (with '-' when negative),
// 'e' and the exponent, so that the value is digits × 10^exponent.
func refNumber(s string) string {
	neg := strings.HasPrefix(s, "-")
	mant, exp, _ := strings.Cut(strings.ToLower(strings.TrimPrefix(s, "-")), "e")
	e := 0
	if exp != "" {
		var err error
		if e, err = strconv.Atoi(exp); err != nil {
			panic(err)
		}
	}
	whole, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	e -= len(frac)
	sig := strings.TrimRight(digits, "0")
	e += len(digits) - len(sig)
	if sig == "" {
		return "0"
	}
	if neg {
		sig = "-" + sig
	}
	return sig + "e" + strconv.Itoa(e)
}

// allowed returns the paths where a's fields allow a boolean or a number.
func allowed(a *API) map[string]scalars {
	m := map[string]scalars{}
	for _, r := range a.rules {
		if r.also != 0 {
			m[r.path] = r.also
		}
	}
	return m
}

// decodeUseNumber decodes body with encoding/json, numbers as json.Number.
func decodeUseNumber(body []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// refFingerprint decodes body with encoding/json and hashes refCanonical of it.
func refFingerprint(t testing.TB, body []byte) [32]byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	c, ok := refCanonical(nil, v)
	if !ok {
		t.Fatalf("encoding/json decoded a value that is not string-typed: %s", body)
	}
	return sha256.Sum256(c)
}

func fingerprint(t testing.TB, body []byte) [32]byte {
	t.Helper()
	res, err := mustAPI(t, "addPaymentMethod").Validate(body, Options{})
	if err != nil {
		t.Fatalf("Validate(%s): %v", body, err)
	}
	return res.Fingerprint
}

// TestFingerprintOfAddSample pins the canonical form: fingerprints are stored
// by the idempotency store, so a change here makes retries that span an
// upgrade look inconsistent. Change the constant only on purpose. (The value
// was computed separately, by a Python rendering of the same form.)
func TestFingerprintOfAddSample(t *testing.T) {
	const want = "0c4448192279a7acac4cb82b49cbe33a9d82c610838cfddb383b2fa05db30b7b"
	body := fixture(t, "add.json")
	got := fingerprint(t, body)
	if hex.EncodeToString(got[:]) != want {
		t.Errorf("fingerprint of add.json = %x, want %s", got, want)
	}
	if got != refFingerprint(t, body) {
		t.Error("fingerprint differs from the reference canonical form")
	}
	if fingerprint(t, fixture(t, "remove.json")) != refFingerprint(t, fixture(t, "remove.json")) {
		t.Error("fingerprint of remove.json differs from the reference canonical form")
	}
}

func TestFingerprintIgnoresFormAndOrder(t *testing.T) {
	add := fixture(t, "add.json")
	var compact, indented, oddSpace bytes.Buffer
	if err := json.Compact(&compact, add); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&indented, compact.Bytes(), "\t", "\t"); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&oddSpace, compact.Bytes(), " \r", "\t \n"); err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(add, &v); err != nil {
		t.Fatal(err)
	}
	marshalled, err := json.Marshal(v) // sorted keys, compact, its own escaping
	if err != nil {
		t.Fatal(err)
	}
	reversed := `{"referenceCustomerId":"300005538591","requestId":"20990501203220303032821078591",` +
		`"paymentMethodDetail":{"paymentMethodDetailType":"CARD","card":{` +
		`"paymentMethodDetailMetadata":"{\"isFirstBoundAssetForPayOrTopUp\":\"true\",\"isBoundByOthers\":\"false\"}",` +
		`"mask":"523945******1949","instUserName":{"lastName":"Tung","firstName":"****"},` +
		`"hashCode":"3caa419cf22c6567047c15d82e3ad644d9cb539fb9da5ae37eeff80d2000d53d",` +
		`"expiryYear":"**","expiryMonth":"**",` +
		`"cardToken":"ALIPAYpwBScbbHru3DE3CY5gvUVo4rNiaOibl1UmIR+AHKh9CpZFl0Wv/Co7iGaHHSXKR4yWCloE4MwfmN48sP1+rSPQ==",` +
		`"brand":"MASTERCARD"}}}`
	escaped := replaceOnce(t, string(add),
		`"requestId": "2099`, `"\u0072equestId": "\u00320\u0039\u0039`,
		`"MASTERCARD"`, `"M\u0041STERC\u0041RD"`,
		`Wv/Co7`, `Wv\/Co7`,
		`"lastName": "Tung"`, `"lastName": "\u0054ung"`,
		`"**"`+",\n      \"hashCode", `"*\u002A"`+",\n      \"hashCode",
	)
	withNulls := replaceOnce(t, string(add),
		`"requestId"`, `"referenceUserId": null, "requestId"`,
		`"mask"`, `"cardNo": null, "extra": {"a": null}, "mask"`,
	)
	// withNulls has "extra": {"a": null}, which is {} and not absent; compare
	// it with the sample plus an empty extra.
	withEmpty := replaceOnce(t, string(add), `"mask"`, `"extra": {}, "mask"`)

	want := fingerprint(t, add)
	for name, body := range map[string]string{
		"compact":                compact.String(),
		"indented":               indented.String(),
		"encoding/json output":   string(marshalled),
		"every object reordered": reversed,
		"escaped equivalents":    escaped,
		"odd whitespace":         oddSpace.String(),
	} {
		if got := fingerprint(t, []byte(body)); got != want {
			t.Errorf("%s: fingerprint %x, want %x\n%s", name, got, want, body)
		}
	}
	if fingerprint(t, []byte(withNulls)) != fingerprint(t, []byte(withEmpty)) {
		t.Error("null members change the fingerprint")
	}
}

func TestFingerprintEquivalentStrings(t *testing.T) {
	for _, pair := range [][2]string{
		{`"A"`, `"\u0041"`},
		{`"/"`, `"\/"`},
		{`"é"`, `"\u00e9"`},
		{`"é"`, `"\u00E9"`},
		{`"😀"`, `"\ud83d\ude00"`},
		{`"😀"`, `"\uD83D\uDE00"`},
		{`"\n\t\\\""`, `"\u000a\u0009\u005c\u0022"`},
		{`"<&>"`, `"\u003c\u0026\u003e"`},
		{`{"a":"1","b":"2"}`, `{ "b" : "2" , "a" : "1" }`},
		{`{"a":"1"}`, `{"a":"1","b":null}`},
		{`{}`, `{"a":null}`},
		{`["x",{"b":"1","a":"2"}]`, `["x",{"a":"2","b":"1"}]`},
	} {
		a := fingerprint(t, []byte(obj(rid, cust, pmd, `"extra":`+pair[0])))
		b := fingerprint(t, []byte(obj(rid, cust, pmd, `"extra":`+pair[1])))
		if a != b {
			t.Errorf("%s and %s fingerprint differently", pair[0], pair[1])
		}
	}
}

// TestFingerprintMutations applies single changes to the add sample: each
// body is valid, and no two share a fingerprint.
func TestFingerprintMutations(t *testing.T) {
	add := string(fixture(t, "add.json"))
	mutations := []struct{ name, old, new string }{
		{"unchanged", "", ""},
		{"requestId digit", `078591"`, `078592"`},
		{"reference key renamed", `"referenceCustomerId"`, `"referenceUserId"`},
		{"cardToken letter", `ALIPAYpw`, `ALIPAYpW`},
		{"type case", `"CARD"`, `"card"`},
		{"lastName letter", `"Tung"`, `"Tunh"`},
		{"lastName trailing space", `"Tung"`, `"Tung "`},
		{"lastName composed", `"Tung"`, `"Tüng"`},
		{"lastName decomposed", `"Tung"`, `"Tu\u0308ng"`},
		{"key case", `"brand"`, `"Brand"`},
		{"key with NUL", `"brand"`, `"brand\u0000"`},
		{"value emptied", `"MASTERCARD"`, `""`},
		{"string to empty object", `"MASTERCARD"`, `{}`},
		{"string to empty array", `"MASTERCARD"`, `[]`},
		{"string to array", `"MASTERCARD"`, `["MASTERCARD"]`},
		{"string to nested array", `"MASTERCARD"`, `[["MASTERCARD"]]`},
		{"string to object", `"MASTERCARD"`, `{"MASTERCARD":""}`},
		{"string to object, swapped", `"MASTERCARD"`, `{"":"MASTERCARD"}`},
		{"key and value boundary", `"expiryMonth": "**"`, `"expiryMonth*": "*"`},
		{"member moved up a level", "\"firstName\": \"****\",\n        \"lastName\": \"Tung\"\n      },", "\"firstName\": \"****\"\n      },\n      \"lastName\": \"Tung\","},
		{"member removed", "\"expiryMonth\": \"**\",\n", ""},
		{"member added", `"mask"`, `"extra": "", "mask"`},
		{"empty object added", `"mask"`, `"extra": {}, "mask"`},
		{"empty array added", `"mask"`, `"extra": [], "mask"`},
		{"array", `"mask"`, `"extra": ["a", "b"], "mask"`},
		{"array reordered", `"mask"`, `"extra": ["b", "a"], "mask"`},
		{"array elements joined", `"mask"`, `"extra": ["ab"], "mask"`},
		{"array element added", `"mask"`, `"extra": ["a", "", "b"], "mask"`},
		{"array element nested", `"mask"`, `"extra": ["a", ["b"]], "mask"`},
		{"metadata inside the string", `Up\":\"true\"`, `Up\":\"false\"`},
	}
	seen := make(map[[32]byte]string)
	for _, m := range mutations {
		body := add
		if m.old != "" {
			body = replaceOnce(t, add, m.old, m.new)
		}
		fp := fingerprint(t, []byte(body))
		if prev, dup := seen[fp]; dup {
			t.Errorf("%q and %q have the same fingerprint", m.name, prev)
		}
		seen[fp] = m.name
		if fp != refFingerprint(t, []byte(body)) {
			t.Errorf("%q: fingerprint differs from the reference canonical form", m.name)
		}
	}
}

// replaceOnce replaces each old, new pair in s, each old occurring exactly once.
func replaceOnce(t testing.TB, s string, oldNew ...string) string {
	t.Helper()
	for i := 0; i < len(oldNew); i += 2 {
		if n := strings.Count(s, oldNew[i]); n != 1 {
			t.Fatalf("%q occurs %d times", oldNew[i], n)
		}
		s = strings.Replace(s, oldNew[i], oldNew[i+1], 1)
	}
	return s
}
