package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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
		strict
		forward_signature
	}`
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	two, three := 2, 3
	want := Handler{
		ClientID:             []string{"2188120000000000", "2188120000000001"},
		DWSPublicKey:         []KeyConfig{{Key: pub}, {Key: "{file./etc/dws/next.pem}", KeyVersion: &two}},
		MerchantPrivateKey:   &KeyConfig{Key: "{env.MERCHANT_KEY}", KeyVersion: &three},
		API:                  []APIConfig{{Name: "addPaymentMethod", Path: "/dws/add"}, {Name: "removePaymentMethod", Path: "/dws/remove"}},
		Storage:              "/var/lib/dws",
		Retention:            caddy.Duration(200 * time.Hour),
		RequestTimeTolerance: "off",
		MaxBodySize:          128 << 10,
		ForwardTimeout:       caddy.Duration(5 * time.Second),
		BodyTimeout:          caddy.Duration(3 * time.Second),
		BusinessRejectStatus: []int{400, 422, 451},
		ResultMessageField:   "resultMessage",
		Strict:               true,
		ForwardSignature:     true,
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
		{"unknown subdirective", head + "\tfrobnicate on\n}", `unknown subdirective "frobnicate", at Testfile:5`},
		{"argument on the directive", "dws_notify extra {\n}", "wrong argument count"},
		{"client_id without ids", head + "\tclient_id\n}", "wrong argument count or unexpected line ending after 'client_id', at Testfile:5"},
		{"client_id twice", head + "\tclient_id c1\n}", "client_id c1 is listed twice, at Testfile:5"},
		{"key garbage", head + "\tdws_public_key not-a-key 2\n}", "dws_public_key: "},
		{"key version", head + "\tdws_public_key " + pub + " two\n}", `key version "two" must be a non-negative integer, at Testfile:5`},
		{"key version negative", head + "\tdws_public_key " + pub + " -1\n}", "must be a non-negative integer, at Testfile:5"},
		{"same key version twice", head + "\tdws_public_key " + pub + "\n}", "dws_public_key version 1 is configured twice, at Testfile:5"},
		{"private key where public expected", head + "\tmerchant_private_key " + pub + "\n}", "merchant_private_key: "},
		{"merchant key twice", head + "\tmerchant_private_key {env.A}\n\tmerchant_private_key {env.B}\n}", "merchant_private_key is already set at line 5, at Testfile:6"},
		{"unknown api", head + "\tapi notifyPayment /p\n}", `unknown api "notifyPayment" (known: addPaymentMethod, removePaymentMethod), at Testfile:5`},
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
		{"status empty", head + "\tbusiness_reject_status\n}", "wrong argument count"},
		{"message field", head + "\tresult_message_field msg\n}", `result_message_field must be resultMsg, resultMessage or both, not "msg", at Testfile:5`},
		{"strict with arg", head + "\tstrict yes\n}", "wrong argument count"},
		{"strict twice", head + "\tstrict\n\tstrict\n}", "strict is already set at line 5, at Testfile:6"},
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
