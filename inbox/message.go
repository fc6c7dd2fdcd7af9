package inbox

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// Message is what a delivery sends: the exact body and the request
// headers the backend needs (the Caddy side puts the X-Dws-* headers and
// whatever else it forwards synchronously). All of it is sealed before it
// reaches the store.
type Message struct {
	Header http.Header
	Body   []byte
}

// Plaintext layout, before sealing:
//
//	1                         version
//	uvarint n                 header fields, sorted by name, values in order
//	n x (uvarint len, name, uvarint len, value)
//	body                      the rest
const messageVersion = 1

var errBadMessage = errors.New("inbox: malformed message")

func appendMessage(dst []byte, m Message) []byte {
	dst = append(dst, messageVersion)
	names := make([]string, 0, len(m.Header))
	n := 0
	for name, vs := range m.Header {
		names = append(names, name)
		n += len(vs)
	}
	slices.Sort(names)
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, name := range names {
		for _, v := range m.Header[name] {
			dst = binary.AppendUvarint(dst, uint64(len(name)))
			dst = append(dst, name...)
			dst = binary.AppendUvarint(dst, uint64(len(v)))
			dst = append(dst, v...)
		}
	}
	return append(dst, m.Body...)
}

func parseMessage(b []byte) (Message, error) {
	if len(b) == 0 || b[0] != messageVersion {
		return Message{}, fmt.Errorf("%w: unknown version", errBadMessage)
	}
	b = b[1:]
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return Message{}, fmt.Errorf("%w: header count", errBadMessage)
	}
	b = b[w:]
	h := make(http.Header, n)
	str := func() (string, bool) {
		l, w := binary.Uvarint(b)
		if w <= 0 || l > uint64(len(b)-w) {
			return "", false
		}
		s := string(b[w : w+int(l)])
		b = b[w+int(l):]
		return s, true
	}
	for range n {
		name, ok1 := str()
		value, ok2 := str()
		if !ok1 || !ok2 {
			return Message{}, fmt.Errorf("%w: header field", errBadMessage)
		}
		h[name] = append(h[name], value)
	}
	return Message{Header: h, Body: slices.Clone(b)}, nil
}

// MinOrderSecretLen is the shortest Config.OrderSecret accepted.
const MinOrderSecretLen = 32

// orderSecretInfo is the HKDF info of DeriveOrderSecret.
const orderSecretInfo = "dws_notify inbox order v1"

// DeriveOrderSecret derives an order secret (Config.OrderSecret, 32 bytes)
// from an inbox key: HKDF-SHA256 of the key's secret, no salt, info
// "dws_notify inbox order v1". The order keys of queued items depend on
// it, so it must stay the same across key rotation: derive it from one key
// that stays configured (the Caddy side takes the oldest) or configure one
// of its own.
func DeriveOrderSecret(k Key) []byte {
	out, err := hkdf.Key(sha256.New, k.secret[:], nil, orderSecretInfo, 32)
	if err != nil {
		// hkdf.Key fails only for a length beyond 255 hash sizes.
		panic("inbox: deriving the order secret: " + err.Error())
	}
	return out
}

// OrderKey returns the order key of a notification: items with one order
// key are delivered strictly in arrival order. It is an HMAC-SHA256 under
// secret (Config.OrderSecret) of the Client-Id and the body's
// referenceCustomerId (or, without one, referenceUserId), 16 bytes in hex:
// the customer's reference is not written to the store, and without the
// secret it cannot be found by trying references. A customer id and a
// user id of one value are one order (the kind of reference is not part
// of the key), so an add that names the customer one way and a remove
// that names it the other are still delivered in order. The field names
// must match exactly (JSON decoding in Go would also take
// "ReferenceCustomerId"). A body with neither gets an order key of its
// own (its Client-Id, API and requestId): it waits for nothing and nothing
// waits for it.
func OrderKey(secret []byte, clientID, api, requestID string, body []byte) string {
	kind, v := "n", api+"\x00"+requestID
	if ref, ok := customerRef(body); ok {
		kind, v = "r", ref
	}
	h := hmac.New(sha256.New, secret)
	for _, s := range [...]string{clientID, kind, v} {
		var l [binary.MaxVarintLen64]byte
		h.Write(l[:binary.PutUvarint(l[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// customerRef returns the top-level referenceCustomerId of a JSON object
// body, or without one its referenceUserId (non-empty strings, names
// matched exactly; of a name given twice, the last).
func customerRef(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	var customer, user string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", false
		}
		if name != "referenceCustomerId" && name != "referenceUserId" {
			continue
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			v = ""
		}
		if name == "referenceCustomerId" {
			customer = v
		} else {
			user = v
		}
	}
	switch {
	case customer != "":
		return customer, true
	case user != "":
		return user, true
	}
	return "", false
}
