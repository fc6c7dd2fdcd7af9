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
