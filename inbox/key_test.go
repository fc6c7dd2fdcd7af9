package inbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/idempotency"
)

var testKey = idempotency.Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "20990501203220303032821078591"}

func mustKey(t *testing.T) Key {
	t.Helper()
	k, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeygen(t *testing.T) {
	material, id, err := Keygen()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(material)
	if err != nil || len(raw) != KeySize {
		t.Fatalf("key material %d bytes, %v", len(raw), err)
	}
	if id != DeriveKeyID(raw) || len(id) != 16 {
		t.Fatalf("id %q, want the derived %q", id, DeriveKeyID(raw))
	}
	m2, _, _ := Keygen()
	if m2 == material {
		t.Fatal("two keygens gave one key")
	}
	// A key file's content parses back to the same key and id.
	k, err := ParseKey(material+"\n", "")
	if err != nil || k.ID != id || k.Encoded() != material {
		t.Fatalf("ParseKey = %v %v", k, err)
	}
	// Printing a key shows its id only.
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v", k, k, k)} {
		if strings.Contains(s, material) || strings.Contains(s, fmt.Sprint(raw[:4])) {
			t.Errorf("a printed key shows its material: %s", s)
		}
	}
	// Deterministic from the reader.
	a, _ := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	b, _ := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if a.ID != b.ID || a.Encoded() != b.Encoded() {
		t.Fatal("GenerateKey is not a function of its reader")
	}
	if _, err := GenerateKey(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("GenerateKey from a short reader succeeded")
	}
}

func TestParseKey(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	for _, c := range []struct{ name, material, id string }{
		{"empty", "  \n", ""},
		{"not base64", "not*base64!", ""},
		{"short", base64.StdEncoding.EncodeToString(make([]byte, 16)), ""},
		{"long", base64.StdEncoding.EncodeToString(make([]byte, 33)), ""},
		{"id with space", good, "a b"},
		{"long id", good, strings.Repeat("i", MaxKeyIDLen+1)},
	} {
		_, err := ParseKey(c.material, c.id)
		if !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: %v, want ErrBadKey", c.name, err)
		}
		if err != nil && c.material != "" && len(c.material) > 8 && strings.Contains(err.Error(), strings.TrimSpace(c.material)) {
			t.Errorf("%s: the error shows the material: %v", c.name, err)
		}
	}
	for _, m := range []string{good, strings.TrimRight(good, "="), base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))} {
		if _, err := ParseKey(m, "k1"); err != nil {
			t.Errorf("ParseKey(%q): %v", m, err)
		}
	}
	k, _ := ParseKey(good, "2026-01")
	if k.ID != "2026-01" {
		t.Errorf("id %q", k.ID)
	}
}

func TestSealOpen(t *testing.T) {
	old, cur := mustKey(t), mustKey(t)
	ringOld, err := NewKeyring(old)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewKeyring(cur, old)
	if err != nil {
		t.Fatal(err)
	}
	msg := appendMessage(nil, Message{Header: http.Header{"X-Dws-Api": {"addPaymentMethod"}, "Content-Type": {"application/json"}}, Body: []byte(`{"a":"b"}`)})

	sealed, err := ring.Seal(testKey, msg)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := SealedKeyID(sealed); id != cur.ID {
		t.Fatalf("sealed with %q, want the primary %q", id, cur.ID)
	}
	if bytes.Contains(sealed, []byte(`"a":"b"`)) || bytes.Contains(sealed, []byte("addPaymentMethod")) {
		t.Fatal("the sealed payload shows its plaintext")
	}
	again, _ := ring.Seal(testKey, msg)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one message are equal (nonce reused)")
	}
	pt, err := ring.Open(testKey, sealed)
	if err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	// Rotation: what the old key sealed still opens; the old ring cannot
	// open the new key's payloads.
	byOld, _ := ringOld.Seal(testKey, msg)
	if pt, err := ring.Open(testKey, byOld); err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("the rotated ring opens the old key's payload: %v", err)
	}
	if _, err := ringOld.Open(testKey, sealed); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old ring opening the new key's payload = %v, want ErrUnknownKey", err)
	}
	// Bound to its record: another requestId, API or Client-Id fails.
	for _, other := range []idempotency.Key{
		{ClientID: testKey.ClientID, API: testKey.API, RequestID: "other"},
		{ClientID: testKey.ClientID, API: "removePaymentMethod", RequestID: testKey.RequestID},
		{ClientID: "2188120000000001", API: testKey.API, RequestID: testKey.RequestID},
	} {
		if _, err := ring.Open(other, sealed); !errors.Is(err, ErrOpen) {
			t.Errorf("Open as %v = %v, want ErrOpen", other, err)
		}
	}
	// Any flipped byte fails, and so does a payload relabelled with the
	// other key's id.
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := ring.Open(testKey, bad); err == nil {
			t.Fatalf("a payload with byte %d flipped opened", i)
		}
	}
	relabel := append(append([]byte{'D', 'I', 1, byte(len(old.ID))}, old.ID...), sealed[4+len(cur.ID):]...)
	if _, err := ring.Open(testKey, relabel); !errors.Is(err, ErrOpen) {
		t.Fatalf("relabelled payload = %v, want ErrOpen", err)
	}
	for _, junk := range [][]byte{nil, []byte("DI"), []byte("XX\x01\x00"), sealed[:10]} {
		if _, err := ring.Open(testKey, junk); !errors.Is(err, ErrOpen) {
			t.Errorf("Open(%q) = %v, want ErrOpen", junk, err)
		}
	}
	if _, err := NewKeyring(cur, cur); !errors.Is(err, ErrBadKey) {
		t.Errorf("a ring with one id twice: %v", err)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	m := Message{Header: http.Header{"B": {"2", "3"}, "A": {""}}, Body: []byte("body\x00bytes")}
	got, err := parseMessage(appendMessage(nil, m))
	if err != nil || fmt.Sprint(got.Header) != fmt.Sprint(m.Header) || !bytes.Equal(got.Body, m.Body) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	empty, err := parseMessage(appendMessage(nil, Message{}))
	if err != nil || len(empty.Header) != 0 || len(empty.Body) != 0 {
		t.Fatalf("empty message: %+v %v", empty, err)
	}
	for _, bad := range [][]byte{nil, {2}, {1, 5}, {1, 1, 3, 'a'}} {
		if _, err := parseMessage(bad); err == nil {
			t.Errorf("parseMessage(%q) succeeded", bad)
		}
	}
}

// testSecret is the tests' order secret.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestOrderKey(t *testing.T) {
	add := []byte(`{"referenceCustomerId":"300005538591","requestId":"1"}`)
	remove := []byte(`{"requestId":"2","referenceCustomerId":"300005538591","paymentMethodDetail":{}}`)
	none := []byte(`{"requestId":"4"}`)
	k := OrderKey(testSecret, "c1", "addPaymentMethod", "1", add)
	if k != OrderKey(testSecret, "c1", "removePaymentMethod", "2", remove) {
		t.Error("one customer's add and remove got different order keys")
	}
	if k == OrderKey(testSecret, "c2", "addPaymentMethod", "1", add) {
		t.Error("two Client-Ids share an order key")
	}
	if strings.Contains(k, "300005538591") || len(k) != 32 {
		t.Errorf("order key %q", k)
	}
	if OrderKey(testSecret, "c1", "addPaymentMethod", "4", none) == OrderKey(testSecret, "c1", "addPaymentMethod", "5", none) {
		t.Error("two notifications without a reference share an order key")
	}
}

// TestOrderKeyReference: a customer named by referenceUserId in one
// notification and by referenceCustomerId in another (same Client-Id and
// value) is one order; only the exact field names are a reference.
func TestOrderKeyReference(t *testing.T) {
	add := []byte(`{"requestId":"1","referenceUserId":"300005538591"}`)
	remove := []byte(`{"requestId":"2","referenceCustomerId":"300005538591"}`)
	if OrderKey(testSecret, "c1", "addPaymentMethod", "1", add) != OrderKey(testSecret, "c1", "removePaymentMethod", "2", remove) {
		t.Error("an add by referenceUserId and a remove by referenceCustomerId of one value are not ordered")
	}
	ref := OrderKey(testSecret, "c1", "removePaymentMethod", "3", []byte(`{"requestId":"3","referenceCustomerId":"X"}`))
	for _, b := range []string{
		`{"requestId":"4","ReferenceCustomerId":"X"}`,
		`{"requestId":"4","referencecustomerid":"X"}`,
		`{"requestId":"4","REFERENCEUSERID":"X"}`,
		`{"requestId":"4","nested":{"referenceCustomerId":"X"}}`,
		`{"requestId":"4","referenceCustomerId":7}`,
	} {
		if OrderKey(testSecret, "c1", "removePaymentMethod", "4", []byte(b)) == ref {
			t.Errorf("%s was read as the reference X", b)
		}
	}
	if OrderKey(testSecret, "c1", "a", "5", []byte(`{"referenceCustomerId":"","referenceUserId":"X"}`)) != ref {
		t.Error("an empty referenceCustomerId did not fall back to referenceUserId")
	}
}

// TestOrderKeyIsKeyed: the order key is an HMAC under the order secret,
// so whoever reads the store cannot find a customer by hashing candidate
// references: an unkeyed hash of the fields does not give it, and another
// secret gives another key.
func TestOrderKeyIsKeyed(t *testing.T) {
	add := []byte(`{"referenceCustomerId":"300005538591","requestId":"1"}`)
	k := OrderKey(testSecret, "c1", "addPaymentMethod", "1", add)
	other := bytes.Repeat([]byte{7}, MinOrderSecretLen)
	if k == OrderKey(other, "c1", "addPaymentMethod", "1", add) {
		t.Error("two order secrets give one order key")
	}
	for _, kind := range []string{"c", "u", "r"} {
		h := sha256.New()
		for _, s := range []string{"c1", kind, "300005538591"} {
			h.Write([]byte{byte(len(s))})
			h.Write([]byte(s))
		}
		if k == hex.EncodeToString(h.Sum(nil)[:16]) {
			t.Fatalf("the order key is an unkeyed SHA-256 of the reference (kind %q)", kind)
		}
	}
}

// TestDeriveOrderSecret checks HKDF-SHA256 (RFC 5869, empty salt, info
// "dws_notify inbox order v1", 32 bytes) against a computation from HMAC.
func TestDeriveOrderSecret(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	got := DeriveOrderSecret(k1)
	raw, err := base64.StdEncoding.DecodeString(k1.Encoded())
	if err != nil {
		t.Fatal(err)
	}
	extract := hmac.New(sha256.New, make([]byte, sha256.Size))
	extract.Write(raw)
	expand := hmac.New(sha256.New, extract.Sum(nil))
	expand.Write([]byte("dws_notify inbox order v1\x01"))
	if want := expand.Sum(nil); !bytes.Equal(got, want) {
		t.Fatalf("DeriveOrderSecret = %x, want %x", got, want)
	}
	if bytes.Equal(got, DeriveOrderSecret(k2)) || bytes.Equal(got, raw) {
		t.Fatal("the order secret does not depend on the key, or is the key")
	}
	if again := DeriveOrderSecret(k1); !bytes.Equal(got, again) {
		t.Fatal("DeriveOrderSecret is not deterministic")
	}
}
