package notification

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCodes(t *testing.T) {
	for _, tc := range []struct {
		code            Code
		status, message string
	}{
		{Success, "S", "success"},
		{UnknownException, "U", "API failed due to unknown reasons."},
		{ParamIllegal, "F", "Illegal parameters."},
		{InvalidSignature, "F", "Signature is invalid."},
		{AccessDenied, "F", "Access denied."},
		{RepeatReqInconsistent, "F", "Repeat request inconsistent."},
		{ProcessFail, "F", "A general business failure occurred."},
		{Code("NOT_A_CODE"), "U", "API failed due to unknown reasons."},
		{Code(""), "U", "API failed due to unknown reasons."},
	} {
		if got := tc.code.Status(); got != tc.status {
			t.Errorf("%q.Status() = %q, want %q", tc.code, got, tc.status)
		}
		if got := tc.code.DefaultMessage(); got != tc.message {
			t.Errorf("%q.DefaultMessage() = %q, want %q", tc.code, got, tc.message)
		}
	}
}

func TestEnvelopeBytes(t *testing.T) {
	for _, tc := range []struct {
		code    Code
		message string
		field   MessageField
		want    string
	}{
		// The seeds' response sample, compacted.
		{Success, "", ResultMsg, `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`},
		{Success, "", ResultMessage, `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}`},
		{Success, "", "", `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`},
		{Success, "", "resultmessage", `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`},
		{Success, "", BothMessageFields, `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success","resultMessage":"success"}}`},
		{Success, "", "Both", `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`},
		{UnknownException, "", BothMessageFields, `{"result":{"resultStatus":"U","resultCode":"UNKNOWN_EXCEPTION","resultMsg":"API failed due to unknown reasons.","resultMessage":"API failed due to unknown reasons."}}`},
		{ParamIllegal, "a \"b\"\n\xff", BothMessageFields, `{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMsg":"a \"b\"\n` + "\uFFFD" + `","resultMessage":"a \"b\"\n` + "\uFFFD" + `"}}`},
		{UnknownException, "", ResultMsg, `{"result":{"resultStatus":"U","resultCode":"UNKNOWN_EXCEPTION","resultMsg":"API failed due to unknown reasons."}}`},
		{ParamIllegal, "paymentMethodDetail.card.expiryYear must be a JSON string", ResultMsg, `{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMsg":"paymentMethodDetail.card.expiryYear must be a JSON string"}}`},
		{ParamIllegal, "", ResultMessage, `{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMessage":"Illegal parameters."}}`},
		{InvalidSignature, "", ResultMsg, `{"result":{"resultStatus":"F","resultCode":"INVALID_SIGNATURE","resultMsg":"Signature is invalid."}}`},
		{AccessDenied, "", ResultMsg, `{"result":{"resultStatus":"F","resultCode":"ACCESS_DENIED","resultMsg":"Access denied."}}`},
		{RepeatReqInconsistent, "", ResultMsg, `{"result":{"resultStatus":"F","resultCode":"REPEAT_REQ_INCONSISTENT","resultMsg":"Repeat request inconsistent."}}`},
		{ProcessFail, "", ResultMsg, `{"result":{"resultStatus":"F","resultCode":"PROCESS_FAIL","resultMsg":"A general business failure occurred."}}`},
		{Code("BOGUS\""), "x", ResultMsg, `{"result":{"resultStatus":"U","resultCode":"UNKNOWN_EXCEPTION","resultMsg":"x"}}`},
		{ParamIllegal, `["we ird\"key"] must be a JSON string`, ResultMsg, `{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMsg":"[\"we ird\\\"key\"] must be a JSON string"}}`},
		{ParamIllegal, "a\x00\x1f\n\r\t\b\f\\/<&>\u2028\u2029\u00e9\xff", ResultMsg, `{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL","resultMsg":"a\u0000\u001f\n\r\t\u0008\u000c\\/<&>\u2028\u2029é` + "\uFFFD" + `"}}`},
	} {
		if got := string(Envelope(tc.code, tc.message, tc.field)); got != tc.want {
			t.Errorf("Envelope(%q, %q, %q) =\n%s\nwant\n%s", tc.code, tc.message, tc.field, got, tc.want)
		}
		prefix := "HTTP body: "
		if got := string(AppendEnvelope([]byte(prefix), tc.code, tc.message, tc.field)); got != prefix+tc.want {
			t.Errorf("AppendEnvelope did not append: %s", got)
		}
	}
}

// decodeEnvelope decodes an envelope with encoding/json and returns its
// message, checking the keys on the way.
func decodeEnvelope(t testing.TB, b []byte, field MessageField) string {
	t.Helper()
	var env struct {
		Result map[string]string `json:"result"`
	}
	if err := json.Unmarshal(b, &env); err != nil || !json.Valid(b) {
		t.Fatalf("envelope %q is not JSON: %v", b, err)
	}
	keys := 3
	if field == BothMessageFields {
		keys = 4
	}
	if len(env.Result) != keys || env.Result["resultStatus"] == "" || env.Result["resultCode"] == "" {
		t.Fatalf("envelope %q lacks keys", b)
	}
	if field != BothMessageFields {
		msg, ok := env.Result[string(field)]
		if !ok {
			t.Fatalf("envelope %q has no %s", b, field)
		}
		return msg
	}
	msg, ok1 := env.Result[string(ResultMsg)]
	again, ok2 := env.Result[string(ResultMessage)]
	if !ok1 || !ok2 || msg != again || bytes.Index(b, []byte(ResultMsg)) > bytes.Index(b, []byte(ResultMessage)) {
		t.Fatalf("envelope %q does not carry the message as resultMsg, then the same as resultMessage", b)
	}
	return msg
}

// wantMessage is what a message should read as after the envelope: each
// invalid byte replaced by U+FFFD, at most MaxMessageLength runes.
func wantMessage(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == MaxMessageLength {
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

func TestEnvelopeMessageRoundTrip(t *testing.T) {
	var controls strings.Builder
	for c := range 0x20 {
		controls.WriteByte(byte(c))
	}
	for name, msg := range map[string]string{
		"controls":           controls.String(),
		"quotes":             `"a" \ "b" \\ \u0041`,
		"html":               "<script>&amp;</script>",
		"line separators":    "\u2028\u2029\u0085",
		"invalid UTF-8":      "a\xffb\xc3(\xed\xa0\x80\xf0\x9f\x98",
		"256 two-byte":       strings.Repeat("é", 300),
		"emoji at the limit": strings.Repeat("x", 255) + "😀😀",
		"exactly 256":        strings.Repeat("y", 256),
		"long with escapes":  strings.Repeat("\"\n", 200),
	} {
		for _, field := range []MessageField{ResultMsg, ResultMessage, BothMessageFields} {
			got := decodeEnvelope(t, Envelope(ParamIllegal, msg, field), field)
			if want := wantMessage(msg); got != want {
				t.Errorf("%s: message %q, want %q", name, got, want)
			}
			if n := utf8.RuneCountInString(got); n > MaxMessageLength {
				t.Errorf("%s: %d runes", name, n)
			}
		}
	}
}

func TestAppendEnvelopeAllocations(t *testing.T) {
	dst := make([]byte, 0, 1024)
	msg := "paymentMethodDetail.card.expiryYear must be a JSON string \"\n\xff é"
	for _, field := range []MessageField{ResultMessage, BothMessageFields} {
		if n := testing.AllocsPerRun(100, func() { dst = AppendEnvelope(dst[:0], ParamIllegal, msg, field) }); n != 0 {
			t.Errorf("AppendEnvelope(%s) allocates %v times with room in dst", field, n)
		}
	}
}

// TestFieldErrorsFitTheEnvelope checks that the longest error messages the
// walker can produce are not cut by the envelope.
func TestFieldErrorsFitTheEnvelope(t *testing.T) {
	key := strings.Repeat(`\u0001`, 60) // a control character, six bytes in a path
	body := obj(rid, cust, pmd, strings.Repeat(`"`+key+`":{`, 30)+"\"\x01\":{}"+strings.Repeat(`}`, 30))
	_, err := mustAPI(t, "addPaymentMethod").Validate([]byte(body), Options{})
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	if utf8.RuneCountInString(msg) > MaxMessageLength || !strings.HasPrefix(msg, "…") || !strings.HasSuffix(msg, " has a key containing an unescaped control character") {
		t.Errorf("message of %d runes: %q", utf8.RuneCountInString(msg), msg)
	}
	if got := decodeEnvelope(t, Envelope(ParamIllegal, msg, ResultMsg), ResultMsg); got != msg {
		t.Errorf("envelope changed the message: %q", got)
	}
}

func FuzzAppendEnvelope(f *testing.F) {
	f.Add("paymentMethodDetail.card.expiryYear must be a JSON string")
	f.Add("\"\\\x00\xff\u2028" + strings.Repeat("é", 260))
	f.Fuzz(func(t *testing.T, msg string) {
		b := AppendEnvelope(nil, RepeatReqInconsistent, msg, BothMessageFields)
		got := decodeEnvelope(t, b, BothMessageFields)
		want := wantMessage(msg)
		if msg == "" {
			want = RepeatReqInconsistent.DefaultMessage()
		}
		if got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	})
}
