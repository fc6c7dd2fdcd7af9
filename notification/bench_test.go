package notification

import (
	"strings"
	"testing"
)

func benchmarkValidate(b *testing.B, api, name string) {
	benchmarkBody(b, mustAPI(b, api), fixture(b, name))
}

// benchmarkBody measures a.Validate of body, which must pass.
func benchmarkBody(b *testing.B, a *API, body []byte) {
	if _, err := a.Validate(body, Options{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Validate(body, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateAddSample measures validation and fingerprint of the seed
// add sample; the budget is 10 µs.
func BenchmarkValidateAddSample(b *testing.B) {
	benchmarkValidate(b, "addPaymentMethod", "add.json")
}

// BenchmarkValidateRemoveSample is the same for the seed remove sample.
func BenchmarkValidateRemoveSample(b *testing.B) {
	benchmarkValidate(b, "removePaymentMethod", "remove.json")
}

// BenchmarkValidatePaymentSample is the same for the Antom notifyPayment
// sample, whose key is composed of three fields.
func BenchmarkValidatePaymentSample(b *testing.B) {
	benchmarkValidate(b, "notifyPayment", "antom/notifyPayment.json")
}

// BenchmarkValidateRejectDeep measures a rejection that writes an error with
// a long path: a number 31 levels down.
func BenchmarkValidateRejectDeep(b *testing.B) {
	a := mustAPI(b, "addPaymentMethod")
	body := []byte(obj(rid, cust, pmd, `"extra":`+strings.Repeat(`{"x":`, 30)+`1`+strings.Repeat(`}`, 30)))
	if _, err := a.Validate(body, Options{}); err == nil {
		b.Fatal("accepted")
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Validate(body, Options{})
	}
}

// BenchmarkAppendEnvelope measures writing a PARAM_ILLEGAL envelope with a
// field error message into a reused buffer.
func BenchmarkAppendEnvelope(b *testing.B) {
	dst := make([]byte, 0, 512)
	msg := "paymentMethodDetail.card.expiryYear must be a JSON string"
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendEnvelope(dst[:0], ParamIllegal, msg, ResultMsg)
	}
}

// BenchmarkValidateScalarsAndAliases measures a notifyPayment body with
// the numbers and boolean its fields allow and unknown members whose
// '_' and '-' start the alias pass (no base figure: before them the body
// was refused).
func BenchmarkValidateScalarsAndAliases(b *testing.B) {
	benchmarkBody(b, mustAPI(b, "notifyPayment"), []byte(replaceOnce(b, sample(b, "notifyPayment"), `"paymentTime"`,
		`"settlementQuote": {"quotePrice": -7.4120E-1, "guaranteed": false}, "retryInfo": {"availableRetries": 3}, "x_y": "a", "xY": "b", "payment-date": "c", "paymentTime"`)))
}
