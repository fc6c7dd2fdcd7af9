package signature

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// MinKeyBits is the smallest RSA modulus accepted, in bits.
const MinKeyBits = 2048

// KeyRing maps (Client-Id, keyVersion) to the DWS public key that verifies
// notifications. Add may be called at any time, also concurrently with
// Verify: readers use an immutable snapshot that Add replaces.
type KeyRing struct {
	mu      sync.Mutex // serialises writers
	clients atomic.Pointer[map[string]*clientKeys]
}

// clientKeys holds one client's keys; it is never modified once published.
type clientKeys struct {
	byVersion map[int]*rsa.PublicKey
	versions  []int // ascending
}

// NewKeyRing returns an empty key ring.
func NewKeyRing() *KeyRing {
	return &KeyRing{}
}

func (r *KeyRing) client(clientID string) *clientKeys {
	m := r.clients.Load()
	if m == nil {
		return nil
	}
	return (*m)[clientID]
}

// Add configures key as version version of clientID's keys. It refuses an
// empty client id, a negative version (or one above 2147483647), a nil key,
// an RSA key under MinKeyBits, and a (clientID, version) pair that already
// has a key.
func (r *KeyRing) Add(clientID string, version int, key *rsa.PublicKey) error {
	switch {
	case clientID == "":
		return errors.New("signature: empty client id")
	case version < 0 || version > math.MaxInt32:
		return fmt.Errorf("signature: key version %d out of range 0..%d", version, math.MaxInt32)
	case key == nil || key.N == nil:
		return errors.New("signature: nil public key")
	case key.N.BitLen() < MinKeyBits:
		return fmt.Errorf("signature: RSA key is %d bits; at least %d are required", key.N.BitLen(), MinKeyBits)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.client(clientID)
	if old != nil && old.byVersion[version] != nil {
		return fmt.Errorf("signature: key version %d already configured for this client", version)
	}
	ck := &clientKeys{byVersion: map[int]*rsa.PublicKey{version: key}, versions: []int{version}}
	if old != nil {
		for v, k := range old.byVersion {
			ck.byVersion[v] = k
		}
		ck.versions = append(ck.versions, old.versions...)
		slices.Sort(ck.versions)
	}
	next := map[string]*clientKeys{clientID: ck}
	if m := r.clients.Load(); m != nil {
		for id, c := range *m {
			if id != clientID {
				next[id] = c
			}
		}
	}
	r.clients.Store(&next)
	return nil
}

// HasClient reports whether at least one key is configured for clientID.
func (r *KeyRing) HasClient(clientID string) bool {
	return r.client(clientID) != nil
}

// Versions returns the key versions configured for clientID, ascending; nil
// when the client has none.
func (r *KeyRing) Versions(clientID string) []int {
	ck := r.client(clientID)
	if ck == nil {
		return nil
	}
	return slices.Clone(ck.versions)
}

// Verify checks the Signature header value signatureHeader of a
// notification from clientID for the request target uri, the Request-Time
// header value requestTime (used verbatim) and the raw body. The key is the
// one configured for the header's keyVersion or, when the header has none,
// the highest configured version. It returns the key version used, also
// with ErrVerificationFailed (so that callers can log which key failed), and
// 0 with any other error.
//
// Errors wrap ErrMissing, ErrMalformed, ErrUnsupportedAlgorithm,
// ErrBadEncoding, ErrUnknownKeyVersion (also for a client without keys;
// callers should check HasClient first) or ErrVerificationFailed.
func (r *KeyRing) Verify(clientID, uri, requestTime string, body []byte, signatureHeader string) (keyVersion int, err error) {
	// Room for a 4096-bit signature without allocating.
	var sigBuf [512]byte
	h, err := parseHeader(signatureHeader, sigBuf[:0])
	if err != nil {
		return 0, err
	}
	ck := r.client(clientID)
	if ck == nil {
		return 0, newError(ErrUnknownKeyVersion, "no keys configured for this client")
	}
	version := ck.versions[len(ck.versions)-1]
	if h.HasKeyVersion {
		version = h.KeyVersion
	}
	key := ck.byVersion[version]
	if key == nil {
		return 0, newError(ErrUnknownKeyVersion, "keyVersion %d is not configured for this client (configured: %v)", version, ck.versions)
	}
	if len(h.Signature) != key.Size() {
		return version, newError(ErrVerificationFailed, "signature is %d bytes, key version %d needs %d", len(h.Signature), version, key.Size())
	}
	digest := Digest(uri, clientID, requestTime, body)
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], h.Signature) != nil {
		return version, newError(ErrVerificationFailed, "signature does not match the content under key version %d", version)
	}
	return version, nil
}
