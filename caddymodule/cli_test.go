package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/adminapi"
)

// adminAddress is the in-process Caddy's admin API (helpers_test.go).
const adminAddress = "localhost:2999"

// The cli package's commands against an in-process gateway: send as DWS,
// inspect and the admin API it reads.

// keyFile is the path of one of the gateway's test keys as a PEM file
// (keysOnce writes dws_private.pem, dws_public.pem, merchant_private.pem
// and merchant_public.pem), the form the commands take.
func keyFile(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(keys(t).dir, name)
}

func TestSendAndInspectThroughTheGateway(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{sign: true})
	send := func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		base := []string{"send", "--client-id", testClientID, "--key", keyFile(t, "dws_private.pem")}
		return runCLI(t, append(base, args...)...)
	}

	phase(t, "send signs the sample as DWS does and it is forwarded", func(t *testing.T) {
		out, err := send(t, "--url", gatewayURL+addPath, "--sample", "addPaymentMethod", "--request-id", "cli-add-1", "--verify-key", keyFile(t, "merchant_public.pem"))
		if err != nil {
			t.Fatalf("send: %v\n%s", err, out)
		}
		want := regexp.MustCompile(`^POST http://localhost:9080/dws/notify/addPaymentMethod  \(Client-Id 2188120000000000, Request-Time \d{13}, requestId cli-add-1\)
HTTP 200
\{"result":\{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"\}\}
answer signature: verified with ` + regexp.QuoteMeta(keyFile(t, "merchant_public.pem")) + ` \(keyVersion 2\)
$`)
		if !want.MatchString(out) {
			t.Fatalf("send printed:\n%s", out)
		}
		hits := b.hits()
		if len(hits) != 1 {
			t.Fatalf("backend got %d requests, want 1", len(hits))
		}
		// Only the requestId's value changed: every other byte is the sample's.
		if string(hits[0].body) != string(addSample(t, "cli-add-1")) {
			t.Fatalf("backend got a body other than the sample with the new requestId:\n%s", hits[0].body)
		}
		if hits[0].header.Get("X-Dws-Request-Id") != "cli-add-1" || hits[0].header.Get("X-Dws-Verified") != "true" {
			t.Fatalf("backend headers: %v", hits[0].header)
		}
		for _, secret := range []string{"cardToken", "ALIPAYpwB", "523945", "signature="} {
			if strings.Contains(out, secret) {
				t.Fatalf("send printed %q (body or signature):\n%s", secret, out)
			}
		}
	})

	phase(t, "sent again, as DWS would after a lost answer: S from the store", func(t *testing.T) {
		if out, err := send(t, "--url", gatewayURL+addPath, "--sample", "addPaymentMethod", "--request-id", "cli-add-1"); err != nil || !strings.Contains(out, `"resultStatus":"S"`) {
			t.Fatalf("resend: %v\n%s", err, out)
		}
		if n := len(b.hits()); n != 1 {
			t.Fatalf("the resend reached the backend (%d requests)", n)
		}
	})

	phase(t, "the remove sample, with its own requestId", func(t *testing.T) {
		out, err := send(t, "--url", gatewayURL+removePath, "--sample", "removePaymentMethod", "--verify-key", keyFile(t, "merchant_public.pem"))
		if err != nil || !strings.Contains(out, `"resultCode":"SUCCESS"`) || !strings.Contains(out, "answer signature: verified") {
			t.Fatalf("send remove sample: %v\n%s", err, out)
		}
	})

	phase(t, "the answer checked with a key that did not sign it", func(t *testing.T) {
		out, err := send(t, "--url", gatewayURL+addPath, "--sample", "addPaymentMethod", "--request-id", "cli-add-2", "--verify-key", keyFile(t, "dws_public.pem"))
		if err == nil || !strings.Contains(out, "answer signature: DOES NOT VERIFY with "+keyFile(t, "dws_public.pem")) {
			t.Fatalf("wrong verify key: err %v\n%s", err, out)
		}
	})

	phase(t, "inspect asks the admin API", func(t *testing.T) {
		storage, err := filepath.EvalSymlinks(g.storage)
		if err != nil {
			t.Fatal(err)
		}
		out, err := runCLI(t, "inspect", "--request-id", "cli-add-1", "--address", adminAddress)
		if err != nil {
			t.Fatalf("inspect: %v\n%s", err, out)
		}
		for _, line := range []string{
			"requestId cli-add-1\n",
			"  api          addPaymentMethod\n",
			"  Client-Id    " + testClientID + "\n",
			"  state        done\n",
			"  outcome      accepted: the backend took it (HTTP 200)\n",
			"  answered     SUCCESS (what DWS gets for every resend)\n",
			"  claimed      ",
			"  completed    ",
			"  kept until   ",
			"  storage      " + storage + "\n",
		} {
			if !strings.Contains(out, line) {
				t.Errorf("inspect output lacks %q:\n%s", line, out)
			}
		}
		if out2, err := runCLI(t, "inspect", "--request-id", "cli-add-1", "--api", "addPaymentMethod", "--client-id", testClientID, "--address", adminAddress); err != nil || out2 != out {
			t.Errorf("inspect with --api and --client-id: %v\n%s\nwant\n%s", err, out2, out)
		}
		_, err = runCLI(t, "inspect", "--request-id", "cli-add-1", "--api", "removePaymentMethod", "--address", adminAddress)
		if err == nil || !strings.HasPrefix(err.Error(), `no record of requestId "cli-add-1" (api removePaymentMethod) in the store at `+storage+": it never arrived") {
			t.Errorf("inspect of an absent record: %v", err)
		}
		out, err = runCLI(t, "inspect", "--request-id", "cli-add-1", "--address", adminAddress, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var ans adminapi.RecordsAnswer
		if err := json.Unmarshal([]byte(out), &ans); err != nil || len(ans.Records) != 1 {
			t.Fatalf("inspect --json: %v\n%s", err, out)
		}
		if r := ans.Records[0]; r.Outcome != "accepted" || r.BackendStatus != 200 || r.ResultCode != "SUCCESS" || r.Storage != storage {
			t.Fatalf("inspect --json record: %+v", r)
		}
	})
}

func TestSendEdgeCasesThroughTheGateway(t *testing.T) {
	b := newBackend(t)
	startGateway(t, b, gatewayConfig{}) // answers unsigned

	// The URI signed is the URL's path and query, as sent.
	out, err := runCLI(t, "send", "--url", gatewayURL+addPath+"?merchant=7&x=a+b%2Fc", "--client-id", testClientID,
		"--key", keyFile(t, "dws_private.pem"), "--sample", "addPaymentMethod", "--request-id", "q-1", "--verify-key", keyFile(t, "merchant_public.pem"))
	if !strings.Contains(out, `"resultStatus":"S"`) {
		t.Fatalf("send with a query: %v\n%s", err, out)
	}
	// --verify-key asked for a signed answer: an unsigned one fails the command.
	if err == nil || !strings.Contains(out, "answer signature: NOT SIGNED") {
		t.Errorf("unsigned answer with --verify-key: err %v, want an error and NOT SIGNED:\n%s", err, out)
	}

	// Credentials in --url are never echoed.
	out, err = runCLI(t, "send", "--url", "http://dws:hunter2@"+strings.TrimPrefix(gatewayURL, "http://")+addPath, "--client-id", testClientID,
		"--key", keyFile(t, "dws_private.pem"), "--sample", "addPaymentMethod", "--request-id", "q-cred")
	if err != nil || !strings.Contains(out, `"resultStatus":"S"`) {
		t.Fatalf("send with credentials in --url: %v\n%s", err, out)
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("send printed the password of --url:\n%s", out)
	}

	// A body file, pretty-printed differently from the sample, with its
	// requestId replaced: spliced, not re-serialised.
	body := filepath.Join(t.TempDir(), "remove.json")
	raw := "{\n    \"requestId\" : \"file-0\",\n    \"referenceUserId\": \"u-1\",\n    \"paymentMethodDetail\": {\"paymentMethodDetailType\": \"CARD\", \"card\": {\"cardToken\": \"tok\"}}\n}\n"
	if err := os.WriteFile(body, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "send", "--url", gatewayURL+removePath, "--client-id", testClientID, "--key", keyFile(t, "dws_private.pem"), "--body", body, "--request-id", "file-1")
	if err != nil || !strings.Contains(out, `"resultStatus":"S"`) || !strings.Contains(out, "requestId file-1)") {
		t.Fatalf("send --body: %v\n%s", err, out)
	}
	hits := b.hits()
	if got, want := string(hits[len(hits)-1].body), strings.Replace(raw, `"file-0"`, `"file-1"`, 1); got != want {
		t.Fatalf("backend got\n%s\nwant\n%s", got, want)
	}

	// Signed with a key the gateway does not know: the simulator shows the
	// gateway's F answer (its job is done: exit 0), and nothing is forwarded.
	before := len(b.hits())
	out, err = runCLI(t, "send", "--url", gatewayURL+addPath, "--client-id", testClientID, "--key", keyFile(t, "merchant_private.pem"), "--sample", "addPaymentMethod", "--request-id", "bad-key")
	if err != nil || !strings.Contains(out, `"resultCode":"INVALID_SIGNATURE"`) {
		t.Fatalf("send with another key: %v\n%s", err, out)
	}
	if len(b.hits()) != before {
		t.Fatal("a notification with a bad signature reached the backend")
	}

	// A path the gateway does not serve: HTTP 404 with an F envelope.
	out, err = runCLI(t, "send", "--url", gatewayURL+"/elsewhere", "--client-id", testClientID, "--key", keyFile(t, "dws_private.pem"), "--sample", "addPaymentMethod")
	if err != nil || !strings.Contains(out, "HTTP 404\n") || !strings.Contains(out, `"resultCode":"PARAM_ILLEGAL"`) {
		t.Fatalf("send to another path: %v\n%s", err, out)
	}
}

// inspect can read the admin address from a config file, as `caddy reload`
// does: adapting the config must not provision it, so the storage directory
// it names is never opened (or even created).
func TestInspectReadsTheAdminAddressFromAConfigWithoutOpeningTheStore(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})
	g.send(g.notice(addPath, addSample(t, "cfg-1"))).expect(t, 200, "S", "SUCCESS")

	dir := t.TempDir()
	storage := filepath.Join(dir, "storage-never-opened")
	caddyfile := filepath.Join(dir, "Caddyfile")
	config := `{
	admin ` + adminAddress + `
}
http://localhost:9080 {
	dws_notify {
		client_id ` + testClientID + `
		dws_public_key {file.` + filepath.Join(g.keys.dir, "dws_public.pem") + `}
		api addPaymentMethod ` + addPath + `
		storage ` + storage + `
	}
}
`
	if err := os.WriteFile(caddyfile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "inspect", "--config", caddyfile, "--request-id", "cfg-1")
	if err != nil || !strings.Contains(out, "requestId cfg-1\n") {
		t.Fatalf("inspect --config: %v\n%s", err, out)
	}
	if _, err := os.Stat(storage); !os.IsNotExist(err) {
		t.Fatalf("inspect touched the storage directory of the config it read (stat: %v)", err)
	}
	storePool.Range(func(key, _ any) bool {
		if strings.HasPrefix(key.(string), dir) {
			t.Errorf("inspect opened a store for %s", key)
		}
		return true
	})
}
