package notification

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// raceEnabled is set by race_test.go; sync.Pool drops items at random under
// the race detector, so allocation counts only hold without it.
var raceEnabled bool

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAPI(t testing.TB, name string) *API {
	t.Helper()
	a, ok := Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q) found nothing", name)
	}
	return a
}

// TestFixturesAreSeedSamples checks that the fixtures are byte-exact copies of
// the samples in the seed documents, when the team workspace is there: the
// directory DWS_SEEDS names, else the first shared/seeds in this package's
// directory or one of its parents (the checkout's parent in the team
// workspace, or the workspace above a worktree).
func TestFixturesAreSeedSamples(t *testing.T) {
	dir, named := os.LookupEnv("DWS_SEEDS")
	if !named {
		dir = findSeeds(t)
	}
	if dir == "" {
		t.Skip("seed documents not found next to the repository")
	}
	for fix, doc := range map[string]string{
		"add.json":    "notify-addPaymentMethod.txt",
		"remove.json": "notify-removePaymentMethod.txt",
	} {
		seed, err := os.ReadFile(filepath.Join(dir, doc))
		if errors.Is(err, os.ErrNotExist) && !named {
			t.Skip("seed documents not found next to the repository")
		}
		if err != nil {
			t.Fatal(err)
		}
		b := fixture(t, fix)
		if b[0] != '{' || b[len(b)-1] != '}' || bytes.Count(seed, b) != 1 {
			t.Errorf("%s is not a byte-exact sample of %s", fix, doc)
		}
	}
}

// findSeeds returns the first directory shared/seeds in the working
// directory or one of its parents, or "".
func findSeeds(t *testing.T) string {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		d := filepath.Join(dir, "shared", "seeds")
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func TestSeedSamplesPass(t *testing.T) {
	for _, tc := range []struct {
		api, fixture, requestID string
		strictErr               string
	}{
		{"addPaymentMethod", "add.json", "20990501203220303032821078591", "operateSource is required"},
		{"removePaymentMethod", "remove.json", "2015032412007101547201355678", ""},
	} {
		t.Run(tc.api, func(t *testing.T) {
			body := fixture(t, tc.fixture)
			res, err := mustAPI(t, tc.api).Validate(body, Options{})
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if res.Key != tc.requestID {
				t.Errorf("RequestID = %q, want %q", res.Key, tc.requestID)
			}
			if res.Fingerprint == ([32]byte{}) {
				t.Error("zero fingerprint")
			}
			strict, err := mustAPI(t, tc.api).Validate(body, Options{Strict: true})
			if got := errText(err); got != tc.strictErr {
				t.Errorf("strict: error %q, want %q", got, tc.strictErr)
			}
			if err == nil && strict != res {
				t.Errorf("strict result %+v differs from %+v", strict, res)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Building blocks of test bodies. Every value holds "SECRET" so the tests can
// check that no error message quotes one.
const (
	rid  = `"requestId":"SECRET-r"`
	cust = `"referenceCustomerId":"SECRET-c"`
	user = `"referenceUserId":"SECRET-u"`
	tok  = `"cardToken":"SECRET-t"`
	pmd  = `"paymentMethodDetail":{"paymentMethodDetailType":"CARD","card":{` + tok + `}}`
)

// obj joins members into an object.
func obj(members ...string) string { return "{" + strings.Join(members, ",") + "}" }

// card is paymentMethodDetail with a CARD of the given members.
func card(members ...string) string {
	return `"paymentMethodDetail":{"paymentMethodDetailType":"CARD","card":` + obj(members...) + `}`
}

// detail is paymentMethodDetail with the given members.
func detail(members ...string) string { return `"paymentMethodDetail":` + obj(members...) }

// str is a JSON string member with value v.
func str(key, v string) string { return `"` + key + `":"` + v + `"` }

// deep returns a body whose deepest container is at level depth: the root
// object and, under "extra", depth-1 nested objects (key "x") or arrays.
func deep(depth int, arrays bool) string {
	inner := strings.Repeat(`{"x":`, depth-2) + `{}` + strings.Repeat(`}`, depth-2)
	if arrays {
		inner = strings.Repeat(`[`, depth-1) + strings.Repeat(`]`, depth-1)
	}
	return obj(rid, cust, pmd, `"extra":`+inner)
}

func TestValidateRejects(t *testing.T) {
	valid := obj(rid, cust, pmd)
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name   string
		body   string
		strict bool
		want   string
	}{
		// The body as a whole.
		{"empty", ``, false, "body is empty"},
		{"only whitespace", " \r\n\t ", false, "body is empty"},
		{"byte order mark", "\xEF\xBB\xBF" + valid, false, "body starts with a byte order mark"},
		{"array at top", `["SECRET"]`, false, "body must be a JSON object"},
		{"string at top", `"SECRET"`, false, "body must be a JSON object"},
		{"null at top", `null`, false, "body must be a JSON object"},
		{"number at top", `12`, false, "body must be a JSON object"},
		{"not JSON", `SECRET`, false, "body is not valid JSON at offset 0"},
		{"missing colon", `{"requestId" "SECRET"}`, false, "body is not valid JSON at offset 13"},
		{"missing comma", `{"requestId":"SECRET" "a":"b"}`, false, "body is not valid JSON at offset 22"},
		{"unterminated string", `{"requestId":"SECRET`, false, "body is not valid JSON at offset 20"},
		{"unterminated object", `{"requestId":"SECRET"`, false, "body is not valid JSON at offset 21"},
		{"unterminated array", obj(`"extra":["a",`), false, "body is not valid JSON at offset 14"},
		{"trailing comma in object", `{"requestId":"SECRET",}`, false, "body is not valid JSON at offset 22"},
		{"trailing comma in array", `{"extra":["a",]}`, false, "body is not valid JSON at offset 14"},
		{"single quotes", `{'requestId':"SECRET"}`, false, "body is not valid JSON at offset 1"},
		{"bad literal", `{"extra":nul}`, false, "body is not valid JSON at offset 9"},
		{"key without quotes", `{requestId:"SECRET"}`, false, "body is not valid JSON at offset 1"},
		{"trailing data", valid + ` x`, false, "body has data after the JSON object at offset " + strconv.Itoa(len(valid)+1)},
		{"second object", valid + `{}`, false, "body has data after the JSON object at offset " + strconv.Itoa(len(valid))},

		// Every scalar is a string.
		{"requestId number", obj(`"requestId":20`, cust, pmd), false, "requestId must be a JSON string"},
		{"requestId true", obj(`"requestId":true`, cust, pmd), false, "requestId must be a JSON string"},
		{"unknown false", obj(rid, cust, pmd, `"extra":false`), false, "extra must be a JSON string"},
		{"unknown negative number", obj(rid, cust, pmd, `"extra":-1`), false, "extra must be a JSON string"},
		{"expiryYear number", obj(rid, cust, card(tok, `"expiryYear":2030`)), false, "paymentMethodDetail.card.expiryYear must be a JSON string"},
		{"instUserName member bool", obj(rid, cust, card(tok, `"instUserName":{"firstName":"SECRET","verified":true}`)), false, "paymentMethodDetail.card.instUserName.verified must be a JSON string"},
		{"array element number", obj(rid, cust, pmd, `"extra":{"list":["SECRET","SECRET",3]}`), false, "extra.list[2] must be a JSON string"},
		{"array element null", obj(rid, cust, pmd, `"extra":[null]`), false, "extra[0] must be a JSON string"},
		{"nested array element", obj(rid, cust, pmd, `"extra":["SECRET",["SECRET",true]]`), false, "extra[1][1] must be a JSON string"},
		{"object in array", obj(rid, cust, pmd, `"extra":[{"a":"SECRET"},{"b":1.5}]`), false, "extra[1].b must be a JSON string"},
		{"requestId object", obj(`"requestId":{"a":"SECRET"}`, cust, pmd), false, "requestId must be a JSON string"},
		{"requestId array", obj(`"requestId":["SECRET"]`, cust, pmd), false, "requestId must be a JSON string"},
		{"referenceUserId number", obj(rid, `"referenceUserId":300005538591`, pmd), false, "referenceUserId must be a JSON string"},
		{"paymentMethodDetail string", obj(rid, cust, `"paymentMethodDetail":"SECRET"`), false, "paymentMethodDetail must be a JSON object"},
		{"paymentMethodDetail array", obj(rid, cust, `"paymentMethodDetail":[]`), false, "paymentMethodDetail must be a JSON object"},
		{"paymentMethodDetailType object", obj(rid, cust, detail(`"paymentMethodDetailType":{}`, `"card":{`+tok+`}`)), false, "paymentMethodDetail.paymentMethodDetailType must be a JSON string"},
		{"card string", obj(rid, cust, detail(str("paymentMethodDetailType", "CARD"), str("card", "SECRET"))), false, "paymentMethodDetail.card must be a JSON object"},
		{"cardToken array", obj(rid, cust, card(`"cardToken":["SECRET"]`)), false, "paymentMethodDetail.card.cardToken must be a JSON string"},
		{"operateSource number", obj(rid, cust, pmd, `"operateSource":1`), false, "operateSource must be a JSON string"},

		// Duplicate keys, compared decoded, at any depth.
		{"duplicate requestId", obj(rid, cust, pmd, rid), false, "requestId is a duplicate key"},
		{"duplicate by escape", obj(rid, cust, card(tok, str("mask", "SECRET-1"), str(`m\u0061sk`, "SECRET-2"))), false, "paymentMethodDetail.card.mask is a duplicate key"},
		{"duplicate of a null member", obj(rid, cust, pmd, `"extra":null`, str("extra", "SECRET")), false, "extra is a duplicate key"},
		{"duplicate in object in array", obj(rid, cust, pmd, `"extra":[{"a":"SECRET","a":"SECRET"}]`), false, "extra[0].a is a duplicate key"},
		// Keys equal under Unicode simple case folding: encoding/json and the
		// case-insensitive binders of other stacks may read either member.
		{"requestId and RequestId", obj(rid, cust, pmd, str("RequestId", "SECRET")), false, "RequestId is a duplicate key when letter case is ignored"},
		{"RequestId before requestId", obj(str("RequestId", "SECRET"), rid, cust, pmd), false, "requestId is a duplicate key when letter case is ignored"},
		{"REQUESTID", obj(rid, cust, pmd, str("REQUESTID", "SECRET")), false, "REQUESTID is a duplicate key when letter case is ignored"},
		{"case variant by escape", obj(rid, cust, pmd, str(`R\u0065questId`, "SECRET")), false, "RequestId is a duplicate key when letter case is ignored"},
		{"case variant in card", obj(rid, cust, card(tok, str("cardtoken", "SECRET"))), false, "paymentMethodDetail.card.cardtoken is a duplicate key when letter case is ignored"},
		{"case variant of a null named member", obj(rid, `"referenceCustomerId":null`, user, pmd, str("REFERENCECUSTOMERID", "SECRET")), false, "REFERENCECUSTOMERID is a duplicate key when letter case is ignored"},
		{"Kelvin sign folds to k", obj(rid, cust, card(tok, str("cardTo\u212aen", "SECRET"))), false, "paymentMethodDetail.card[\"cardTo\u212aen\"] is a duplicate key when letter case is ignored"},
		{"long s folds to s", obj(rid, cust, pmd, str("operateSource", "MERCHANT"), str("operate\u017fource", "SECRET")), false, "[\"operate\u017fource\"] is a duplicate key when letter case is ignored"},
		{"two case variants, no named member", obj(str("REQUESTID", "SECRET"), str("RequestId", "SECRET"), cust, pmd), false, "RequestId is a duplicate key when letter case is ignored"},
		// Keys equal once each rune is upper- then lower-cased: Java's
		// equalsIgnoreCase, JavaScript and Python upper-case the dotless ı
		// (and ſ) to I (S), and lower-case the dotted İ to i.
		{"dotless i", obj(rid, cust, pmd, str("request\u0131d", "SECRET")), false, "[\"request\u0131d\"] is a duplicate key when letter case is ignored"},
		{"dotless i first", obj(str("request\u0131d", "SECRET"), rid, cust, pmd), false, "requestId is a duplicate key when letter case is ignored"},
		{"dotted capital I", obj(rid, cust, pmd, str("request\u0130d", "SECRET")), false, "[\"request\u0130d\"] is a duplicate key when letter case is ignored"},
		{"long s in a catalog name", obj(rid, str("referenceCu\u017ftomerId", "SECRET"), cust, pmd), false, "referenceCustomerId is a duplicate key when letter case is ignored"},
		// Keys equal once '_' and '-' are left out too, when one of them
		// stands for a member the catalog names: snake- and kebab-case
		// binders map them onto one field.
		{"request_id", obj(rid, cust, pmd, str("request_id", "SECRET")), false, "request_id is a duplicate key when letter case, '_' and '-' are ignored"},
		{"REQUEST_ID first", obj(str("REQUEST_ID", "SECRET"), rid, cust, pmd), false, "requestId is a duplicate key when letter case, '_' and '-' are ignored"},
		{"request-id", obj(rid, cust, pmd, str("request-id", "SECRET")), false, "request-id is a duplicate key when letter case, '_' and '-' are ignored"},
		{"request_ıd", obj(rid, cust, pmd, str("request_\u0131d", "SECRET")), false, "[\"request_\u0131d\"] is a duplicate key when letter case, '_' and '-' are ignored"},
		{"two aliases, no named member", obj(str("request_id", "SECRET"), str("request-id", "SECRET"), cust, pmd), false, "request-id is a duplicate key when letter case, '_' and '-' are ignored"},
		{"card_token in card", obj(rid, cust, card(tok, str("card_token", "SECRET"))), false, "paymentMethodDetail.card.card_token is a duplicate key when letter case, '_' and '-' are ignored"},
		{"payment_method_detail", obj(rid, cust, pmd, `"payment_method_detail":{}`), false, "payment_method_detail is a duplicate key when letter case, '_' and '-' are ignored"},

		// Nesting.
		{"33 levels of objects", deep(33, false), false, "extra" + strings.Repeat(".x", 31) + " is nested deeper than 32 levels"},
		{"33 levels of arrays", deep(33, true), false, "extra" + strings.Repeat("[0]", 31) + " is nested deeper than 32 levels"},

		// UTF-8, escapes and control characters, in values and in keys.
		{"invalid UTF-8 in value", obj(rid, cust, card(tok, str("mask", "SECRET\xff"))), false, "paymentMethodDetail.card.mask contains invalid UTF-8"},
		{"invalid UTF-8 in key", obj(rid, cust, card(tok, str("ma\xffsk", "SECRET"))), false, "paymentMethodDetail.card has a key containing invalid UTF-8"},
		{"invalid UTF-8 in root key", obj(rid, cust, pmd, str("\xc3", "SECRET")), false, "body has a key containing invalid UTF-8"},
		{"UTF-8 encoded surrogate", obj(str("requestId", "SECRET\xed\xa0\x80"), cust, pmd), false, "requestId contains invalid UTF-8"},
		{"overlong encoding", obj(str("requestId", "SECRET\xc0\xaf"), cust, pmd), false, "requestId contains invalid UTF-8"},
		{"truncated sequence", obj(str("requestId", "SECRET\xe2\x82"), cust, pmd), false, "requestId contains invalid UTF-8"},
		{"lone high surrogate", obj(str("requestId", `SECRET\ud800`), cust, pmd), false, "requestId contains an unpaired surrogate escape"},
		{"lone low surrogate", obj(str("requestId", `\udc00SECRET`), cust, pmd), false, "requestId contains an unpaired surrogate escape"},
		{"high then non-surrogate", obj(str("requestId", `\ud800\u0041SECRET`), cust, pmd), false, "requestId contains an unpaired surrogate escape"},
		{"surrogates reversed", obj(str("requestId", `\udc00\ud800`), cust, pmd), false, "requestId contains an unpaired surrogate escape"},
		{"lone surrogate in key", obj(rid, cust, pmd, str(`\ud83d`, "SECRET")), false, "body has a key containing an unpaired surrogate escape"},
		{"invalid escape", obj(str("requestId", `SECRET\x41`), cust, pmd), false, "requestId contains an invalid escape"},
		{"uppercase U escape", obj(str("requestId", `\U0041`), cust, pmd), false, "requestId contains an invalid escape"},
		{"short u escape", obj(str("requestId", `\u12`), cust, pmd), false, "requestId contains an invalid escape"},
		{"escape at end of body", `{"requestId":"\`, false, "requestId contains an invalid escape"},
		{"raw tab in value", obj(str("requestId", "SECRET\tSECRET"), cust, pmd), false, "requestId contains an unescaped control character"},
		{"raw newline in key", obj(rid, cust, pmd, str("ex\ntra", "SECRET")), false, "body has a key containing an unescaped control character"},

		// requestId.
		{"requestId missing", obj(cust, pmd), false, "requestId is required"},
		{"requestId null", obj(`"requestId":null`, cust, pmd), false, "requestId is required"},
		{"requestId empty", obj(`"requestId":""`, cust, pmd), false, "requestId must not be empty"},
		{"requestId 65 ASCII", obj(str("requestId", strings.Repeat("S", 65)), cust, pmd), false, "requestId must be at most 64 characters"},
		{"requestId 65 two-byte", obj(str("requestId", strings.Repeat("é", 65)), cust, pmd), false, "requestId must be at most 64 characters"},
		{"requestId 65 escaped pairs", obj(str("requestId", strings.Repeat(`\ud83d\ude00`, 65)), cust, pmd), false, "requestId must be at most 64 characters"},
		{"requestId escaped control", obj(str("requestId", `SECRET\u0001`), cust, pmd), false, "requestId must not contain control characters"},
		{"requestId escaped tab", obj(str("requestId", `SE\tCRET`), cust, pmd), false, "requestId must not contain control characters"},
		{"requestId escaped newline", obj(str("requestId", `SECRET\n`), cust, pmd), false, "requestId must not contain control characters"},
		{"requestId DEL", obj(str("requestId", "SECRET\x7f"), cust, pmd), false, "requestId must not contain control characters"},
		{"requestId leading space", obj(str("requestId", " SECRET"), cust, pmd), false, "requestId must not contain spaces or separators"},
		{"requestId trailing escaped space", obj(str("requestId", `SECRET\u0020`), cust, pmd), false, "requestId must not contain spaces or separators"},
		{"requestId inner space", obj(str("requestId", "SEC RET"), cust, pmd), false, "requestId must not contain spaces or separators"},
		{"requestId NBSP", obj(str("requestId", "SECRET\u00a0"), cust, pmd), false, "requestId must not contain spaces or separators"},
		{"requestId escaped NBSP", obj(str("requestId", `SECRET\u00A0`), cust, pmd), false, "requestId must not contain spaces or separators"},
		{"requestId ideographic space", obj(str("requestId", "SEC\u3000RET"), cust, pmd), false, "requestId must not contain spaces or separators"},
		{"requestId thin space", obj(str("requestId", "SEC\u2009RET"), cust, pmd), false, "requestId must not contain spaces or separators"},
		{"requestId NEL", obj(str("requestId", "SECRET\u0085"), cust, pmd), false, "requestId must not contain control characters"},
		{"requestId line separator", obj(str("requestId", `SECRET\u2028`), cust, pmd), false, "requestId must not contain spaces or separators"},
		{"requestId paragraph separator", obj(str("requestId", "\u2029SECRET"), cust, pmd), false, "requestId must not contain spaces or separators"},
		{"requestId zero-width space", obj(str("requestId", "SEC\u200bRET"), cust, pmd), false, "requestId must not contain format characters (zero-width, bidi, BOM)"},
		{"requestId zero-width joiner", obj(str("requestId", `SEC\u200dRET`), cust, pmd), false, "requestId must not contain format characters (zero-width, bidi, BOM)"},
		{"requestId BOM", obj(str("requestId", "\ufeffSECRET"), cust, pmd), false, "requestId must not contain format characters (zero-width, bidi, BOM)"},
		{"requestId right-to-left override", obj(str("requestId", "SECRET\u202e"), cust, pmd), false, "requestId must not contain format characters (zero-width, bidi, BOM)"},
		{"requestId soft hyphen", obj(str("requestId", "SEC\u00adRET"), cust, pmd), false, "requestId must not contain format characters (zero-width, bidi, BOM)"},
		{"referenceCustomerId may hold NBSP and a zero-width space", obj(rid, str("referenceCustomerId", "SE\u00a0C\u200bRET"), `"paymentMethodDetail":null`), false, "paymentMethodDetail is required"},
		{"referenceCustomerId may hold a tab", obj(rid, str("referenceCustomerId", `SE\tCRET`), `"paymentMethodDetail":null`), false, "paymentMethodDetail is required"},

		// referenceCustomerId / referenceUserId.
		{"both references", obj(rid, cust, user, pmd), false, "referenceCustomerId and referenceUserId are mutually exclusive"},
		{"neither reference", obj(rid, pmd), false, "referenceCustomerId or referenceUserId is required"},
		{"both references null", obj(rid, `"referenceCustomerId":null`, `"referenceUserId":null`, pmd), false, "referenceCustomerId or referenceUserId is required"},
		{"empty customer id", obj(rid, `"referenceCustomerId":""`, pmd), false, "referenceCustomerId must not be empty"},
		{"customer id 65", obj(rid, str("referenceCustomerId", strings.Repeat("9", 65)), pmd), false, "referenceCustomerId must be at most 64 characters"},
		{"user id 65 three-byte", obj(rid, str("referenceUserId", strings.Repeat("€", 65)), pmd), false, "referenceUserId must be at most 64 characters"},

		// paymentMethodDetail.
		{"paymentMethodDetail missing", obj(rid, cust), false, "paymentMethodDetail is required"},
		{"paymentMethodDetail null", obj(rid, cust, `"paymentMethodDetail":null`), false, "paymentMethodDetail is required"},
		{"type missing", obj(rid, cust, detail(`"card":{`+tok+`}`)), false, "paymentMethodDetail.paymentMethodDetailType is required"},
		{"type empty", obj(rid, cust, detail(str("paymentMethodDetailType", ""), `"card":{`+tok+`}`)), false, "paymentMethodDetail.paymentMethodDetailType must not be empty"},
		{"type not CARD", obj(rid, cust, detail(str("paymentMethodDetailType", "EXTERNALACCOUNT"), `"card":{`+tok+`}`)), false, "paymentMethodDetail.paymentMethodDetailType must be CARD"},
		{"type CARDS", obj(rid, cust, detail(str("paymentMethodDetailType", "CARDS"))), false, "paymentMethodDetail.paymentMethodDetailType must be CARD"},
		{"card missing", obj(rid, cust, detail(str("paymentMethodDetailType", "card"))), false, "paymentMethodDetail.card is required"},
		{"card null", obj(rid, cust, detail(str("paymentMethodDetailType", "CARD"), `"card":null`)), false, "paymentMethodDetail.card is required"},
		{"cardToken missing", obj(rid, cust, card(str("mask", "SECRET"))), false, "paymentMethodDetail.card.cardToken is required"},
		{"cardToken empty", obj(rid, cust, card(`"cardToken":""`)), false, "paymentMethodDetail.card.cardToken must not be empty"},
		{"cardToken 2049", obj(rid, cust, card(str("cardToken", strings.Repeat("S", 2049)))), false, "paymentMethodDetail.card.cardToken must be at most 2048 characters"},
		{"cardToken 2049 three-byte", obj(rid, cust, card(str("cardToken", strings.Repeat("€", 2049)))), false, "paymentMethodDetail.card.cardToken must be at most 2048 characters"},

		// operateSource.
		{"operateSource lower case", obj(rid, cust, pmd, str("operateSource", "merchant")), false, "operateSource must be MERCHANT"},
		{"operateSource other", obj(rid, cust, pmd, str("operateSource", "DWS")), false, "operateSource must be MERCHANT"},
		{"operateSource empty", obj(rid, cust, pmd, str("operateSource", "")), false, "operateSource must not be empty"},
		{"operateSource 17", obj(rid, cust, pmd, str("operateSource", "MERCHANTMERCHANTX")), false, "operateSource must be at most 16 characters"},
		{"strict operateSource missing", valid, true, "operateSource is required"},
		{"strict operateSource null", obj(rid, cust, pmd, `"operateSource":null`), true, "operateSource is required"},
		{"strict operateSource wrong", obj(rid, cust, pmd, str("operateSource", "SECRET")), true, "operateSource must be MERCHANT"},

		// Which error wins.
		{"body error before rule error", obj(cust, pmd, `"extra":1`), false, "extra must be a JSON string"},
		{"catalog order", obj(str("requestId", strings.Repeat("S", 65)), cust), false, "requestId must be at most 64 characters"},
		{"fields before one-of", obj(rid, cust, user), false, "paymentMethodDetail is required"},

		// Keys in paths.
		{"odd key", obj(rid, cust, pmd, `"we ird\"key":1`), false, `["we ird\"key"] must be a JSON string`},
		{"key with a dot", obj(rid, cust, pmd, `"extra":{"a.b":1}`), false, `extra["a.b"] must be a JSON string`},
		{"empty key", obj(rid, cust, pmd, `"":1`), false, `[""] must be a JSON string`},
		{"escaped control in key", obj(rid, cust, pmd, `"extra":{"a\u0001\u007f":1}`), false, `extra["a\u0001\u007f"] must be a JSON string`},
		{"escaped key decoded", obj(rid, cust, pmd, `"\u0065xtra":1`), false, `extra must be a JSON string`},
		{"long key", obj(rid, cust, pmd, `"`+long+`":1`), false, strings.Repeat("x", maxKeyRunes) + "… must be a JSON string"},
		{"long odd key", obj(rid, cust, pmd, `"extra":{"`+strings.Repeat("é ", 100)+`":1}`), false, `extra["` + strings.Repeat("é ", maxKeyRunes/2) + `…"] must be a JSON string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range Names(DWS) {
				_, err := mustAPI(t, name).Validate([]byte(tc.body), Options{Strict: tc.strict})
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%s: error %v, want *FieldError %q", name, err, tc.want)
				}
				if fe.Error() != tc.want {
					t.Errorf("%s: error %q, want %q", name, fe.Error(), tc.want)
				}
				if fe.Error() != fe.Path+" "+fe.Rule || fe.Path == "" || fe.Rule == "" {
					t.Errorf("%s: Path %q and Rule %q do not make up %q", name, fe.Path, fe.Rule, fe.Error())
				}
				if strings.Contains(fe.Error(), "SECRET") {
					t.Errorf("%s: message quotes a value: %q", name, fe.Error())
				}
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      string
		strict    bool
		requestID string
	}{
		{"minimal", obj(rid, cust, pmd), false, "SECRET-r"},
		{"user instead of customer", obj(rid, user, pmd), false, "SECRET-r"},
		{"other reference null", obj(rid, `"referenceCustomerId":null`, user, pmd), false, "SECRET-r"},
		{"type card", obj(rid, cust, detail(str("paymentMethodDetailType", "card"), `"card":{`+tok+`}`)), false, "SECRET-r"},
		{"type Card", obj(rid, cust, detail(str("paymentMethodDetailType", "Card"), `"card":{`+tok+`}`)), false, "SECRET-r"},
		{"strict with operateSource", obj(rid, cust, pmd, str("operateSource", "MERCHANT")), true, "SECRET-r"},
		{"optional operateSource null", obj(rid, cust, pmd, `"operateSource":null`), false, "SECRET-r"},
		{"requestId 64 ASCII", obj(str("requestId", strings.Repeat("S", 64)), cust, pmd), false, strings.Repeat("S", 64)},
		{"requestId 64 two-byte", obj(str("requestId", strings.Repeat("é", 64)), cust, pmd), false, strings.Repeat("é", 64)},
		{"requestId 64 escaped pairs", obj(str("requestId", strings.Repeat(`\ud83d\ude00`, 64)), cust, pmd), false, strings.Repeat("😀", 64)},
		{"requestId escapes decoded", obj(str("requestId", `\u0041B\/C\"\\\u00e9`), cust, pmd), false, "AB/C\"\\é"},
		{"requestId escaped key", obj(str(`\u0072equestId`, "SECRET-r"), cust, pmd), false, "SECRET-r"},
		{"cardToken 2048 three-byte", obj(rid, cust, card(str("cardToken", strings.Repeat("€", 2048)))), false, "SECRET-r"},
		{"customer id 64 four-byte", obj(rid, str("referenceCustomerId", strings.Repeat("😀", 64)), pmd), false, "SECRET-r"},
		{"32 levels of objects", deep(32, false), false, "SECRET-r"},
		{"32 levels of arrays", deep(32, true), false, "SECRET-r"},
		{"unknown members of every kind", obj(rid, cust, pmd,
			`"a":{}`, `"b":[]`, `"c":[{}]`, `"d":["x",["y"],{"z":"w","n":null}]`, `"e":null`, `"f":"\u0000"`), false, "SECRET-r"},
		{"whitespace everywhere", " \t\r\n{ \"requestId\" :\n\"SECRET-r\" , " + cust + " ,\t" + pmd + " }\n\r\t ", false, "SECRET-r"},
		{"U+FFFD and U+2028 as they are", obj(rid, cust, pmd, str("extra", "\uFFFD\u2028")), false, "SECRET-r"},
		// '_' and '-' count between members the catalog does not name.
		{"unknown x_y and xY", obj(rid, cust, pmd, str("x_y", "a"), str("xY", "b"), str("x-y", "c")), false, "SECRET-r"},
		{"unknown snake and camel in card", obj(rid, cust, card(tok, str("card_brand", "a"), str("cardBrand", "b"))), false, "SECRET-r"},
		{"catalog name inside an unknown object", obj(rid, cust, pmd, `"extra":{"requestId":"a","request_id":"b"}`), false, "SECRET-r"},
		{"catalog name inside an array", obj(rid, cust, pmd, `"extra":[{"requestId":"a","request_id":"b"}]`), false, "SECRET-r"},
		// Nor does letter case: only a member the catalog names is
		// checked, so only its case variants are refused.
		{"unknown case variants at the root", obj(rid, cust, pmd, str("extra", "a"), str("EXTRA", "b"), str("Extra", "c")), false, "SECRET-r"},
		{"unknown case variant of a null member", obj(rid, cust, pmd, `"extra":null`, str("EXTRA", "SECRET")), false, "SECRET-r"},
		{"Kelvin sign, long s and sigma in unknown keys", obj(rid, cust, pmd, str("kind", "a"), str("\u212aind", "b"), str("sign", "c"), str("\u017fign", "d"), str("\u03c3", "e"), str("\u03c2", "f")), false, "SECRET-r"},
		{"case variants in an object in an array", obj(rid, cust, pmd, `"extra":[{"ab":"a","aB":"b"}]`), false, "SECRET-r"},
		{"dotless i in an unknown object", obj(rid, cust, pmd, `"extra":{"id":"a","\u0131d":"b"}`), false, "SECRET-r"},
		{"unknown case variants in card", obj(rid, cust, card(tok, str("cardHolderName", "a"), str("cardholderName", "b"))), false, "SECRET-r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range Names(DWS) {
				res, err := mustAPI(t, name).Validate([]byte(tc.body), Options{Strict: tc.strict})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if res.Key != tc.requestID {
					t.Errorf("%s: RequestID %q, want %q", name, res.Key, tc.requestID)
				}
			}
		})
	}
}

func TestLongPathIsCut(t *testing.T) {
	key := strings.Repeat("k", 40)
	body := obj(rid, cust, pmd, `"`+key+`":`+strings.Repeat(`{"`+key+`":`, 20)+`1`+strings.Repeat(`}`, 20))
	_, err := mustAPI(t, "addPaymentMethod").Validate([]byte(body), Options{})
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v", err)
	}
	if !strings.HasPrefix(fe.Path, "…") || !strings.HasSuffix(fe.Path, "."+key) || len(fe.Path) > maxPathBytes+len("…") {
		t.Errorf("path %q not cut to its last %d bytes", fe.Path, maxPathBytes)
	}
	if fe.Rule != "must be a JSON string" || utf8.RuneCountInString(fe.Error()) > MaxMessageLength {
		t.Errorf("error %q", fe.Error())
	}
}

// A key's characters that would not show as they are (controls, bidi
// overrides, zero-width and format characters, line and paragraph
// separators) are escaped in the path, which reaches the answer and the
// log: a right-to-left override there would make the log line read as
// something else. Other characters stay as they are.
func TestPathEscapesInvisibleCharacters(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{`a\u202eb`, `["a\u202eb"]`},
		{`\u200bx`, `["\u200bx"]`},
		{`x\u2028y\u2029`, `["x\u2028y\u2029"]`},
		{`\u0085`, `["\u0085"]`},
		{`\ufeffk`, `["\ufeffk"]`},
		{`\udb40\udc01t`, `["\udb40\udc01t"]`}, // U+E0001, a tag character
		{`é ü`, `["é ü"]`},
		{`\u0001`, `["\u0001"]`},
		// Characters that show as nothing or as a space: Hangul fillers,
		// the combining grapheme joiner, variation selectors, the blank
		// Braille pattern, spaces other than U+0020, an unassigned code
		// point and private use.
		{`a\u3164`, `["a\u3164"]`},
		{`\u115fb`, `["\u115fb"]`},
		{`a\u034fb`, `["a\u034fb"]`},
		{`a\ufe0f`, `["a\ufe0f"]`},
		{`a\udb40\udd00`, `["a\udb40\udd00"]`}, // U+E0100
		{`\u2800`, `["\u2800"]`},
		{`a\u200ab`, `["a\u200ab"]`},
		{`a\u00a0b\u3000`, `["a\u00a0b\u3000"]`},
		{`a\u0378`, `["a\u0378"]`},
		{`a\ue000`, `["a\ue000"]`},
		{`한글 ✓`, `["한글 ✓"]`},
	} {
		body := obj(rid, cust, pmd, `"`+c.key+`":1`)
		_, err := mustAPI(t, "addPaymentMethod").Validate([]byte(body), Options{})
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: error %v", c.key, err)
		}
		if fe.Path != c.want {
			t.Errorf("key %s: path %q, want %q", c.key, fe.Path, c.want)
		}
	}
}

func TestFinishPathKeepsRunesWhole(t *testing.T) {
	p := []byte(strings.Repeat("é", maxPathBytes) + "x") // the last maxPathBytes bytes start inside an é
	got := finishPath(p)
	if !utf8.ValidString(got) || !strings.HasPrefix(got, "…é") || !strings.HasSuffix(got, "éx") || len(got) > maxPathBytes+len("…") {
		t.Errorf("finishPath cut a rune: %q", got)
	}
	if finishPath(nil) != "body" {
		t.Errorf("empty path is %q", finishPath(nil))
	}
}

func TestLookup(t *testing.T) {
	if got := Names(DWS); strings.Join(got, ",") != "addPaymentMethod,removePaymentMethod" {
		t.Errorf("Names(DWS) = %q", got)
	}
	Names()[0] = "changed"
	if Names()[0] != "addPaymentMethod" {
		t.Error("Names shares its slice")
	}
	for _, name := range Names() {
		if a := mustAPI(t, name); a.Name() != name {
			t.Errorf("Lookup(%q).Name() = %q", name, a.Name())
		}
	}
	for _, name := range []string{"addpaymentmethod", "AddPaymentMethod", "notifyAddPaymentMethod", "notifypayment", ""} {
		if a, ok := Lookup(name); ok || a != nil {
			t.Errorf("Lookup(%q) = %v, %v", name, a, ok)
		}
	}
}

// TestCatalogEntry builds a third API from a spec, as the catalog would, to
// show that the walker needs no change and to reach the rule features the
// seed APIs do not use: a conditional requirement that can be off, enums of
// several values, a minimum length above one, a one-of group of three and
// a nested requirement under an optional parent.
func TestCatalogEntry(t *testing.T) {
	a := newAPI(spec{
		name:   "notifyThing",
		family: DWS,
		key:    []string{"id"},
		fields: []field{
			{path: "id", need: always, min: 3, max: 8, headerSafe: true},
			{path: "x.kind", need: always, enum: []string{"CARD", "WALLET"}, foldCase: true},
			{path: "x.card", object: true, when: &equals{"x.kind", "CARD"}},
			{path: "x.card.token", need: always},
			{path: "opt.inner", need: always},
			{path: "p"}, {path: "q"}, {path: "r"},
			{path: "mode", enum: []string{"on", "off"}},
		},
		oneOf: [][]string{{"p", "q", "r"}},
	})
	if a.Name() != "notifyThing" {
		t.Errorf("Name() = %q", a.Name())
	}
	for _, tc := range []struct{ body, want string }{
		{`{"id":"abc","x":{"kind":"wallet"},"p":"1"}`, ""},
		{`{"id":"abc","x":{"kind":"card","card":{"token":"t"}},"q":"1"}`, ""},
		{`{"id":"abc","x":{"kind":"card"},"p":"1"}`, "x.card is required"},
		{`{"id":"abc","x":{"kind":"card","card":{}},"p":"1"}`, "x.card.token is required"},
		{`{"id":"abc","x":{"kind":"coupon"},"p":"1"}`, "x.kind must be one of CARD, WALLET"},
		{`{"id":"ab","x":{"kind":"wallet"},"p":"1"}`, "id must be at least 3 characters"},
		{`{"id":"abc","x":{"kind":"wallet"},"opt":{},"p":"1"}`, "opt.inner is required"},
		{`{"id":"abc","x":{"kind":"wallet"},"opt":"s","p":"1"}`, ""},
		{`{"id":"abc","x":{"kind":"wallet"}}`, "p or q or r is required"},
		{`{"id":"abc","x":{"kind":"wallet"},"q":"1","r":"2"}`, "p and q and r are mutually exclusive"},
		{`{"id":"abc","x":{"kind":"wallet"},"r":"2","mode":"ON"}`, "mode must be one of on, off"},
		{`{"id":"abc","x":{"kind":"wallet"},"r":"2","mode":"on"}`, ""},
	} {
		res, err := a.Validate([]byte(tc.body), Options{})
		if got := errText(err); got != tc.want {
			t.Errorf("%s: error %q, want %q", tc.body, got, tc.want)
		}
		if err == nil && res.Key != "abc" {
			t.Errorf("%s: RequestID %q", tc.body, res.Key)
		}
	}
}

func TestCatalogMistakesPanic(t *testing.T) {
	id := field{path: "id", need: always, max: 8, headerSafe: true}
	const notKeyable = "key field id is not a header-safe string field with a maximum length"
	// What each case's panic must say: a panic for any other reason (a
	// nil map, an index out of range) is not the refusal under test.
	refusals := map[string]string{
		"no family":                                    "no family",
		"no key":                                       "no key",
		"key not a field":                              notKeyable,
		"single key optional":                          "a key of one field needs a required field",
		"key an object":                                notKeyable,
		"key not header-safe":                          notKeyable,
		"key without a maximum":                        notKeyable,
		"key folding case":                             notKeyable,
		"key nested, parent absent":                    "key field x.id is required but sits under an object that is not",
		"key nested, parent optional":                  "key field x.id is required but sits under an object that is not",
		"key too long":                                 "its key can exceed MaxKeyLength",
		"condition on missing path":                    "c depends on k, which is not a string field",
		"condition on an object":                       "c depends on k, which is not a string field",
		"one-of member missing":                        "one-of member q is not a field beside p",
		"conditional digest too long":                  "its key can exceed MaxKeyLength",
		"conditional digest without keyContent":        "the digest's condition must name a required key field",
		"conditional digest on a field not in the key": "the digest's condition must name a required key field",
		"conditional digest on an optional key field":  "the digest's condition must name a required key field",
		"second condition on an optional key field":    "the digest's condition must name a required key field",
		"one-of members apart":                         "one-of member x.q is not a field beside p",
		"key field allows a boolean":                   "key field id allows a boolean or number",
		"key field allows a number":                    "key field n allows a boolean or number",
		"condition on a field allowing a boolean":      "c depends on k, which is not a string field",
		"object field allows a number":                 "x is an object field that allows a scalar",
	}
	for name, s := range map[string]spec{
		"no family":                 {name: "a", key: []string{"id"}, fields: []field{id}},
		"no key":                    {name: "a", family: DWS, fields: []field{id}},
		"key not a field":           {name: "a", family: DWS, key: []string{"id"}},
		"single key optional":       {name: "a", family: DWS, key: []string{"id"}, fields: []field{{path: "id", max: 8, headerSafe: true}}},
		"key an object":             {name: "a", family: DWS, key: []string{"id"}, fields: []field{{path: "id", object: true, need: always, max: 8, headerSafe: true}}},
		"key not header-safe":       {name: "a", family: DWS, key: []string{"id"}, fields: []field{{path: "id", need: always, max: 8}}},
		"key without a maximum":     {name: "a", family: DWS, key: []string{"id"}, fields: []field{{path: "id", need: always, headerSafe: true}}},
		"key folding case":          {name: "a", family: DWS, key: []string{"id"}, fields: []field{{path: "id", need: always, max: 8, headerSafe: true, foldCase: true}}},
		"key nested, parent absent": {name: "a", family: DWS, key: []string{"x.id"}, fields: []field{{path: "x.id", need: always, max: 8, headerSafe: true}}},
		"key nested, parent optional": {name: "a", family: DWS, key: []string{"x.id"}, fields: []field{
			{path: "x", object: true}, {path: "x.id", need: always, max: 8, headerSafe: true}}},
		"key too long": {name: "a", family: DWS, key: []string{"id", "id2"}, fields: []field{
			{path: "id", need: always, max: 64, headerSafe: true}, {path: "id2", need: always, max: 65, headerSafe: true}}},
		"condition on missing path": {name: "a", family: DWS, key: []string{"id"}, fields: []field{id, {path: "c", when: &equals{"k", "v"}}}},
		"condition on an object":    {name: "a", family: DWS, key: []string{"id"}, fields: []field{id, {path: "k", object: true}, {path: "c", when: &equals{"k", "v"}}}},
		"one-of member missing":     {name: "a", family: DWS, key: []string{"id"}, fields: []field{id, {path: "p"}}, oneOf: [][]string{{"p", "q"}}},
		// A conditional digest: its bound counts (497 bytes without it,
		// 530 with it), and its condition names a required key field of a
		// key with keyContent.
		"conditional digest too long": {name: "a", family: Antom, key: []string{"id", "t"}, keyContent: true, keyContentIf: []equals{{"t", "V"}}, fields: []field{
			{path: "id", need: always, max: 64, headerSafe: true}, {path: "t", need: always, max: 60, headerSafe: true}}},
		"conditional digest without keyContent": {name: "a", family: Antom, key: []string{"id", "t"}, keyContentIf: []equals{{"t", "V"}}, fields: []field{
			id, {path: "t", need: always, max: 8, headerSafe: true}}},
		"conditional digest on a field not in the key": {name: "a", family: Antom, key: []string{"id"}, keyContent: true, keyContentIf: []equals{{"t", "V"}}, fields: []field{
			id, {path: "t", need: always, max: 8, headerSafe: true}}},
		"conditional digest on an optional key field": {name: "a", family: Antom, key: []string{"id", "t"}, keyContent: true, keyContentIf: []equals{{"t", "V"}}, fields: []field{
			id, {path: "t", max: 8, headerSafe: true}}},
		"second condition on an optional key field": {name: "a", family: Antom, key: []string{"id", "s", "t"}, keyContent: true, keyContentIf: []equals{{"s", "V"}, {"t", "V"}}, fields: []field{
			id, {path: "s", need: always, max: 8, headerSafe: true}, {path: "t", max: 8, headerSafe: true}}},
		"one-of members apart": {name: "a", family: DWS, key: []string{"id"}, fields: []field{id, {path: "p"}, {path: "x.q"}}, oneOf: [][]string{{"p", "x.q"}}},
		// A boolean or number allowance (field.also) is never on a key
		// field, a when dependency or an object.
		"key field allows a boolean": {name: "a", family: DWS, key: []string{"id"}, fields: []field{{path: "id", need: always, max: 8, headerSafe: true, also: alsoBoolean}}},
		"key field allows a number": {name: "a", family: Antom, key: []string{"id", "n"}, fields: []field{
			id, {path: "n", need: always, max: 8, headerSafe: true, also: alsoNumber}}},
		"condition on a field allowing a boolean": {name: "a", family: DWS, key: []string{"id"}, fields: []field{
			id, {path: "k", also: alsoBoolean}, {path: "c", when: &equals{"k", "true"}}}},
		"object field allows a number": {name: "a", family: DWS, key: []string{"id"}, fields: []field{id, {path: "x", object: true, also: alsoNumber}}},
	} {
		t.Run(name, func(t *testing.T) {
			want := refusals[name]
			if want == "" {
				t.Fatal("no expected refusal for this case")
			}
			defer func() {
				switch r := recover().(type) {
				case nil:
					t.Error("newAPI accepted the spec")
				case string:
					if !strings.HasPrefix(r, "notification: a: ") || !strings.Contains(r, want) {
						t.Errorf("newAPI panicked with %q, want the refusal %q", r, want)
					}
				default:
					t.Errorf("newAPI panicked with %v (%T), not its own refusal %q", r, r, want)
				}
			}()
			newAPI(s)
		})
	}
	// The key of "conditional digest too long" fits without its digest.
	newAPI(spec{name: "a", family: Antom, key: []string{"id", "t"}, fields: []field{
		{path: "id", need: always, max: 64, headerSafe: true}, {path: "t", need: always, max: 60, headerSafe: true}}})
}

func TestValidateConcurrently(t *testing.T) {
	bodies := map[string][]byte{"add.json": fixture(t, "add.json"), "remove.json": fixture(t, "remove.json")}
	want := make(map[string]Result)
	for name, b := range bodies {
		res, err := mustAPI(t, "addPaymentMethod").Validate(b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want[name] = res
	}
	bad := []byte(obj(rid, cust, card(tok, `"expiryYear":2030`)))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				name := "add.json"
				if (g+i)%2 == 1 {
					name = "remove.json"
				}
				res, err := mustAPI(t, "removePaymentMethod").Validate(bodies[name], Options{})
				if err != nil || res != want[name] {
					t.Errorf("%s: %+v, %v", name, res, err)
					return
				}
				if _, err := mustAPI(t, "addPaymentMethod").Validate(bad, Options{}); errText(err) != "paymentMethodDetail.card.expiryYear must be a JSON string" {
					t.Errorf("bad body: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestValidateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	body := fixture(t, "add.json")
	a := mustAPI(t, "addPaymentMethod")
	a.Validate(body, Options{}) // fill the pool
	// The RequestID string is the one allocation.
	if n := testing.AllocsPerRun(100, func() { a.Validate(body, Options{}) }); n > 1 {
		t.Errorf("Validate of the add sample allocates %v times, want at most 1", n)
	}
}
