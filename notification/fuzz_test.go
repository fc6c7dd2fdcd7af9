package notification

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzValidate checks the walker against encoding/json: no input panics;
// every message is short, valid UTF-8 and a *FieldError; a body that
// encoding/json rejects is never accepted; an accepted body decodes with
// encoding/json to the requestId the walker returned, holds only strings
// (and null members), meets the seed rules as read from the decoded value,
// has the fingerprint of its decoded value's reference canonical form, and
// keeps that fingerprint when encoding/json writes it out again.
func FuzzValidate(f *testing.F) {
	// The seed samples and the tricky cases are in testdata/fuzz/FuzzValidate.
	f.Add([]byte(obj(rid, user, pmd, `"operateSource":"MERCHANT"`, `"extra":["a",{"b":null},[]]`)))
	f.Fuzz(func(t *testing.T, body []byte) {
		stdValid := json.Valid(body)
		for _, name := range APINames() {
			for _, strict := range []bool{false, true} {
				res, err := mustAPI(t, name).Validate(body, Options{Strict: strict})
				if err != nil {
					var fe *FieldError
					msg := err.Error()
					if !errors.As(err, &fe) || !utf8.ValidString(msg) || utf8.RuneCountInString(msg) > MaxMessageLength {
						t.Fatalf("bad error %T %q", err, msg)
					}
					continue
				}
				if !stdValid {
					t.Fatalf("accepted a body encoding/json rejects: %q", body)
				}
				var v any
				if err := json.Unmarshal(body, &v); err != nil {
					t.Fatalf("encoding/json: %v", err)
				}
				m := v.(map[string]any)
				if m["requestId"] != res.Key {
					t.Fatalf("requestId %q, encoding/json saw %q", res.Key, m["requestId"])
				}
				if why := seedRulesBreak(m, strict); why != "" {
					t.Fatalf("accepted a body that breaks a rule: %s", why)
				}
				canon, ok := refCanonical(nil, v)
				if !ok {
					t.Fatalf("accepted a body with a non-string scalar: %q", body)
				}
				if sha256.Sum256(canon) != res.Fingerprint {
					t.Fatalf("fingerprint differs from the reference canonical form of %q", body)
				}
				again, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				res2, err := mustAPI(t, name).Validate(again, Options{Strict: strict})
				if err != nil || res2 != res {
					t.Fatalf("encoding/json's rewrite %q: %+v, %v; want %+v", again, res2, err, res)
				}
			}
		}
	})
}

// seedRulesBreak names the SPEC §2 rule that m, a body decoded by
// encoding/json, breaks, or returns "".
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
