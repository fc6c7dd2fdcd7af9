package inbox

import (
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

// OrderKey returns the order key of a notification: items with one order
// key are delivered strictly in arrival order. It is derived from the
// Client-Id and the body's referenceCustomerId (or, without one,
// referenceUserId), hashed (SHA-256, 16 bytes in hex) so the customer's
// reference is not written to the store in the clear. A body with neither
// gets an order key of its own (its Client-Id, API and requestId): it
// waits for nothing and nothing waits for it.
func OrderKey(clientID, api, requestID string, body []byte) string {
	var ref struct {
		Customer *string `json:"referenceCustomerId"`
		User     *string `json:"referenceUserId"`
	}
	kind, v := "n", api+"\x00"+requestID
	if json.Unmarshal(body, &ref) == nil {
		switch {
		case ref.Customer != nil && *ref.Customer != "":
			kind, v = "c", *ref.Customer
		case ref.User != nil && *ref.User != "":
			kind, v = "u", *ref.User
		}
	}
	h := sha256.New()
	for _, s := range [...]string{clientID, kind, v} {
		var l [binary.MaxVarintLen64]byte
		h.Write(l[:binary.PutUvarint(l[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
