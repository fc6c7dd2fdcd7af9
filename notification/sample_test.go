package notification

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The embedded samples are the testdata files byte for byte, they pass their
// API's rules, and every API of the catalog, of every family, has one.
func TestSampleIsTheSeedFile(t *testing.T) {
	files := map[string]string{"addPaymentMethod": "add.json", "removePaymentMethod": "remove.json"}
	for _, name := range Names(Antom) {
		files[name] = filepath.Join("antom", name+".json")
	}
	for _, name := range Names() {
		file, ok := files[name]
		if !ok {
			t.Fatalf("API %s has no seed sample file listed in this test", name)
		}
		want, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := Sample(name)
		if !ok {
			t.Fatalf("Sample(%q) reports no sample", name)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Sample(%q) differs from testdata/%s", name, file)
		}
		if _, err := mustAPI(t, name).Validate(got, Options{}); err != nil {
			t.Fatalf("Sample(%q) fails its API's rules: %v", name, err)
		}
	}
}

// The copies operators use (examples/<api>.json, sent by
// examples/send-sample.sh) are the same seed samples byte for byte. (The
// Antom samples get theirs when the Caddy module serves them.)
func TestExampleFilesAreTheSamples(t *testing.T) {
	for _, name := range Names() {
		want, _ := Sample(name)
		got, err := os.ReadFile(filepath.Join("..", "examples", name+".json"))
		if err != nil {
			t.Fatalf("examples/%s.json: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("examples/%s.json differs from the seed sample (notification/testdata)", name)
		}
	}
}

// JoinKeyParts joins values as a composed key does: a valid body's key
// read back from its fields' values is its Result.Key.
func TestJoinKeyParts(t *testing.T) {
	if got := JoinKeyParts("a:b", "c%d", ""); got != "a%3Ab:c%25d:" {
		t.Errorf("JoinKeyParts = %q", got)
	}
	body := []byte(`{"notifyType":"PAYMENT_RESULT","result":{"resultCode":"SUCCESS","resultStatus":"S"},"paymentRequestId":"r",` +
		`"paymentId":"p:1%","paymentAmount":{"currency":"SGD","value":"1"}}`)
	api, _ := Lookup("notifyPayment")
	res, err := api.Validate(body, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := JoinKeyParts("p:1%", "PAYMENT_RESULT", "S"); got != res.Key {
		t.Errorf("JoinKeyParts = %q, Result.Key = %q", got, res.Key)
	}
}

func TestSampleReturnsACopy(t *testing.T) {
	a, _ := Sample("addPaymentMethod")
	a[0] = 'X'
	b, _ := Sample("addPaymentMethod")
	if b[0] == 'X' {
		t.Fatal("a caller's change to the returned slice reached the embedded sample")
	}
}

func TestSampleUnknownAPI(t *testing.T) {
	for _, name := range []string{"", "add", "AddPaymentMethod", "notifypayment", "NotifyPayment", "../add", "antom/notifyPayment", "notifyPayment.json", "notifyVaulting"} {
		if b, ok := Sample(name); ok || b != nil {
			t.Errorf("Sample(%q) = %d bytes, %v; want nil, false", name, len(b), ok)
		}
	}
}
