package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/inbox"
)

// Acknowledgement modes.
const (
	// AckOnDelivery answers S once the backend took the notification
	// (the default): DWS's resends are the delivery queue.
	AckOnDelivery = "on_delivery"
	// AckOnReceipt answers S once the notification is durably queued in
	// the gateway's inbox, which delivers it (docs/inbox.md).
	AckOnReceipt = "on_receipt"
)

// Defaults of the inbox settings.
const (
	DefaultMaxAge       = inbox.DefaultMaxAge
	DefaultFirstBackoff = inbox.DefaultFirstBackoff
	DefaultMaxBackoff   = inbox.DefaultMaxBackoff
	// MinOrderSecretLen is the shortest order secret accepted, in bytes.
	MinOrderSecretLen = inbox.MinOrderSecretLen
	// MaxQueuedBodySize caps max_body_size with acknowledge on_receipt: a
	// queued payload (the body, the headers the backend gets and the
	// sealing) must fit idempotency.MaxPayloadLen, and the headers take
	// what the body leaves.
	MaxQueuedBodySize = idempotency.MaxPayloadLen - 32<<10
)

// Acknowledge chooses when DWS is answered S: once the backend took the
// notification (on_delivery, the default), or once the notification is
// durably queued in the gateway's encrypted inbox, which then delivers it
// through the handlers after dws_notify, retrying for up to max_age
// (on_receipt). docs/inbox.md says when to choose which.
type Acknowledge struct {
	// Mode is "on_delivery" (the default: S once the backend answered 2xx
	// or a business-reject status) or "on_receipt" (S once queued; the
	// gateway delivers). The other fields apply to on_receipt only.
	Mode string `json:"mode,omitempty"`

	// Keys are the inbox keys that encrypt the queued notifications at
	// rest (AES-256-GCM): Base64 of 32 bytes (`caddy dws-notify keygen
	// --inbox` makes one), or a {file.*} / {env.*} placeholder holding
	// it. The first key listed (the newest) encrypts; every key listed
	// decrypts, so a rotation adds the new key first and keeps the old
	// ones until what they sealed is delivered. Required with on_receipt.
	Keys []InboxKey `json:"keys,omitempty"`

	// OrderSecret keys the hash that turns a customer reference into the
	// order key kept in the store (Base64 of at least 32 bytes, or a
	// placeholder holding it). Gateways sharing a store must use the
	// same. Default: derived from the oldest key listed, so adding a
	// newer key keeps every customer's order key.
	OrderSecret string `json:"order_secret,omitempty"`

	// MaxAge is how long a queued notification is tried, from its
	// arrival, before it is dead-lettered (kept for redelivery). Default:
	// 7d.
	MaxAge Duration `json:"max_age,omitempty"`

	// FirstBackoff is the pause after the first failed try; each next
	// pause doubles, less up to half at random. Default: 1s.
	FirstBackoff Duration `json:"first_backoff,omitempty"`

	// MaxBackoff is the longest pause between two tries. Default: 15m (or
	// first_backoff, if that is longer).
	MaxBackoff Duration `json:"max_backoff,omitempty"`

	// MaxQueued bounds the notifications queued and not yet delivered;
	// beyond it notifications are answered U (DWS resends them later).
	// Default: 0, no bound.
	MaxQueued int64 `json:"max_queued,omitempty"`
}

// InboxKey is one inbox key.
type InboxKey struct {
	// Key is the key material: Base64 of 32 random bytes, or a {file.*} /
	// {env.*} placeholder holding it (resolved at provisioning).
	Key string `json:"key"`

	// ID names the key in what it sealed, so the key that opens a queued
	// notification is found among several (printable ASCII, at most 64
	// bytes). Default: derived from the key.
	ID string `json:"id,omitempty"`
}

// AckEffective are the acknowledgement settings with their defaults.
type AckEffective struct {
	// OnReceipt is set with acknowledge on_receipt.
	OnReceipt                bool
	MaxAge                   time.Duration
	FirstBackoff, MaxBackoff time.Duration
	MaxQueued                int64
}

// OnReceipt reports whether h acknowledges on receipt.
func (h *Handler) OnReceipt() bool {
	return h.Acknowledge != nil && h.Acknowledge.Mode == AckOnReceipt
}

// checkAcknowledge checks the acknowledge settings.
func (h *Handler) checkAcknowledge() error {
	a := h.Acknowledge
	if a == nil {
		return nil
	}
	switch a.Mode {
	case "", AckOnDelivery:
		if set := a.receiptFields(); len(set) > 0 {
			return errField("acknowledge."+set[0], "acknowledge: %s applies to on_receipt only", strings.Join(set, ", "))
		}
		return nil
	case AckOnReceipt:
	default:
		return errField("acknowledge.mode", "acknowledge: mode %q: want %s or %s", a.Mode, AckOnDelivery, AckOnReceipt)
	}
	if len(a.Keys) == 0 {
		return errField("acknowledge", "acknowledge on_receipt needs at least one key: the inbox encrypts what it queues (make one with caddy dws-notify keygen --inbox)")
	}
	ids := map[string]int{}
	for i, k := range a.Keys {
		field := fmt.Sprintf("acknowledge.keys.%d", i)
		id, err := k.check()
		if err != nil {
			return errField(field, "acknowledge: key #%d: %v", i+1, err)
		}
		if id == "" {
			continue // a placeholder's id is derived once it is resolved
		}
		if prev, dup := ids[id]; dup {
			return errField(field, "acknowledge: keys #%d and #%d have the same id %q", prev+1, i+1, id)
		}
		ids[id] = i
	}
	if s := a.OrderSecret; s != "" && !HasPlaceholder(s) {
		if _, err := ParseOrderSecret(s); err != nil {
			return errField("acknowledge.order_secret", "acknowledge: order_secret: %v", err)
		}
	}
	e := a.effective()
	switch {
	case e.MaxAge <= 0:
		return errField("acknowledge.max_age", "%s", PositiveRule("acknowledge: max_age"))
	case e.FirstBackoff <= 0:
		return errField("acknowledge.first_backoff", "%s", PositiveRule("acknowledge: backoff: the first pause"))
	case e.MaxBackoff < e.FirstBackoff:
		return &FieldError{Fields: []string{"acknowledge.max_backoff", "acknowledge.first_backoff"}, Msg: fmt.Sprintf(
			"acknowledge: backoff: the longest pause %s is shorter than the first %s", e.MaxBackoff, e.FirstBackoff)}
	case e.MaxQueued < 0:
		return errField("acknowledge.max_queued", "acknowledge: max_queued must not be negative")
	}
	if h.Store != nil && h.Store.Cluster != nil {
		return &FieldError{Fields: []string{"acknowledge.mode", "store.cluster"}, Msg: "acknowledge on_receipt needs store redis with a url or sentinel: on a cluster the dedupe record and the queued notification cannot be written by one script"}
	}
	if h.MaxBodySize > MaxQueuedBodySize {
		return &FieldError{Fields: []string{"max_body_size", "acknowledge.mode"}, Msg: fmt.Sprintf(
			"max_body_size %d is more than acknowledge on_receipt queues: at most %d bytes (%d KiB), so the body and its headers fit a queued item", h.MaxBodySize, MaxQueuedBodySize, MaxQueuedBodySize>>10)}
	}
	return nil
}

// receiptFields lists the settings that apply to on_receipt only and are
// set, by their JSON names.
func (a *Acknowledge) receiptFields() []string {
	var set []string
	for _, f := range []struct {
		name  string
		isSet bool
	}{{"keys", len(a.Keys) > 0}, {"order_secret", a.OrderSecret != ""}, {"max_age", a.MaxAge != 0},
		{"first_backoff", a.FirstBackoff != 0}, {"max_backoff", a.MaxBackoff != 0}, {"max_queued", a.MaxQueued != 0}} {
		if f.isSet {
			set = append(set, f.name)
		}
	}
	return set
}

// check checks a key given literally and returns its id (the one given,
// else the derived one); a placeholder's is checked once resolved, and
// its id is "" unless given.
func (k InboxKey) check() (string, error) {
	if strings.TrimSpace(k.Key) == "" {
		return "", errors.New("the key is empty")
	}
	if HasPlaceholder(k.Key) {
		if _, err := inbox.ParseKey(dummyKey, k.ID); err != nil {
			return "", err
		}
		return k.ID, nil
	}
	key, err := inbox.ParseKey(k.Key, k.ID)
	if err != nil {
		return "", err
	}
	return key.ID, nil
}

// dummyKey is valid key material, for checking a key id alone.
var dummyKey = base64.StdEncoding.EncodeToString(make([]byte, inbox.KeySize))

// ParseOrderSecret reads order_secret: Base64 (standard or URL alphabet,
// padded or not) of at least MinOrderSecretLen bytes. Errors never show
// the material.
func ParseOrderSecret(material string) ([]byte, error) {
	s := strings.TrimSpace(material)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) < MinOrderSecretLen {
				return nil, fmt.Errorf("the secret decodes to %d bytes, want at least %d", len(b), MinOrderSecretLen)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("the secret is not Base64 (%d characters)", len(s))
}

// effective applies the defaults.
func (a *Acknowledge) effective() AckEffective {
	if a == nil || a.Mode != AckOnReceipt {
		return AckEffective{}
	}
	return AckEffective{
		OnReceipt:    true,
		MaxAge:       orDefault(a.MaxAge, DefaultMaxAge),
		FirstBackoff: orDefault(a.FirstBackoff, DefaultFirstBackoff),
		MaxBackoff:   orDefault(a.MaxBackoff, max(DefaultMaxBackoff, time.Duration(a.FirstBackoff))),
		MaxQueued:    a.MaxQueued,
	}
}

// InboxKeys are the resolved inbox settings of acknowledge on_receipt.
type InboxKeys struct {
	// Ring seals with the first key listed and opens with any.
	Ring *inbox.Keyring
	// IDs are the keys' ids, in the order listed.
	IDs []string
	// OrderSecret is order_secret, or the one derived from the last
	// (oldest) key listed.
	OrderSecret []byte
}

// ResolveKeys resolves the placeholders of the inbox keys and the order
// secret and parses them: a ring (the first key listed seals) and the
// order secret (order_secret, or derived from the oldest key). Errors name
// the key by its position, never its material.
func (a *Acknowledge) ResolveKeys(lookup Lookup) (InboxKeys, error) {
	var keys []inbox.Key
	for i, k := range a.Keys {
		material, err := ResolvePlaceholders(k.Key, lookup)
		if err != nil {
			return InboxKeys{}, fmt.Errorf("acknowledge: key #%d: %w", i+1, err)
		}
		key, err := inbox.ParseKey(material, k.ID)
		if err != nil {
			return InboxKeys{}, fmt.Errorf("acknowledge: key #%d: %w", i+1, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return InboxKeys{}, errors.New("acknowledge on_receipt needs at least one key")
	}
	ring, err := inbox.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		return InboxKeys{}, fmt.Errorf("acknowledge: %w", err)
	}
	ik := InboxKeys{Ring: ring, OrderSecret: inbox.DeriveOrderSecret(keys[len(keys)-1])}
	if a.OrderSecret != "" {
		material, err := ResolvePlaceholders(a.OrderSecret, lookup)
		if err != nil {
			return InboxKeys{}, fmt.Errorf("acknowledge: order_secret: %w", err)
		}
		if ik.OrderSecret, err = ParseOrderSecret(material); err != nil {
			return InboxKeys{}, fmt.Errorf("acknowledge: order_secret: %w", err)
		}
	}
	for _, k := range keys {
		ik.IDs = append(ik.IDs, k.ID)
	}
	return ik, nil
}
