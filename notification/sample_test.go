package notification

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
// examples/send-sample.sh) are the same samples byte for byte.
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
	for _, name := range []string{"", "add", "AddPaymentMethod", "notifypayment", "NotifyPayment", "../add", "antom/notifyPayment", "notifyPayment.json", "notifyAuthorization", "notifysubscription"} {
		if b, ok := Sample(name); ok || b != nil {
			t.Errorf("Sample(%q) = %d bytes, %v; want nil, false", name, len(b), ok)
		}
	}
}

// examples/send-sample.sh sends every API of the catalog, each to the path
// Caddyfile.example serves it at (/<family>/notify/<api>), and its
// requestId replaces the member `caddy dws-notify send --request-id` does:
// requestId, or an Antom API's first key field, found once in the sample
// (the script's sed replaces the first occurrence).
func TestSendSampleScriptKnowsEveryAPI(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "examples", "send-sample.sh"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	arm := regexp.MustCompile(`(?m)^([A-Za-z| ]+)\) family=(\w+) member=(\w+) ;;$`)
	type entry struct{ family, member string }
	known := map[string]entry{}
	for _, m := range arm.FindAllStringSubmatch(string(script), -1) {
		for name := range strings.SplitSeq(m[1], "|") {
			known[strings.TrimSpace(name)] = entry{m[2], m[3]}
		}
	}
	for _, name := range Names() {
		a := mustAPI(t, name)
		want := entry{a.Family().String(), "requestId"}
		if a.Family() == Antom {
			want.member = a.KeyFields()[0]
		}
		if got, ok := known[name]; !ok || got != want {
			t.Errorf("send-sample.sh: %s has family=%s member=%s, want family=%s member=%s", name, got.family, got.member, want.family, want.member)
		}
		body, _ := Sample(name)
		if n := strings.Count(string(body), `"`+want.member+`":`); n != 1 {
			t.Errorf("the %s sample has %d members named %s, want 1", name, n, want.member)
		}
		line := "\tapi " + name + " /" + want.family + "/notify/" + name + "\n"
		if !strings.Contains(string(example), line) {
			t.Errorf("Caddyfile.example has no line %q", line)
		}
	}
	if len(known) != len(Names()) {
		t.Errorf("send-sample.sh knows %d APIs, the catalog has %d", len(known), len(Names()))
	}
}
