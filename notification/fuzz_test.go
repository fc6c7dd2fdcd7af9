package notification

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzValidate checks the walker against encoding/json: no input panics;
// every message is short, valid UTF-8 and a *FieldError; a body that
// encoding/json rejects is never accepted; an accepted body decodes with
// encoding/json to the requestId the walker returned (into a map, and into
// a struct, whose field matching ignores case), holds only strings
// (and null members), meets the seed rules as read from the decoded value,
// has the fingerprint of its decoded value's reference canonical form, and
// keeps that fingerprint when encoding/json writes it out again.
func FuzzValidate(f *testing.F) {
	// The seed samples and the tricky cases are in testdata/fuzz/FuzzValidate.
	f.Add([]byte(obj(rid, user, pmd, `"operateSource":"MERCHANT"`, `"extra":["a",{"b":null},[]]`)))
	f.Add([]byte(obj(rid, user, pmd, `"RequestId":"x"`)))
	f.Add([]byte(obj(rid, user, pmd, `"extra":{"\u212a":"a","k":"b"}`)))
	f.Add([]byte(obj(rid, user, pmd, `"request\u0131d":"x"`)))
	f.Add([]byte(obj(rid, user, pmd, `"request_id":"x"`, `"x_y":"a"`, `"xY":"b"`)))
	f.Fuzz(func(t *testing.T, body []byte) {
		stdValid := json.Valid(body)
		for _, name := range Names(DWS) {
			checkAgainstStd(t, mustAPI(t, name), body, stdValid, func(m map[string]any, res Result, strict bool) {
				if m["requestId"] != res.Key {
					t.Fatalf("requestId %q, encoding/json saw %q", res.Key, m["requestId"])
				}
				// A struct binder matches keys ignoring case; it must find
				// the same requestId (no case variant of a key may pass).
				var bound struct {
					RequestID string `json:"requestId"`
				}
				if err := json.Unmarshal(body, &bound); err != nil || bound.RequestID != res.Key {
					t.Fatalf("requestId %q, a case-insensitive binder read %q (%v)", res.Key, bound.RequestID, err)
				}
				// Nor may an alias of requestId that a binder ignoring
				// case (Java's equalsIgnoreCase, upper-casing ı to I),
				// '_' and '-' (snake- and kebab-case binders) would map
				// onto it.
				aliases := 0
				for k := range m {
					if strings.EqualFold(strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(strings.ToUpper(k))), "requestId") {
						aliases++
					}
				}
				if aliases > 1 {
					t.Fatalf("accepted %d keys that stand for requestId: %q", aliases, body)
				}
				if why := seedRulesBreak(m, strict); why != "" {
					t.Fatalf("accepted a body that breaks a rule: %s", why)
				}
			})
		}
	})
}

// checkAgainstStd validates body as a's in both modes: an error must be a
// short *FieldError; an accepted body must be one encoding/json accepts
// (stdValid), meet more, hold only strings (but for a boolean or number
// where a field allows one), have the fingerprint of its
// decoded value's reference canonical form, and keep its result when
// encoding/json writes it out again.
func checkAgainstStd(t *testing.T, a *API, body []byte, stdValid bool, more func(m map[string]any, res Result, strict bool)) {
	t.Helper()
	for _, strict := range []bool{false, true} {
		res, err := a.Validate(body, Options{Strict: strict})
		if err != nil {
			var fe *FieldError
			msg := err.Error()
			if !errors.As(err, &fe) || !utf8.ValidString(msg) || utf8.RuneCountInString(msg) > MaxMessageLength {
				t.Fatalf("%s: bad error %T %q", a.Name(), err, msg)
			}
			continue
		}
		if !stdValid {
			t.Fatalf("%s accepted a body encoding/json rejects: %q", a.Name(), body)
		}
		// Numbers as json.Number: the text as sent, which json.Marshal
		// writes out again as it is.
		v, err := decodeUseNumber(body)
		if err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		more(v.(map[string]any), res, strict)
		canon, ok := refCanonicalAt(nil, v, "", allowed(a))
		if !ok {
			t.Fatalf("%s accepted a body with a non-string scalar where its fields allow none: %q", a.Name(), body)
		}
		if sha256.Sum256(canon) != res.Fingerprint {
			t.Fatalf("%s: fingerprint differs from the reference canonical form of %q", a.Name(), body)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		res2, err := a.Validate(again, Options{Strict: strict})
		if err != nil || res2 != res {
			t.Fatalf("%s: encoding/json's rewrite %q: %+v, %v; want %+v", a.Name(), again, res2, err, res)
		}
	}
}

// seedRulesBreak names the SPEC §2 rule that m, a body decoded by
// encoding/json, breaks, or returns "". It is the second copy of the DWS
// rules (the first is paymentMethodFields in catalog.go), written apart
// from the walker: a rule changed there changes here too, and
// TestSeedRulesOracleKnowsEveryRule fails while this copy lacks one.
func seedRulesBreak(m map[string]any, strict bool) string {
	str := func(v any, maxRunes int) bool {
		s, ok := v.(string)
		n := utf8.RuneCountInString(s)
		return ok && n >= 1 && n <= maxRunes
	}
	cust, user := m["referenceCustomerId"], m["referenceUserId"]
	detail, _ := m["paymentMethodDetail"].(map[string]any)
	typ, _ := detail["paymentMethodDetailType"].(string)
	card, _ := detail["card"].(map[string]any)
	op := m["operateSource"]
	switch {
	case !str(m["requestId"], 64):
		return "requestId"
	case strings.ContainsFunc(m["requestId"].(string), func(r rune) bool {
		// It travels in a header: no control, space, separator or
		// format character.
		return unicode.In(r, unicode.Cc, unicode.Zs, unicode.Zl, unicode.Zp, unicode.Cf)
	}):
		return "requestId in a header"
	case (cust == nil) == (user == nil), cust != nil && !str(cust, 64), user != nil && !str(user, 64):
		return "reference"
	case detail == nil:
		return "paymentMethodDetail"
	case !strings.EqualFold(typ, "CARD"):
		return "paymentMethodDetailType"
	case card == nil || !str(card["cardToken"], 2048):
		return "card"
	case op != nil && op != "MERCHANT", strict && op == nil:
		return "operateSource"
	}
	return ""
}

// FuzzValidateAntom is FuzzValidate for the Antom specs: no input panics;
// every message is short, valid UTF-8 and a *FieldError; a body that
// encoding/json rejects is never accepted; an accepted body holds only
// strings (and null members), but for the booleans and numbers a field
// allows at its own path, has the fingerprint of its decoded value's
// reference canonical form, has the key refKey composes from its decoded
// value, a key that fits MaxKeyLength and an HTTP header, and keeps its
// result when encoding/json writes it out again.
func FuzzValidateAntom(f *testing.F) {
	for _, name := range Names(Antom) {
		b, _ := Sample(name)
		f.Add(b)
	}
	f.Add([]byte(`{"notifyType":"PAYMENT_PENDING","result":{"resultCode":"x","resultStatus":"F"},"paymentRequestId":"r","paymentId":"a:b%3A","paymentAmount":{"currency":"USD","value":"1"}}`))
	f.Add([]byte(`{"notifyType":"PAYMENT_RESULT","result":{"resultCode":"x","resultStatus":"S"},"paymentRequestId":"r","paymentId":"p","paymentAmount":{"currency":"USD","value":100}}`))
	f.Add([]byte(`{"notifyType":"UPDATE_AMOUNT_RESULT","result":{"resultCode":"x","resultStatus":"S"},"paymentRequestId":"r","paymentId":"p","paymentAmount":{"currency":"USD","value":"5200"}}`))
	f.Add([]byte(`{"disputeId":"d\u003a","paymentId":"p","paymentRequestId":"q","disputeNotificationType":"NEW"}`))
	f.Add([]byte(`{"registrationResult":{"registrationStatus":"PENDING"},"pspRegistrationResultList":[{"pspName":"x"}]}`))
	f.Add([]byte(`{"result":{"resultCode":"x","resultStatus":"F"},"vaultingRequestId":"v:%","paymentMethodDetail":{"card":{"cardToken":7}}}`))
	f.Add([]byte(`{"subscriptionRequestId":"s","subscriptionStatus":"TERMINATED","subscriptionNotificationType":"CHANGE","periodRule":{"periodCount":1}}`))
	f.Add([]byte(`{"result":{"resultCode":"x","resultStatus":"S"},"paymentId":"p","paymentAmount":{"currency":"USD","value":"1"},"paymentCreateTime":"t","phaseNo":2}`))
	// The booleans and numbers some fields allow (field.also), in every
	// spelling of a number, and their look-alikes elsewhere.
	f.Add([]byte(`{"disputeId":"d","paymentId":"p","paymentRequestId":"q","disputeNotificationType":"DISPUTE_CREATED","defendable":true,"x":{"defendable":false}}`))
	f.Add([]byte(`{"disputeId":"d","paymentId":"p","paymentRequestId":"q","disputeNotificationType":"DISPUTE_JUDGED","defendable":false}`))
	f.Add([]byte(`{"notifyType":"PAYMENT_RESULT","result":{"resultCode":"x","resultStatus":"F"},"paymentRequestId":"r","paymentId":"p","paymentAmount":{"currency":"USD","value":"1"},"settlementQuote":{"quotePrice":-0.0740E+2,"guaranteed":true},"retryInfo":{"availableRetries":3}}`))
	f.Add([]byte(`{"notifyType":"REFUND_RESULT","result":{"resultCode":"x","resultStatus":"S"},"refundStatus":"SUCCESS","refundRequestId":"r","refundId":"f","refundAmount":{"currency":"USD","value":"1"},"settlementQuote":{"quotePrice":1e-7,"guaranteed":false}}`))
	f.Add([]byte(`{"result":{"resultCode":"x","resultStatus":"F"},"paymentId":"p","paymentAmount":{"currency":"USD","value":"1"},"paymentCreateTime":"t","phaseNo":0.0,"retryInfo":{"availableRetries":100e-2}}`))
	f.Add([]byte(`{"subscriptionRequestId":"s","subscriptionStatus":"ACTIVE","subscriptionNotificationType":"CREATE","periodRule":{"periodType":"MONTH","periodCount":12}}`))
	f.Add([]byte(`{"result":{"resultCode":"x","resultStatus":"S"},"vaultingRequestId":"v","acquirerInfo":"a"}`))
	f.Add([]byte(`{"notifyType":"PAYMENT_RESULT","result":{"resultCode":"x","resultStatus":"S"},"paymentRequestId":"r","paymentId":"p","paymentAmount":{"currency":"USD","value":"1"},"paymentResultInfo":{"creditPayPlan":{"installmentNum":3,"interval":"MONTH","feePercentage":1.5e1}}}`))
	f.Add([]byte(`{"notifyType":"PAYMENT_RESULT","result":{"resultCode":"x","resultStatus":"S"},"paymentRequestId":"r","paymentId":"p","paymentAmount":{"currency":"USD","value":"1"},"settlementQuote":{"quotePrice":01}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		stdValid := json.Valid(body)
		for _, name := range Names(Antom) {
			a := mustAPI(t, name)
			checkAgainstStd(t, a, body, stdValid, func(m map[string]any, res Result, _ bool) {
				if want := refKey(m, a.KeyParts(), res.Fingerprint); res.Key != want {
					t.Fatalf("%s: key %q, reference %q", name, res.Key, want)
				}
				if !headerSafeKey(res.Key) {
					t.Fatalf("%s: key %q is empty, too long or not header-safe", name, res.Key)
				}
			})
		}
	})
}

// refKey composes the idempotency key the way key.go documents it, from a
// body decoded by encoding/json.
func refKey(m map[string]any, fields []KeyPart, fp [32]byte) string {
	escape := strings.NewReplacer("%", "%25", ":", "%3A")
	value := func(path string) string {
		var v any = m
		for k := range strings.SplitSeq(path, ".") {
			o, _ := v.(map[string]any)
			v = o[k]
		}
		s, _ := v.(string)
		return s
	}
	var parts []string
	for _, f := range fields {
		switch {
		case f.Digest && (len(f.If) == 0 || slices.ContainsFunc(f.If, func(c KeyCondition) bool { return value(c.Path) == c.Value })):
			parts = append(parts, hex.EncodeToString(fp[:16]))
		case f.Digest:
		case len(fields) == 1:
			return value(f.Path)
		default:
			parts = append(parts, escape.Replace(value(f.Path)))
		}
	}
	return strings.Join(parts, ":")
}

// headerSafeKey reports whether k can travel in an HTTP header as it is:
// not empty, at most MaxKeyLength bytes, no control character and no
// space or tab at either end.
func headerSafeKey(k string) bool {
	if k == "" || len(k) > MaxKeyLength || k[0] == ' ' || k[len(k)-1] == ' ' {
		return false
	}
	for i := range len(k) {
		if k[i] < 0x20 || k[i] == 0x7f {
			return false
		}
	}
	return true
}

// TestSeedRulesOracleKnowsEveryRule makes the agreement between the DWS
// catalog and seedRulesBreak two-way. FuzzValidate only catches a rule the
// oracle has and the catalog lacks (an accepted body the oracle calls
// broken); this test breaks each rule of each DWS API in turn, starting
// from a body that meets them all, and requires the oracle to call every
// body the catalog refuses broken too. A rule added to the catalog (a new
// field, a new bound) without its copy in seedRulesBreak fails here.
func TestSeedRulesOracleKnowsEveryRule(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"requestId":           "S",
			"referenceCustomerId": "S",
			"paymentMethodDetail": map[string]any{
				"paymentMethodDetailType": "CARD",
				"card":                    map[string]any{"cardToken": "S"},
			},
			"operateSource": "MERCHANT",
		}
	}
	type mutation struct {
		name   string
		strict bool
		apply  func(m map[string]any)
	}
	for _, name := range Names(DWS) {
		a := mustAPI(t, name)
		check := func(mu mutation) {
			t.Helper()
			m := base()
			mu.apply(m)
			body, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Validate(body, Options{Strict: mu.strict})
			if mu.name == "" {
				if err != nil {
					t.Fatalf("%s: the base body is refused: %v", name, err)
				}
				return
			}
			if err == nil {
				t.Errorf("%s: %s: the catalog accepts %s; teach this test to break the rule", name, mu.name, body)
				return
			}
			v, err2 := decodeUseNumber(body)
			if err2 != nil {
				t.Fatal(err2)
			}
			if seedRulesBreak(v.(map[string]any), mu.strict) == "" {
				t.Errorf("%s: %s: the catalog refuses %s (%v) but seedRulesBreak (fuzz_test.go) does not know the rule", name, mu.name, body, err)
			}
		}
		check(mutation{strict: true, apply: func(map[string]any) {}})
		siblings := map[string][]string{} // a one-of member's group
		for _, g := range a.groups {
			for _, p := range g.paths {
				siblings[p] = g.paths
			}
		}
		for _, r := range a.rules {
			set := func(v any) func(m map[string]any) {
				return func(m map[string]any) {
					for _, p := range siblings[r.path] {
						if p != r.path {
							setPath(m, p, nil, false)
						}
					}
					if r.when != nil {
						setPath(m, r.when.path, r.when.value, true)
					}
					setPath(m, r.path, v, v != nil)
				}
			}
			strict := r.need == strictOnly || r.strictEnum
			var mus []mutation
			if r.need != optional || r.when != nil {
				mus = append(mus, mutation{"absent", r.need == strictOnly, set(nil)})
			}
			if r.object {
				mus = append(mus, mutation{"a string for an object", strict, set("S")})
			} else {
				if r.min > 0 {
					mus = append(mus, mutation{"shorter than min", strict, set(strings.Repeat("S", r.min-1))})
				}
				if r.max > 0 {
					mus = append(mus, mutation{"longer than max", strict, set(strings.Repeat("S", r.max+1))})
				}
				if len(r.enum) > 0 {
					v := strings.Repeat("Q", max(r.min, 1))
					if slices.ContainsFunc(r.enum, func(e string) bool { return strings.EqualFold(e, v) }) {
						t.Fatalf("%s: %s: the test's outsider %q is in the enum", name, r.path, v)
					}
					mus = append(mus, mutation{"outside the enum", strict, set(v)})
				}
				if r.headerSafe {
					mus = append(mus, mutation{"not header-safe", strict, set("S S")})
				}
			}
			for _, mu := range mus {
				mu.name = r.path + " " + mu.name
				check(mu)
			}
		}
		for _, g := range a.groups {
			check(mutation{strings.Join(g.paths, "/") + " all present", false, func(m map[string]any) {
				for _, p := range g.paths {
					setPath(m, p, "S", true)
				}
			}})
			check(mutation{strings.Join(g.paths, "/") + " none present", false, func(m map[string]any) {
				for _, p := range g.paths {
					setPath(m, p, nil, false)
				}
			}})
		}
	}
}

// setPath sets (or, when !present, deletes) the member at the dotted path
// of m, making the objects on the way.
func setPath(m map[string]any, path string, v any, present bool) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	if present {
		m[keys[len(keys)-1]] = v
	} else {
		delete(m, keys[len(keys)-1])
	}
}
