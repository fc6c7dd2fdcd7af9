package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/signature"
)

// The rules are exercised through caddymodule, whose tests give the same
// settings as JSON and as a Caddyfile; these pin what the package itself
// promises: defaults, the field paths of errors, and durations.

func minimal() Handler {
	return Handler{ClientID: []string{"c"}, DWSPublicKey: []Key{{Key: "{env.K}"}}, API: []API{{Name: "addPaymentMethod"}}}
}

func TestEffectiveDefaults(t *testing.T) {
	h := minimal()
	if err := h.Check(); err != nil {
		t.Fatal(err)
	}
	e := h.Effective()
	if e.Retention != DefaultRetention || e.Tolerance != DefaultRequestTimeTolerance || e.ForwardTimeout != DefaultForwardTimeout ||
		e.BodyTimeout != DefaultBodyTimeout || e.Lease != 25*time.Second || e.MaxBodySize != DefaultMaxBodySize || e.MessageField != "" {
		t.Fatalf("defaults: %+v", e)
	}
	for s := range e.BusinessReject {
		want := s == http.StatusBadRequest || s == http.StatusConflict || s == http.StatusUnprocessableEntity
		if e.BusinessReject[s] != want {
			t.Errorf("business status %d: %v", s, e.BusinessReject[s])
		}
	}
	if e.Ack.OnReceipt {
		t.Fatalf("on_receipt without acknowledge: %+v", e.Ack)
	}
	h.Acknowledge = &Acknowledge{Mode: AckOnReceipt, Keys: []InboxKey{{Key: "{env.I}"}}, FirstBackoff: Duration(20 * time.Minute)}
	if err := h.Check(); err != nil {
		t.Fatal(err)
	}
	if a := h.Effective().Ack; !a.OnReceipt || a.MaxAge != DefaultMaxAge || a.FirstBackoff != 20*time.Minute || a.MaxBackoff != 20*time.Minute || a.MaxQueued != 0 {
		t.Fatalf("on_receipt defaults (the longest pause follows a longer first one): %+v", a)
	}
	h.RequestTimeTolerance, h.BusinessRejectStatus = "off", []int{}
	if e := h.Effective(); e.Tolerance != 0 || e.BusinessReject[400] {
		t.Fatalf("tolerance off and no business statuses: %+v", e)
	}
}

// The answer's message field: per API family unless result_message_field
// is set, which then applies to every API; an answer without an API (a
// path no api serves) takes the family of the handler's APIs when they
// share one.
func TestMessageFieldPerFamily(t *testing.T) {
	add, _ := notification.Lookup("addPaymentMethod")
	pay, _ := notification.Lookup("notifyPayment")
	for _, c := range []struct {
		name                string
		apis                []string
		setting             string
		forAdd, forPay, nil notification.MessageField
	}{
		{"DWS only, default", []string{"addPaymentMethod"}, "", notification.ResultMsg, notification.ResultMessage, notification.ResultMsg},
		{"Antom only, default", []string{"notifyPayment", "notifyRefund"}, "", notification.ResultMsg, notification.ResultMessage, notification.ResultMessage},
		{"both families, default", []string{"notifyPayment", "addPaymentMethod"}, "", notification.ResultMsg, notification.ResultMessage, notification.ResultMsg},
		{"both families, resultMsg", []string{"notifyPayment", "addPaymentMethod"}, "resultMsg", notification.ResultMsg, notification.ResultMsg, notification.ResultMsg},
		{"both families, resultMessage", []string{"notifyPayment", "addPaymentMethod"}, "resultMessage", notification.ResultMessage, notification.ResultMessage, notification.ResultMessage},
		{"Antom only, both", []string{"notifyPayment"}, "both", notification.BothMessageFields, notification.BothMessageFields, notification.BothMessageFields},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := minimal()
			h.API = nil
			for _, name := range c.apis {
				h.API = append(h.API, API{Name: name, Path: "/" + name})
			}
			h.ResultMessageField = c.setting
			if err := h.Check(); err != nil {
				t.Fatal(err)
			}
			e := h.Effective()
			if got := e.MessageFieldFor(add); got != c.forAdd {
				t.Errorf("addPaymentMethod: %s, want %s", got, c.forAdd)
			}
			if got := e.MessageFieldFor(pay); got != c.forPay {
				t.Errorf("notifyPayment: %s, want %s", got, c.forPay)
			}
			if got := e.MessageFieldFor(nil); got != c.nil {
				t.Errorf("no API: %s, want %s", got, c.nil)
			}
		})
	}
}

func TestCheckNamesTheFields(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(*Handler)
		fields []string
	}{
		{"missing client", func(h *Handler) { h.ClientID = nil }, nil},
		{"second client empty", func(h *Handler) { h.ClientID = []string{"c", ""} }, []string{"client_id.1"}},
		{"second key's version", func(h *Handler) { h.DWSPublicKey = append(h.DWSPublicKey, Key{Key: "{env.K}"}) }, []string{"dws_public_key.1"}},
		{"retention and tolerance", func(h *Handler) { h.Retention = Duration(time.Hour) }, []string{"retention", "request_time_tolerance"}},
		{"store tls", func(h *Handler) {
			h.Store = &Store{Backend: BackendRedis, URL: "rediss://r", TLS: &RedisTLS{Cert: "/c"}}
		}, []string{"store.tls.cert"}},
		{"store without a target", func(h *Handler) { h.Store = &Store{Backend: BackendRedis} }, []string{"store"}},
		{"acknowledge mode", func(h *Handler) { h.Acknowledge = &Acknowledge{Mode: "soon"} }, []string{"acknowledge.mode"}},
		{"acknowledge on_delivery with a key", func(h *Handler) { h.Acknowledge = &Acknowledge{Keys: []InboxKey{{Key: "{env.I}"}}} }, []string{"acknowledge.keys"}},
		{"acknowledge second key", func(h *Handler) {
			h.Acknowledge = &Acknowledge{Mode: AckOnReceipt, Keys: []InboxKey{{Key: "{env.I}"}, {Key: ""}}}
		}, []string{"acknowledge.keys.1"}},
		{"acknowledge without keys", func(h *Handler) { h.Acknowledge = &Acknowledge{Mode: AckOnReceipt} }, []string{"acknowledge"}},
		{"acknowledge max_queued", func(h *Handler) {
			h.Acknowledge = &Acknowledge{Mode: AckOnReceipt, Keys: []InboxKey{{Key: "{env.I}"}}, MaxQueued: -1}
		}, []string{"acknowledge.max_queued"}},
		{"business_reject_status twice", func(h *Handler) { h.BusinessRejectStatus = []int{409, 422, 409} }, []string{"business_reject_status.2"}},
		{"storage and store.dir", func(h *Handler) { h.Storage, h.Store = "/a", &Store{Backend: BackendBadger, Dir: "/b"} }, []string{"storage", "store.dir"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := minimal()
			c.mutate(&h)
			var fe *FieldError
			if err := h.Check(); !errors.As(err, &fe) {
				t.Fatalf("Check = %v, want a *FieldError", err)
			}
			if len(fe.Fields) != len(c.fields) {
				t.Fatalf("fields %q, want %q (%s)", fe.Fields, c.fields, fe.Msg)
			}
			for i := range c.fields {
				if fe.Fields[i] != c.fields[i] {
					t.Fatalf("fields %q, want %q (%s)", fe.Fields, c.fields, fe.Msg)
				}
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	for in, want := range map[string]time.Duration{`"10s"`: 10 * time.Second, `"1.5d"`: 36 * time.Hour, `"1d12h"`: 36 * time.Hour, `3000000000`: 3 * time.Second} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{`"soon"`, `"d"`, `1.5`, `true`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s: accepted as %v", in, time.Duration(d))
		}
	}
	if b, _ := json.Marshal(struct{ D Duration }{Duration(time.Second)}); string(b) != `{"D":1000000000}` {
		t.Errorf("encoded as %s, want nanoseconds", b)
	}
}

// The order secret follows the oldest key listed, so adding a newer key
// in front (a rotation) keeps every customer's order key; order_secret
// given outright wins, and is resolved like a key.
func TestInboxOrderSecretSurvivesRotation(t *testing.T) {
	const keyA, keyB = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
	lookup := func(name string) (string, bool) { return map[string]string{"env.A": keyA, "env.S": keyB}[name], true }
	resolve := func(a Acknowledge) InboxKeys {
		t.Helper()
		ik, err := a.ResolveKeys(lookup)
		if err != nil {
			t.Fatal(err)
		}
		return ik
	}
	before := resolve(Acknowledge{Keys: []InboxKey{{Key: "{env.A}"}}})
	after := resolve(Acknowledge{Keys: []InboxKey{{Key: keyB}, {Key: keyA}}})
	if string(before.OrderSecret) != string(after.OrderSecret) || len(before.OrderSecret) < MinOrderSecretLen {
		t.Fatal("adding a newer key changed the order secret")
	}
	if after.Ring.PrimaryID() != after.IDs[0] || after.IDs[0] == before.IDs[0] {
		t.Fatalf("the newest key listed does not seal: primary %s, ids %q", after.Ring.PrimaryID(), after.IDs)
	}
	own := resolve(Acknowledge{Keys: []InboxKey{{Key: keyA}}, OrderSecret: "{env.S}"})
	if string(own.OrderSecret) == string(before.OrderSecret) || len(own.OrderSecret) != 32 {
		t.Fatal("order_secret was not used")
	}
	if _, err := (&Acknowledge{Keys: []InboxKey{{Key: "{env.MISSING}"}}}).ResolveKeys(func(string) (string, bool) { return "", false }); err == nil {
		t.Fatal("a key placeholder that resolves to nothing was accepted")
	}
}

// A password written into a sentinel or cluster address, or into a
// refused URL's query, never shows in the error, and an address holding
// user information is refused (its password would be in the store's
// name, which is logged).
func TestStoreErrorsHideThePassword(t *testing.T) {
	const pw = "Zq9RedisPw77"
	for name, s := range map[string]*Store{
		"URL query":                 {Backend: BackendRedis, URL: "redis://:" + pw + "@127.0.0.1:6379/0?password=" + pw},
		"sentinel address as a URL": {Backend: BackendRedis, Sentinel: &RedisSentinel{MasterName: "m", Addresses: []string{"redis://:" + pw + "@127.0.0.1:26379"}}},
		"cluster user information":  {Backend: BackendRedis, Cluster: &RedisCluster{Addresses: []string{":" + pw + "@127.0.0.1:7000"}}},
		"sentinel password@host":    {Backend: BackendRedis, Sentinel: &RedisSentinel{MasterName: "m", Addresses: []string{pw + "@127.0.0.1:26379"}}},
		"sentinel address query":    {Backend: BackendRedis, Sentinel: &RedisSentinel{MasterName: "m", Addresses: []string{"h:26379?password=" + pw}}},
		"cluster address, extra":    {Backend: BackendRedis, Cluster: &RedisCluster{Addresses: []string{"h:7000:" + pw}}},
	} {
		h := minimal()
		h.Store = s
		err := h.Check()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
}

// A key version is refused by Check outside the range a notification's
// keyVersion is read in, at the key's field, for both keys: the key ring
// would refuse it only at provisioning, without naming the setting.
func TestCheckKeyVersionRange(t *testing.T) {
	for _, c := range []struct {
		version int
		ok      bool
	}{{0, true}, {signature.MaxKeyVersion, true}, {-1, false}, {signature.MaxKeyVersion + 1, false}, {99999999999, false}} {
		v := c.version
		for _, k := range []struct {
			field  string
			mutate func(*Handler)
		}{
			{"dws_public_key.0", func(h *Handler) { h.DWSPublicKey[0].KeyVersion = &v }},
			{"merchant_private_key", func(h *Handler) { h.MerchantPrivateKey = &Key{Key: "{env.M}", KeyVersion: &v} }},
		} {
			h := minimal()
			k.mutate(&h)
			err := h.Check()
			if c.ok {
				if err != nil {
					t.Errorf("%s version %d: %v", k.field, v, err)
				}
				continue
			}
			var fe *FieldError
			if !errors.As(err, &fe) || len(fe.Fields) != 1 || fe.Fields[0] != k.field {
				t.Fatalf("%s version %d: Check = %v, want a *FieldError about %s", k.field, v, err, k.field)
			}
			if want := fmt.Sprintf("%s, not %d", KeyVersionRule, v); !strings.HasSuffix(fe.Msg, want) {
				t.Errorf("%s version %d: %q, want it to end with %q", k.field, v, fe.Msg, want)
			}
		}
	}
}

// The Redis prefix is checked by Check as the store checks it, around its
// placeholders too: a brace outside them, or a prefix longer than allowed
// even if each placeholder resolved to one byte, is refused at store.prefix
// before provisioning.
func TestCheckRedisPrefix(t *testing.T) {
	long := strings.Repeat("p", redisstore.MaxPrefixLen)
	for _, c := range []struct {
		prefix string
		ok     bool
	}{
		{"prod:dws_notify:", true}, {"{env.P}", true}, {"{env.P}:" + long[9:], true}, {"{file./p}{env.Q}", true},
		{"a{b}", false}, {"a}", false}, {"{env.P}{x}", false}, {"{env.P", false}, {long + "p", false}, {"{env.P}" + long, false},
	} {
		h := minimal()
		h.Store = &Store{Backend: BackendRedis, URL: "redis://127.0.0.1:6379/0", Prefix: c.prefix}
		err := h.Check()
		if c.ok {
			if err != nil {
				t.Errorf("prefix %q: %v", c.prefix, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || len(fe.Fields) != 1 || fe.Fields[0] != "store.prefix" {
			t.Errorf("prefix %q: Check = %v, want a *FieldError about store.prefix", c.prefix, err)
		}
	}
}
