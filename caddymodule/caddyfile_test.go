package caddymodule

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dwsnotify/dws_notify/config"
)

func TestUnmarshalCaddyfileFull(t *testing.T) {
	k := keys(t)
	pub := bareBase64(t, &k.dws.PublicKey)
	input := `dws_notify {
		client_id 2188120000000000 2188120000000001
		dws_public_key ` + pub + `
		dws_public_key {file./etc/dws/next.pem} 2
		merchant_private_key {env.MERCHANT_KEY} 3
		api addPaymentMethod /dws/add
		api removePaymentMethod /dws/remove
		storage /var/lib/dws
		retention 200h
		request_time_tolerance off
		max_body_size 128KiB
		forward_timeout 5s
		body_timeout 3s
		business_reject_status 400 422
		business_reject_status 451
		result_message_field resultMessage
		acknowledge on_receipt {
			key {file./etc/dws/inbox.key} k2
			key ` + inboxKeyA + `
			order_secret {env.ORDER_SECRET}
			max_age 3d
			backoff 2s 10m
			max_queued 5000
		}
		strict
		forward_signature
	}`
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	two, three := 2, 3
	want := Handler{
		Handler: config.Handler{
			ClientID:             []string{"2188120000000000", "2188120000000001"},
			DWSPublicKey:         []config.Key{{Key: pub}, {Key: "{file./etc/dws/next.pem}", KeyVersion: &two}},
			MerchantPrivateKey:   &config.Key{Key: "{env.MERCHANT_KEY}", KeyVersion: &three},
			API:                  []config.API{{Name: "addPaymentMethod", Path: "/dws/add"}, {Name: "removePaymentMethod", Path: "/dws/remove"}},
			Storage:              "/var/lib/dws",
			Retention:            config.Duration(200 * time.Hour),
			RequestTimeTolerance: "off",
			MaxBodySize:          128 << 10,
			ForwardTimeout:       config.Duration(5 * time.Second),
			BodyTimeout:          config.Duration(3 * time.Second),
			BusinessRejectStatus: []int{400, 422, 451},
			ResultMessageField:   "resultMessage",
			Acknowledge: &config.Acknowledge{
				Mode:         config.AckOnReceipt,
				Keys:         []config.InboxKey{{Key: "{file./etc/dws/inbox.key}", ID: "k2"}, {Key: inboxKeyA}},
				OrderSecret:  "{env.ORDER_SECRET}",
				MaxAge:       config.Duration(72 * time.Hour),
				FirstBackoff: config.Duration(2 * time.Second),
				MaxBackoff:   config.Duration(10 * time.Minute),
				MaxQueued:    5000,
			},
			Strict:           true,
			ForwardSignature: true,
		},
	}
	got, _ := json.Marshal(h)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("parsed\n%s\nwant\n%s", got, exp)
	}
}

func TestUnmarshalCaddyfileMinimal(t *testing.T) {
	k := keys(t)
	var h Handler
	input := "dws_notify {\n client_id c1\n dws_public_key " + bareBase64(t, &k.dws.PublicKey) + "\n api addPaymentMethod\n}"
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	if len(h.API) != 1 || h.API[0].Path != "" || h.Retention != 0 || h.BusinessRejectStatus != nil {
		t.Fatalf("unexpected config %+v", h)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	k := keys(t)
	pub := bareBase64(t, &k.dws.PublicKey)
	head := "dws_notify {\n\tclient_id c1\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod /a\n"
	// Each case adds lines after the three valid ones (lines 2-4), so the
	// first added line is line 5.
	cases := []struct {
		name, input, want string
	}{
		{"unknown subdirective", head + "\tfrobnicate on\n}", `unknown subdirective "frobnicate" (known: client_id, dws_public_key, merchant_private_key, api, storage, store, retention, request_time_tolerance, max_body_size, forward_timeout, body_timeout, business_reject_status, result_message_field, acknowledge, strict, forward_signature), at Testfile:5`},
		{"misspelt subdirective", head + "\tretension 48h\n}", `unknown subdirective "retension"; did you mean retention?, at Testfile:5`},
		// A PEM key pasted without backticks: its lines become tokens,
		// and none may be quoted.
		{"key without backticks", head + "\tmerchant_private_key -----BEGIN\n\tMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n}",
			"unknown subdirective (a 64-byte token that is not a name: key material written without backticks?) (known: client_id, "},
		{"swapped letters", head + "\tforward_timoeut 5s\n}", `unknown subdirective "forward_timoeut"; did you mean forward_timeout?, at Testfile:5`},
		{"short misspelt subdirective", head + "\tapis addPaymentMethod\n}", `unknown subdirective "apis"; did you mean api?, at Testfile:5`},
		{"acknowledge misspelt mode", head + "\tacknowledge on_reciept\n}", `acknowledge: unknown mode "on_reciept"; did you mean on_receipt?, at Testfile:5`},
		{"acknowledge misspelt option", head + "\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t\tmax_queue 10\n\t}\n}", `acknowledge: unknown option "max_queue"; did you mean max_queued?, at Testfile:7`},
		{"argument on the directive", "dws_notify extra {\n}", "wrong argument count"},
		{"client_id without ids", head + "\tclient_id\n}", "wrong argument count or unexpected line ending after 'client_id', at Testfile:5"},
		{"client_id twice", head + "\tclient_id c1\n}", "client_id c1 is listed twice, at Testfile:5"},
		{"key garbage", head + "\tdws_public_key not-a-key 2\n}", "dws_notify: dws_public_key #2: key material is neither PEM nor standard Base64 DER, at Testfile:5"},
		{"key version", head + "\tdws_public_key " + pub + " two\n}", `dws_public_key: key version "two" is not a number: key version must be between 0 and 2147483647, at Testfile:5`},
		{"key version beyond int64", head + "\tdws_public_key " + pub + " 99999999999999999999\n}", `dws_public_key: key version "99999999999999999999" is not a number: key version must be between 0 and 2147483647, at Testfile:5`},
		{"key version negative", head + "\tdws_public_key " + pub + " -1\n}", "dws_notify: dws_public_key #2: key version must be between 0 and 2147483647, not -1, at Testfile:5"},
		{"same key version twice", head + "\tdws_public_key " + pub + "\n}", "dws_public_key version 1 is configured twice, at Testfile:5"},
		{"private key where public expected", head + "\tmerchant_private_key " + pub + "\n}", "merchant_private_key: "},
		{"merchant key twice", head + "\tmerchant_private_key {env.A}\n\tmerchant_private_key {env.B}\n}", "merchant_private_key is already set at line 5, at Testfile:6"},
		{"unknown api", head + "\tapi notifyAuthorization /p\n}", `unknown api "notifyAuthorization" (known: addPaymentMethod, notifyCapture, notifyDispute, notifyPayment, notifyRefund, notifyRegistrationStatus, notifySubscription, notifySubscriptionPayment, notifyVaulting, removePaymentMethod), at Testfile:5`},
		{"api twice", head + "\tapi addPaymentMethod /b\n}", "api addPaymentMethod is configured twice, at Testfile:5"},
		{"path reused", head + "\tapi removePaymentMethod /a\n}", "path /a is used by api addPaymentMethod too, at Testfile:5"},
		{"relative path", head + "\tapi removePaymentMethod remove\n}", `path "remove" must start with /, at Testfile:5`},
		{"path with query", head + "\tapi removePaymentMethod /r?x=1\n}", "must not contain a query or fragment, at Testfile:5"},
		{"api path missing with two apis", "dws_notify {\n\tclient_id c1\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod /a\n\tapi removePaymentMethod\n}", "api removePaymentMethod needs a path when more than one api is configured, at Testfile:5"},
		{"storage twice", head + "\tstorage /a\n\tstorage /b\n}", "storage is already set at line 5, at Testfile:6"},
		{"body_timeout zero", head + "\tbody_timeout 0s\n}", "body_timeout must be positive, at Testfile:5"},
		{"body_timeout garbage", head + "\tbody_timeout soon\n}", `body_timeout: "soon" is not a duration, at Testfile:5`},
		{"forward_signature twice", head + "\tforward_signature\n\tforward_signature\n}", "forward_signature is already set at line 5, at Testfile:6"},
		{"forward_signature with an argument", head + "\tforward_signature on\n}", "wrong argument count"},
		{"storage without dir", head + "\tstorage\n}", "wrong argument count"},
		{"bad retention", head + "\tretention forever\n}", `retention: "forever" is not a duration, at Testfile:5`},
		{"zero retention", head + "\tretention 0s\n}", "retention must be positive, at Testfile:5"},
		{"retention below tolerance", head + "\tretention 24h\n}", "retention 24h0m0s is shorter than twice request_time_tolerance 48h0m0s"},
		{"retention equal to the tolerance", head + "\tretention 48h\n}", "retention 48h0m0s is shorter than twice request_time_tolerance 48h0m0s: Request-Time is accepted that far in the past and in the future, so a notification dated ahead of the gateway's clock stays fresh for up to 96h0m0s after it first arrives, and a replay after its record expired would be forwarded again; make retention at least 96h0m0s, at Testfile:5"},
		{"retention equal to an explicit tolerance", head + "\tretention 10s\n\trequest_time_tolerance 10s\n}", "make retention at least 20s, at Testfile:5"},
		{"retention below explicit tolerance", head + "\trequest_time_tolerance 72h\n\tretention 60h\n}", "at Testfile:6"},
		{"retention below the lease", head + "\trequest_time_tolerance off\n\tretention 3s\n}", "retention 3s is shorter than the claim lease 25s (2 × forward_timeout 10s + 5s): a record must outlive the forward it guards; make retention at least 25s or forward_timeout shorter, at Testfile:6"},
		{"forward_timeout beyond retention", head + "\tforward_timeout 100h\n}", "retention 168h0m0s is shorter than the claim lease 200h0m5s (2 × forward_timeout 100h0m0s + 5s): a record must outlive the forward it guards; make retention at least 200h0m5s or forward_timeout shorter, at Testfile:5"},
		{"bad tolerance", head + "\trequest_time_tolerance never\n}", `request_time_tolerance: "never" is neither a duration nor off, at Testfile:5`},
		{"negative tolerance", head + "\trequest_time_tolerance -1h\n}", "must be positive (use off to disable the check)"},
		{"bad size", head + "\tmax_body_size lots\n}", `max_body_size: "lots" is not a size`},
		{"zero size", head + "\tmax_body_size 0\n}", "max_body_size must be between 1 byte and 16 MiB, at Testfile:5"},
		{"huge size", head + "\tmax_body_size 1GiB\n}", "max_body_size must be between 1 byte and 16 MiB"},
		{"bad forward_timeout", head + "\tforward_timeout soon\n}", `forward_timeout: "soon" is not a duration`},
		{"forward_timeout extra arg", head + "\tforward_timeout 1s 2s\n}", "wrong argument count"},
		{"status not a number", head + "\tbusiness_reject_status 4xx\n}", `business_reject_status: "4xx" is not a status code, at Testfile:5`},
		{"status 2xx", head + "\tbusiness_reject_status 200\n}", "business_reject_status: 200 is not an HTTP error status (400-599), at Testfile:5"},
		{"prefix with a brace after a placeholder", head + "\tstore redis redis://127.0.0.1:6379/0 {\n\t\tprefix {env.P}:q{x}\n\t}\n}", "dws_notify: store: prefix contains '{' or '}': the inbox queue's keys carry hash tags of their own (<prefix>q{<shard>}:), which a brace in the prefix would override or break; choose a prefix without braces, at Testfile:6"},
		{"prefix too long around a placeholder", head + "\tstore redis redis://127.0.0.1:6379/0 {\n\t\tprefix {env.P}" + strings.Repeat("p", 256) + "\n\t}\n}", "dws_notify: store: prefix longer than 256 bytes, at Testfile:6"},
		// A block opened after a setting that takes none is refused as
		// such, not read as an unknown subdirective named "{".
		{"retention with a block", head + "\tretention 200h {\n\t\tx\n\t}\n}", "retention takes no block, at Testfile:5"},
		{"strict with a block", head + "\tstrict {\n\t\tx\n\t}\n}", "strict takes no block, at Testfile:5"},
		{"api with a block", head + "\tapi removePaymentMethod /r {\n\t\tx\n\t}\n}", "api takes no block, at Testfile:5"},
		{"client_id with a block", head + "\tclient_id c3 {\n\t\tclient_id c4\n\t}\n}", "client_id takes no block, at Testfile:5"},
		{"client_id with an empty block", head + "\tstrict\n\tclient_id c2 {\n\t}\n}", "client_id takes no block, at Testfile:6"},
		{"strict with an empty block on its line", head + "\tstrict { }\n}", "strict takes no block, at Testfile:5"},
		{"quoted braces are arguments", head + "\tclient_id \"{\"\n\tclient_id \"}\" { }\n}", "client_id takes no block, at Testfile:6"},
		{"merchant key with a block", head + "\tmerchant_private_key {env.M} 2 {\n\t\tx\n\t}\n}", "merchant_private_key takes no block, at Testfile:5"},
		{"store redis option with a block", head + "\tstore redis redis://127.0.0.1:6379/0 {\n\t\tprefix p: {\n\t\t\tx\n\t\t}\n\t}\n}", "store redis prefix takes no block, at Testfile:6"},
		{"store redis tls option with a block", head + "\tstore redis rediss://127.0.0.1:6379/0 {\n\t\ttls {\n\t\t\tca /ca.pem {\n\t\t\t\tx\n\t\t\t}\n\t\t}\n\t}\n}", "store redis tls ca takes no block, at Testfile:7"},
		{"acknowledge option with a block", head + "\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t\tmax_age 1d {\n\t\t\tx\n\t\t}\n\t}\n}", "acknowledge: max_age takes no block, at Testfile:7"},
		{"status empty", head + "\tbusiness_reject_status\n}", "wrong argument count"},
		{"message field", head + "\tresult_message_field msg\n}", `result_message_field must be resultMsg, resultMessage or both, not "msg", at Testfile:5`},
		{"strict with arg", head + "\tstrict yes\n}", "wrong argument count"},
		{"strict twice", head + "\tstrict\n\tstrict\n}", "strict is already set at line 5, at Testfile:6"},
		{"acknowledge without a mode", head + "\tacknowledge\n}", "acknowledge needs a mode: on_delivery or on_receipt, at Testfile:5"},
		{"acknowledge unknown mode", head + "\tacknowledge later\n}", `acknowledge: unknown mode "later" (known: on_delivery, on_receipt), at Testfile:5`},
		{"acknowledge on_delivery with a block", head + "\tacknowledge on_delivery {\n\t\tmax_age 1d\n\t}\n}", "acknowledge on_delivery takes no options block, at Testfile:5"},
		{"acknowledge twice", head + "\tacknowledge on_delivery\n\tacknowledge on_delivery\n}", "acknowledge is already set at line 5, at Testfile:6"},
		{"acknowledge unknown option", head + "\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t\tttl 1d\n\t}\n}", `acknowledge: unknown option "ttl" (known: key, order_secret, max_age, backoff, max_queued), at Testfile:7`},
		{"acknowledge backoff one pause", head + "\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t\tbackoff 1s\n\t}\n}", "backoff takes the first and the longest pause, e.g. backoff 1s 15m, at Testfile:7"},
		{"acknowledge max_age twice", head + "\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t\tmax_age 1d\n\t\tmax_age 2d\n\t}\n}", "acknowledge: max_age is already set at line 7, at Testfile:8"},
		{"acknowledge max_age zero", head + "\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t\tmax_age 0s\n\t}\n}", "acknowledge: max_age must be positive, at Testfile:7"},
		{"acknowledge max_queued", head + "\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t\tmax_queued lots\n\t}\n}", `acknowledge: max_queued "lots" must be a positive number, at Testfile:7`},
		{"acknowledge key with three arguments", head + "\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + " k1 extra\n\t}\n}", "acknowledge: key takes the key material and an optional key id, at Testfile:6"},
		{"acknowledge key id", head + "\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + " k\x01\n\t}\n}", `dws_notify: acknowledge: key #1: inbox: bad key: key id "k\x01" has a byte outside printable ASCII, at Testfile:6`},
		{"missing client_id", "dws_notify {\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n}", "dws_notify: client_id is required, at Testfile:1"},
		{"missing key", "dws_notify {\n\tclient_id c1\n\tapi addPaymentMethod\n}", "dws_notify: dws_public_key is required, at Testfile:1"},
		{"missing api", "dws_notify {\n\tclient_id c1\n\tdws_public_key " + pub + "\n}", "dws_notify: at least one api is required, at Testfile:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.input)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "Testfile:") {
				t.Errorf("error %q has no file and line", err)
			}
		})
	}
}

// The key-material errors must say what was found, at the line of the key.
func TestUnmarshalCaddyfileKeyErrorsSayWhatWasFound(t *testing.T) {
	k := keys(t)
	pemText, err := os.ReadFile(filepath.Join(k.dir, "merchant_private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	priv := "`" + string(pemText) + "`" // a backtick token may span lines
	input := "dws_notify {\n\tclient_id c1\n\tdws_public_key " + priv + "\n\tapi addPaymentMethod\n}"
	var h Handler
	err = h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	if err == nil || !strings.Contains(err.Error(), "at Testfile:3") || !strings.Contains(strings.ToLower(err.Error()), "private") {
		t.Fatalf("error = %v; want it to name the private key found, at line 3", err)
	}
}

// Caddyfile.example is what newcomers run unchanged: it must adapt without
// warnings (including Caddy's "not formatted" one) and configure the handler.
func TestCaddyfileExampleAdapts(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, warnings, err := adapter.Adapt(src, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatalf("adapting Caddyfile.example: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("warning: %s", w)
	}
	if !strings.Contains(string(out), `"handler":"dws_notify"`) || !strings.Contains(string(out), `"upstreams":[{"dial":"127.0.0.1:8081"}]`) {
		t.Errorf("adapted config lacks the gateway or the stand-in backend:\n%s", out)
	}
}

// The same invalid settings, given as JSON (as Caddy decodes a module's
// config, then Provision) and as a Caddyfile directive, fail with the same
// message: one check (config.Handler.Check) for both. The Caddyfile's
// error adds the line of the setting the rule names.
func TestSameErrorThroughJSONAndCaddyfile(t *testing.T) {
	k := keys(t)
	pub := bareBase64(t, &k.dws.PublicKey)
	url := "redis://127.0.0.1:6379/0"
	cases := []struct {
		name      string
		json      string // the handler's JSON fields
		caddyfile string // the directive's block
		line      int    // the Caddyfile line the error names
		want      string // the message, without the line
	}{
		{"client_id twice",
			`"client_id":["a","a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}]`,
			"client_id a a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod", 2,
			"dws_notify: client_id a is listed twice"},
		{"client_id missing",
			`"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}]`,
			"dws_public_key " + pub + "\n\tapi addPaymentMethod", 1,
			"dws_notify: client_id is required"},
		{"key version twice",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"},{"key":"` + pub + `","key_version":1}],"api":[{"name":"addPaymentMethod"}]`,
			"client_id a\n\tdws_public_key " + pub + "\n\tdws_public_key " + pub + " 1\n\tapi addPaymentMethod", 4,
			"dws_notify: dws_public_key version 1 is configured twice"},
		{"negative key version",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `","key_version":-1}],"api":[{"name":"addPaymentMethod"}]`,
			"client_id a\n\tdws_public_key " + pub + " -1\n\tapi addPaymentMethod", 3,
			"dws_notify: dws_public_key #1: key version must be between 0 and 2147483647, not -1"},
		{"key version out of range",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `","key_version":99999999999}],"api":[{"name":"addPaymentMethod"}]`,
			"client_id a\n\tdws_public_key " + pub + " 99999999999\n\tapi addPaymentMethod", 3,
			"dws_notify: dws_public_key #1: key version must be between 0 and 2147483647, not 99999999999"},
		{"merchant key version out of range",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"merchant_private_key":{"key":"{env.M}","key_version":2147483648},"api":[{"name":"addPaymentMethod"}]`,
			"client_id a\n\tdws_public_key " + pub + "\n\tmerchant_private_key {env.M} 2147483648\n\tapi addPaymentMethod", 4,
			"dws_notify: merchant_private_key: key version must be between 0 and 2147483647, not 2147483648"},
		{"key that is no key",
			`"client_id":["a"],"dws_public_key":[{"key":"bm90IGEga2V5"}],"api":[{"name":"addPaymentMethod"}]`,
			"client_id a\n\tdws_public_key bm90IGEga2V5\n\tapi addPaymentMethod", 3,
			"dws_notify: dws_public_key #1: Base64 key material is not a DER SubjectPublicKeyInfo, PKCS#1 public key or certificate"},
		{"key given as a path",
			`"client_id":["a"],"dws_public_key":[{"key":"/etc/dws/dws_public.b64"}],"api":[{"name":"addPaymentMethod"}]`,
			"client_id a\n\tdws_public_key /etc/dws/dws_public.b64\n\tapi addPaymentMethod", 3,
			`dws_notify: dws_public_key #1: key material is neither PEM nor standard Base64 DER; "/etc/dws/dws_public.b64" looks like a file path: the setting takes the key itself; to read it from the file write {file./etc/dws/dws_public.b64}`},
		{"merchant key given as a path",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"merchant_private_key":{"key":"./merchant_private.pem"},"api":[{"name":"addPaymentMethod"}]`,
			"client_id a\n\tdws_public_key " + pub + "\n\tmerchant_private_key ./merchant_private.pem\n\tapi addPaymentMethod", 4,
			`dws_notify: merchant_private_key: key material is neither PEM nor standard Base64 DER; "./merchant_private.pem" looks like a file path: the setting takes the key itself; to read it from the file write {file../merchant_private.pem}`},
		{"unknown api",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"notifyAuthorization"}]`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi notifyAuthorization", 4,
			`dws_notify: unknown api "notifyAuthorization" (known: addPaymentMethod, notifyCapture, notifyDispute, notifyPayment, notifyRefund, notifyRegistrationStatus, notifySubscription, notifySubscriptionPayment, notifyVaulting, removePaymentMethod)`},
		{"path used twice",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod","path":"/n"},{"name":"removePaymentMethod","path":"/n"}]`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod /n\n\tapi removePaymentMethod /n", 5,
			"dws_notify: path /n is used by api addPaymentMethod too"},
		{"retention under twice the tolerance",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"retention":"24h"`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tretention 24h", 5,
			"dws_notify: retention 24h0m0s is shorter than twice request_time_tolerance 48h0m0s: Request-Time is accepted that far in the past and in the future, so a notification dated ahead of the gateway's clock stays fresh for up to 96h0m0s after it first arrives, and a replay after its record expired would be forwarded again; make retention at least 96h0m0s"},
		{"retention under the lease, named at forward_timeout",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"request_time_tolerance":"off","forward_timeout":"100h"`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\trequest_time_tolerance off\n\tforward_timeout 100h", 6,
			"dws_notify: retention 168h0m0s is shorter than the claim lease 200h0m5s (2 × forward_timeout 100h0m0s + 5s): a record must outlive the forward it guards; make retention at least 200h0m5s or forward_timeout shorter"},
		{"tolerance",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"request_time_tolerance":"never"`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\trequest_time_tolerance never", 5,
			`dws_notify: request_time_tolerance: "never" is neither a duration nor off`},
		{"body size",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"max_body_size":1073741824`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tmax_body_size 1GiB", 5,
			"dws_notify: max_body_size must be between 1 byte and 16 MiB"},
		{"business status",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"business_reject_status":[400,200]`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tbusiness_reject_status 400\n\tbusiness_reject_status 200", 6,
			"dws_notify: business_reject_status: 200 is not an HTTP error status (400-599)"},
		{"business status twice",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"business_reject_status":[409,409]`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tbusiness_reject_status 409 409", 5,
			"dws_notify: business_reject_status 409 is listed twice"},
		{"business status twice on two lines",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"business_reject_status":[409,422,409]`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tbusiness_reject_status 409\n\tbusiness_reject_status 422 409", 6,
			"dws_notify: business_reject_status 409 is listed twice"},
		{"message field",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"result_message_field":"msg"`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tresult_message_field msg", 5,
			`dws_notify: result_message_field must be resultMsg, resultMessage or both, not "msg"`},
		{"storage with store redis",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"storage":"/var/lib/dws","store":{"backend":"redis","url":"` + url + `"}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tstore redis " + url + "\n\tstorage /var/lib/dws", 6,
			"dws_notify: storage /var/lib/dws is the directory of the Badger store, but store.backend is redis: remove storage"},
		{"wait_aof with a cluster",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"store":{"backend":"redis","cluster":{"addresses":["c:1"]},"wait_aof":true}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tstore redis cluster c:1 {\n\t\twait_aof\n\t}", 6,
			"dws_notify: store: wait_aof needs url or sentinel: a cluster has no wait for the AOF fsync of a slot's primary"},
		{"tls key without cert",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"store":{"backend":"redis","cluster":{"addresses":["c:1"]},"tls":{"key":"/k.pem"}}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tstore redis cluster c:1 {\n\t\ttls {\n\t\t\tkey /k.pem\n\t\t}\n\t}", 7,
			"dws_notify: store: tls key needs cert, the client certificate"},
		{"acknowledge on_receipt without a key",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"acknowledge":{"mode":"on_receipt","max_age":"2d"}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tacknowledge on_receipt {\n\t\tmax_age 2d\n\t}", 5,
			"dws_notify: acknowledge on_receipt needs at least one key: the inbox encrypts what it queues (make one with caddy dws-notify keygen --inbox)"},
		{"acknowledge key that is no key",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"acknowledge":{"mode":"on_receipt","keys":[{"key":"` + inboxKeyA + `"},{"key":"AAAAAAAAAAA="}]}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t\tkey AAAAAAAAAAA=\n\t}", 7,
			"dws_notify: acknowledge: key #2: inbox: bad key: the key decodes to 8 bytes, want 32 (AES-256)"},
		{"acknowledge keys with one id",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"acknowledge":{"mode":"on_receipt","keys":[{"key":"` + inboxKeyA + `","id":"k1"},{"key":"{env.OLD}","id":"k1"}]}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + " k1\n\t\tkey {env.OLD} k1\n\t}", 7,
			`dws_notify: acknowledge: keys #1 and #2 have the same id "k1"`},
		{"acknowledge backoff",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"acknowledge":{"mode":"on_receipt","keys":[{"key":"` + inboxKeyA + `"}],"first_backoff":"1m","max_backoff":"1s"}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t\tbackoff 1m 1s\n\t}", 7,
			"dws_notify: acknowledge: backoff: the longest pause 1s is shorter than the first 1m0s"},
		{"acknowledge order secret",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"acknowledge":{"mode":"on_receipt","keys":[{"key":"` + inboxKeyA + `"}],"order_secret":"AAAAAAAAAAA="}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t\torder_secret AAAAAAAAAAA=\n\t}", 7,
			"dws_notify: acknowledge: order_secret: the secret decodes to 8 bytes, want at least 32"},
		{"acknowledge with a cluster",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"store":{"backend":"redis","cluster":{"addresses":["c:1"]}},"acknowledge":{"mode":"on_receipt","keys":[{"key":"` + inboxKeyA + `"}]}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tstore redis cluster c:1\n\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t}", 6,
			"dws_notify: acknowledge on_receipt needs store redis with a url or sentinel: on a cluster the dedupe record and the queued notification cannot be written by one script"},
		{"acknowledge body size",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"max_body_size":1048576,"acknowledge":{"mode":"on_receipt","keys":[{"key":"` + inboxKeyA + `"}]}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tmax_body_size 1MiB\n\tacknowledge on_receipt {\n\t\tkey " + inboxKeyA + "\n\t}", 5,
			"dws_notify: max_body_size 1048576 is more than acknowledge on_receipt queues: at most 229376 bytes (224 KiB), so the body and its headers fit a queued item"},
		{"prefix with a brace",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"store":{"backend":"redis","url":"` + url + `","prefix":"a{b}"}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tstore redis " + url + " {\n\t\tprefix a{b}\n\t}", 6,
			"dws_notify: store: prefix contains '{' or '}': the inbox queue's keys carry hash tags of their own (<prefix>q{<shard>}:), which a brace in the prefix would override or break; choose a prefix without braces"},
		{"sentinel address twice",
			`"client_id":["a"],"dws_public_key":[{"key":"` + pub + `"}],"api":[{"name":"addPaymentMethod"}],"store":{"backend":"redis","sentinel":{"master_name":"m","addresses":["s:1","s:1"]}}`,
			"client_id a\n\tdws_public_key " + pub + "\n\tapi addPaymentMethod\n\tstore redis sentinel m s:1 s:1", 5,
			`dws_notify: store: sentinel address "s:1" is listed twice`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fromJSON Handler
			if err := caddy.StrictUnmarshalJSON([]byte("{"+tc.json+"}"), &fromJSON); err != nil {
				t.Fatalf("decoding the JSON: %v", err)
			}
			err := fromJSON.Provision(newContext(t))
			t.Cleanup(func() { _ = fromJSON.Cleanup() })
			// Provisioning names the handler; the Caddyfile's line does.
			want := "dws_notify for " + fromJSON.Describe() + ": " + strings.TrimPrefix(tc.want, "dws_notify: ")
			if err == nil || err.Error() != want {
				t.Fatalf("through JSON: %v\nwant: %s", err, want)
			}

			var fromCaddyfile Handler
			err = fromCaddyfile.UnmarshalCaddyfile(caddyfile.NewTestDispenser("dws_notify {\n\t" + tc.caddyfile + "\n}"))
			if want := fmt.Sprintf("%s, at Testfile:%d", tc.want, tc.line); err == nil || err.Error() != want {
				t.Fatalf("through the Caddyfile: %v\nwant: %s", err, want)
			}
		})
	}
}

// The JSON config reads a duration with config.ParseDuration, the
// Caddyfile with caddy.ParseDuration: they agree. Where a string has
// several d units Caddy's parser skips bytes after a rewrite that
// shortened the string (it refuses "0.5d1d"); there config's may accept
// what Caddy's refuses, never the other way round, and never with another
// value.
func FuzzDurationAsCaddy(f *testing.F) {
	for _, s := range []string{"1d", "1.5d", "1d12h", "1dd", "d", "-1d", "+.5d", "1h2d", "1e3d", "xd", "1_0d",
		"99999999999999999999d", "5s", "", "1d5d", "1d.5d", "-.d", "1..2d", "0.5d30m", "1d-1h", "d1", "0.5d1d", "300ms", "-1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, errWant := caddy.ParseDuration(s)
		got, err := config.ParseDuration(s)
		if strings.Count(s, "d") > 1 {
			if errWant == nil && (err != nil || got != want) {
				t.Fatalf("%q: config.ParseDuration = %v, %v; caddy.ParseDuration = %v", s, got, err, want)
			}
			return
		}
		if got != want || (err == nil) != (errWant == nil) {
			t.Fatalf("%q: config.ParseDuration = %v, %v; caddy.ParseDuration = %v, %v", s, got, err, want, errWant)
		}
		var d config.Duration
		jsonErr := json.Unmarshal([]byte(strconv.Quote(s)), &d)
		var cd caddy.Duration
		caddyErr := json.Unmarshal([]byte(strconv.Quote(s)), &cd)
		if time.Duration(d) != time.Duration(cd) || (jsonErr == nil) != (caddyErr == nil) {
			t.Fatalf("%q as JSON: config.Duration %v, %v; caddy.Duration %v, %v", s, time.Duration(d), jsonErr, time.Duration(cd), caddyErr)
		}
	})
}

// TestParsedSubdirectivesAreListed is the reverse of
// TestKnownSubdirectivesAreParsed: every name a parser's switch takes is in
// the list its unknown-name error offers, so a subdirective added to the
// switch alone fails here (the error would never suggest it, and
// TestKnownSubdirectivesAreParsed cannot see a name the list lacks). It
// reads the package's source: each switch whose default clause calls
// errUnknown must have as case labels exactly the names of the list passed
// to it (a package-level variable or a literal), compared as written
// (a string's value, or an expression such as config.BackendRedis).
func TestParsedSubdirectivesAreListed(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	lists := map[string]*ast.CompositeLit{} // package-level []string variables
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, af)
		for _, decl := range af.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, v := range vs.Values {
					if cl, ok := v.(*ast.CompositeLit); ok {
						lists[vs.Names[i].Name] = cl
					}
				}
			}
		}
	}
	name := func(e ast.Expr) string {
		if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
			s, err := strconv.Unquote(bl.Value)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		var b strings.Builder
		if sel, ok := e.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok {
				b.WriteString(x.Name + ".")
			}
			b.WriteString(sel.Sel.Name)
			return b.String()
		}
		t.Fatalf("%s: a case label or list entry that is neither a string nor a name", fset.Position(e.Pos()))
		return ""
	}
	checked := map[string]bool{}
	for _, af := range parsed {
		ast.Inspect(af, func(n ast.Node) bool {
			sw, ok := n.(*ast.SwitchStmt)
			if !ok {
				return true
			}
			var labelExprs []ast.Expr
			var known *ast.CompositeLit
			listName := ""
			for _, stmt := range sw.Body.List {
				cc := stmt.(*ast.CaseClause)
				labelExprs = append(labelExprs, cc.List...)
				if cc.List != nil {
					continue
				}
				for _, st := range cc.Body {
					ast.Inspect(st, func(n ast.Node) bool {
						call, ok := n.(*ast.CallExpr)
						if !ok {
							return true
						}
						if fn, ok := call.Fun.(*ast.Ident); !ok || fn.Name != "errUnknown" {
							return true
						}
						switch arg := call.Args[len(call.Args)-1].(type) {
						case *ast.Ident:
							listName, known = arg.Name, lists[arg.Name]
						case *ast.CompositeLit:
							listName, known = "the literal", arg
						}
						if known == nil {
							t.Fatalf("%s: errUnknown's list is not a []string literal or a package-level one", fset.Position(call.Pos()))
						}
						return false
					})
				}
			}
			if known == nil {
				return true
			}
			where := fset.Position(sw.Pos())
			labels := map[string]bool{}
			for _, e := range labelExprs {
				labels[name(e)] = true
			}
			listed := map[string]bool{}
			for _, e := range known.Elts {
				listed[name(e)] = true
			}
			for l := range labels {
				if !listed[l] {
					t.Errorf("%s: the switch takes %q but %s, which its unknown-name error offers, lacks it", where, l, listName)
				}
			}
			for l := range listed {
				if !labels[l] {
					t.Errorf("%s: %s offers %q but the switch has no case for it", where, listName, l)
				}
			}
			checked[listName] = true
			return true
		})
	}
	for _, l := range []string{"subdirectives", "storeBackends", "redisOptions", "redisTLSOptions", "the literal"} {
		if !checked[l] {
			t.Errorf("no switch offering %s found: the test no longer sees the parsers", l)
		}
	}
}

// Every name the unknown-subdirective error offers is one the parser
// takes: the lists stay in step with the switches.
func TestKnownSubdirectivesAreParsed(t *testing.T) {
	for _, name := range subdirectives {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("dws_notify {\n\t" + name + "\n}"))
		if err != nil && strings.Contains(err.Error(), "unknown subdirective") {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, opt := range redisOptions {
		var c StoreConfig
		d := caddyfile.NewTestDispenser("store redis redis://127.0.0.1 {\n\t" + opt + "\n}")
		d.Next()
		if err := c.UnmarshalCaddyfile(d); err != nil && strings.Contains(err.Error(), "unknown option") {
			t.Errorf("store redis %s: %v", opt, err)
		}
	}
}
