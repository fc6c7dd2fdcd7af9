package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/signature"
)

// A key setting given a file path instead of the key says how to read the
// file, through JSON and the Caddyfile alike (both run Check); material
// that is no path gets no such advice and is never quoted.
func TestKeyGivenAsAPath(t *testing.T) {
	cases := []struct {
		name, material string
		private        bool
		want           string // "" when no path advice is expected
	}{
		{"absolute .b64", "/etc/dws/dws_public.b64", false, `"/etc/dws/dws_public.b64" looks like a file path: the setting takes the key itself; to read it from the file write {file./etc/dws/dws_public.b64}`},
		{"relative", "./keys/dws.pem", false, "write {file../keys/dws.pem}"},
		{"parent", "../dws.der", false, "write {file.../dws.der}"},
		{"home", "~/dws_public.pem", false, `"~/dws_public.pem" looks like a file path`},
		{"home advice", "~/dws_public.pem", false, "{file.<absolute path>} (~ is not expanded)"},
		{"bare file name", "merchant.key", true, "write {file.merchant.key}"},
		{"public key file", "dws.PUB", false, "write {file.dws.PUB}"},
		{"path of Base64 letters only", "/etc/dws/key", false, "it looks like a file path: the setting takes the key itself; to read it from a file write {file.<path>}"},
		{"text", "not a key!", false, ""},
		{"bad Base64 with a slash", "/w==x", false, "it looks like a file path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := minimal()
			if tc.private {
				h.MerchantPrivateKey = &Key{Key: tc.material}
			} else {
				h.DWSPublicKey = []Key{{Key: tc.material}}
			}
			err := h.Check()
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if strings.Contains(msg, "signature:") {
				t.Errorf("%q carries the parsing package's prefix", msg)
			}
			var ke *signature.KeyError
			if !errors.As(err, &ke) {
				t.Errorf("%v holds no *signature.KeyError", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || len(fe.Fields) != 1 {
				t.Errorf("%v is no *FieldError about one field", err)
			}
			if tc.want == "" {
				if strings.Contains(msg, "{file.") || strings.Contains(msg, tc.material) {
					t.Errorf("%q: advice or the material for what is no path", msg)
				}
				return
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("%q\ndoes not say %q", msg, tc.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tc := range []struct {
		h    Handler
		want string
	}{
		{Handler{ClientID: []string{"2188"}, API: []API{{Name: "addPaymentMethod", Path: "/dws/add"}, {Name: "removePaymentMethod", Path: "/dws/remove"}}},
			"client_id 2188 (api addPaymentMethod at /dws/add, removePaymentMethod at /dws/remove)"},
		{Handler{API: []API{{Name: "notifyPayment"}}}, "no client_id (api notifyPayment)"},
		{Handler{ClientID: []string{"a", "b", "c", "d", "e"}}, "client_id a, b, c and 2 more (no api)"},
		{Handler{ClientID: []string{"a b\n"}, API: []API{{Name: "x", Path: "/" + long}}},
			`client_id "a b\n" (api x at /` + strings.Repeat("x", 63) + "…)"},
	} {
		if got := tc.h.Describe(); got != tc.want {
			t.Errorf("Describe() = %q\nwant %q", got, tc.want)
		}
	}
}

// KeySource names a key setting's placeholder, and nothing of material
// written inline.
func TestKeySource(t *testing.T) {
	for in, want := range map[string]string{
		"{file./etc/dws/v2.pem}":                   "{file./etc/dws/v2.pem}",
		"  {env.DWS_PUBLIC_KEY}\n":                 "{env.DWS_PUBLIC_KEY}",
		"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A":         "",
		"{file./a.pem}{file./b.pem}":               "",
		"x{file./a.pem}":                           "",
		"{http.request.uri}":                       "",
		"{file./a\n.pem}":                          "",
		"-----BEGIN PUBLIC KEY-----\n{x}\n":        "",
		"{file./" + strings.Repeat("d", 300) + "}": "",
	} {
		if got := KeySource(in); got != want {
			t.Errorf("KeySource(%q) = %q, want %q", in, got, want)
		}
	}
}
