package inbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// KeySize is the length of an inbox key: AES-256.
const KeySize = 32

// MaxKeyIDLen bounds a key id.
const MaxKeyIDLen = 64

// Key is an inbox key: 32 secret bytes and the id that sealed payloads
// carry, so the key that opens them can be found among several.
type Key struct {
	ID     string
	secret [KeySize]byte
}

// Encoded returns the key material as the key file holds it: standard
// Base64 of the 32 bytes.
func (k Key) Encoded() string { return base64.StdEncoding.EncodeToString(k.secret[:]) }

// String names the key by its id only: a Key printed by mistake shows no
// secret.
func (k Key) String() string { return "inbox key " + k.ID }

// GoString is String, for %#v.
func (k Key) GoString() string { return k.String() }

// DeriveKeyID returns the id of a key that was given none: the first 8
// bytes of a SHA-256 over a label and the key, in hex. It reveals nothing
// usable about the key and names the same key the same way everywhere.
func DeriveKeyID(secret []byte) string {
	h := sha256.New()
	h.Write([]byte("dws_notify inbox key id\x00"))
	h.Write(secret)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// GenerateKey makes a new inbox key from r (crypto/rand.Reader when nil)
// with its derived id. The CLI's keygen writes Encoded() to the key file
// and shows the id.
func GenerateKey(r io.Reader) (Key, error) {
	if r == nil {
		r = rand.Reader
	}
	var k Key
	if _, err := io.ReadFull(r, k.secret[:]); err != nil {
		return Key{}, fmt.Errorf("inbox: generating a key: %w", err)
	}
	k.ID = DeriveKeyID(k.secret[:])
	return k, nil
}

// Keygen makes a new inbox key for the CLI: the key file's content
// (Base64 of 32 random bytes from crypto/rand) and the key's id.
func Keygen() (material, id string, err error) {
	k, err := GenerateKey(nil)
	if err != nil {
		return "", "", err
	}
	return k.Encoded(), k.ID, nil
}

// ErrBadKey is wrapped by ParseKey's errors.
var ErrBadKey = errors.New("inbox: bad key")

// ParseKey reads key material (Base64 of 32 bytes, standard or URL
// alphabet, padded or not, surrounding white space ignored: a key file's
// content) with its id; an empty id is derived from the key. Errors never
// show the material.
func ParseKey(material, id string) (Key, error) {
	s := strings.TrimSpace(material)
	if s == "" {
		return Key{}, fmt.Errorf("%w: the key is empty", ErrBadKey)
	}
	var raw []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			raw = b
			break
		}
	}
	if raw == nil {
		return Key{}, fmt.Errorf("%w: the key is not Base64 (%d characters)", ErrBadKey, len(s))
	}
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("%w: the key decodes to %d bytes, want %d (AES-256)", ErrBadKey, len(raw), KeySize)
	}
	if err := checkKeyID(id); err != nil {
		return Key{}, err
	}
	var k Key
	copy(k.secret[:], raw)
	k.ID = id
	if k.ID == "" {
		k.ID = DeriveKeyID(raw)
	}
	return k, nil
}

func checkKeyID(id string) error {
	if len(id) > MaxKeyIDLen {
		return fmt.Errorf("%w: key id longer than %d bytes", ErrBadKey, MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: key id %q has a byte outside printable ASCII", ErrBadKey, id)
		}
	}
	return nil
}

// Keyring seals with its primary key (the newest) and opens with any of
// its keys, chosen by the id a sealed payload carries.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// NewKeyring makes a ring whose primary key seals; older keys only open
// what they sealed before a rotation. Two keys with one id are refused.
func NewKeyring(primary Key, older ...Key) (*Keyring, error) {
	r := &Keyring{primary: primary.ID, aeads: map[string]cipher.AEAD{}}
	for _, k := range append([]Key{primary}, older...) {
		if k.ID == "" {
			return nil, fmt.Errorf("%w: a key without an id", ErrBadKey)
		}
		if err := checkKeyID(k.ID); err != nil {
			return nil, err
		}
		if _, dup := r.aeads[k.ID]; dup {
			return nil, fmt.Errorf("%w: two keys with the id %q", ErrBadKey, k.ID)
		}
		block, err := aes.NewCipher(k.secret[:])
		if err != nil {
			return nil, fmt.Errorf("inbox: key %s: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("inbox: key %s: %w", k.ID, err)
		}
		r.aeads[k.ID] = aead
	}
	return r, nil
}

// PrimaryID is the id of the key that seals.
func (r *Keyring) PrimaryID() string { return r.primary }

// Sealed payload layout:
//
//	"DI" 1             magic and version
//	len(id) id         the sealing key's id (1 byte length)
//	nonce              12 random bytes
//	ciphertext||tag    AES-256-GCM
//
// The associated data is a label, the header above and the notification's
// key (Client-Id, API, requestId, each length-prefixed): a payload opens
// only under the key it was sealed for, so ciphertext copied to another
// record, or another Client-Id or API, fails to open.
const (
	sealMagic   = "DI"
	sealVersion = 1
	nonceSize   = 12
	adLabel     = "dws_notify inbox payload v1\x00"
)

var (
	// ErrUnknownKey: the payload was sealed with a key the ring lacks.
	ErrUnknownKey = errors.New("inbox: the payload was sealed with a key this gateway does not have")
	// ErrOpen: the payload does not open (tampered, moved to another
	// record, or not a sealed payload).
	ErrOpen = errors.New("inbox: the payload does not open")
)

func associatedData(header []byte, key idempotency.Key) []byte {
	ad := make([]byte, 0, len(adLabel)+len(header)+len(key.ClientID)+len(key.API)+len(key.RequestID)+9)
	ad = append(ad, adLabel...)
	ad = append(ad, header...)
	for _, f := range [...]string{key.ClientID, key.API, key.RequestID} {
		ad = binary.AppendUvarint(ad, uint64(len(f)))
		ad = append(ad, f...)
	}
	return ad
}

// Seal encrypts plaintext for key with the primary key.
func (r *Keyring) Seal(key idempotency.Key, plaintext []byte) ([]byte, error) {
	aead := r.aeads[r.primary]
	out := make([]byte, 0, 4+len(r.primary)+nonceSize+len(plaintext)+aead.Overhead())
	out = append(out, sealMagic...)
	out = append(out, sealVersion, byte(len(r.primary)))
	out = append(out, r.primary...)
	hdrLen := len(out)
	out = out[:hdrLen+nonceSize]
	if _, err := io.ReadFull(rand.Reader, out[hdrLen:]); err != nil {
		return nil, fmt.Errorf("inbox: nonce: %w", err)
	}
	nonce := out[hdrLen:]
	return aead.Seal(out, nonce, plaintext, associatedData(out[:hdrLen], key)), nil
}

// SealedKeyID returns the id of the key a payload was sealed with.
func SealedKeyID(sealed []byte) (string, error) {
	if len(sealed) < 4 || string(sealed[:2]) != sealMagic || sealed[2] != sealVersion {
		return "", fmt.Errorf("%w: not a sealed payload", ErrOpen)
	}
	n := int(sealed[3])
	if len(sealed) < 4+n+nonceSize {
		return "", fmt.Errorf("%w: truncated", ErrOpen)
	}
	return string(sealed[4 : 4+n]), nil
}

// Open decrypts a payload sealed for key.
func (r *Keyring) Open(key idempotency.Key, sealed []byte) ([]byte, error) {
	id, err := SealedKeyID(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := r.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %q)", ErrUnknownKey, id)
	}
	hdrLen := 4 + len(id)
	nonce := sealed[hdrLen : hdrLen+nonceSize]
	pt, err := aead.Open(nil, nonce, sealed[hdrLen+nonceSize:], associatedData(sealed[:hdrLen], key))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	return pt, nil
}
