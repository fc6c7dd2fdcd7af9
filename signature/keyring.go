package signature

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// MinKeyBits is the smallest RSA modulus accepted, in bits.
const MinKeyBits = 2048

// KeyRing maps (Client-Id, keyVersion) to the DWS public key that verifies
// notifications. Add may be called at any time, also concurrently with
// Verify: readers use an immutable snapshot that Add replaces. The zero
// KeyRing is empty and ready to use.
//
// Unless it was made with NewKeyRingVerifying, the ring verifies with each
// key's modulus prepared when the key was added (see preparedKey), which
// accepts exactly the signatures VerifyRSA accepts at about two thirds of
// its cost.
type KeyRing struct {
	mu      sync.Mutex // serialises writers
	clients atomic.Pointer[map[string]*clientKeys]
	verify  VerifyFunc // every RSA verification; nil: the prepared keys
}

// clientKeys holds one client's keys; it is never modified once published.
type clientKeys struct {
	byVersion map[int]*ringKey
	versions  []int // ascending
}

// ringKey is one configured key, as given and prepared for verification.
type ringKey struct {
	pub  *rsa.PublicKey
	prep *preparedKey
}

// NewKeyRing returns an empty key ring that verifies with the keys'
// prepared moduli.
func NewKeyRing() *KeyRing {
	return &KeyRing{}
}

// NewKeyRingVerifying returns an empty key ring whose every RSA
// verification is a call of verify, for example VerifyRSA wrapped to count
// the operations a notification costs; nil verify is NewKeyRing.
func NewKeyRingVerifying(verify VerifyFunc) *KeyRing {
	return &KeyRing{verify: verify}
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
// an RSA key under MinKeyBits or one that crypto/rsa would refuse to
// verify with (an even modulus; an exponent that is even, under 3 or over
// 2³¹-1), and a (clientID, version) pair that already has a key.
func (r *KeyRing) Add(clientID string, version int, key *rsa.PublicKey) error {
	switch {
	case clientID == "":
		return errors.New("signature: empty client id")
	case version < 0 || version > MaxKeyVersion:
		return fmt.Errorf("signature: key version %d out of range 0..%d", version, MaxKeyVersion)
	case key == nil || key.N == nil:
		return errors.New("signature: nil public key")
	case key.N.BitLen() < MinKeyBits:
		return fmt.Errorf("signature: RSA key is %d bits; at least %d are required", key.N.BitLen(), MinKeyBits)
	}
	prep, err := prepareKey(key)
	if err != nil {
		return fmt.Errorf("signature: unusable RSA public key: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.client(clientID)
	if old != nil && old.byVersion[version] != nil {
		return fmt.Errorf("signature: key version %d already configured for this client", version)
	}
	ck := &clientKeys{byVersion: map[int]*ringKey{version: {pub: key, prep: prep}}, versions: []int{version}}
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

// Verify is VerifyNotification without a Key-Version header: it checks a
// Signature header value (of a notification, or of an acknowledgement,
// which has no Key-Version header) alone.
func (r *KeyRing) Verify(clientID, uri, requestTime string, body []byte, signatureHeader string) (keyVersion int, err error) {
	return r.VerifyNotification(clientID, uri, requestTime, body, signatureHeader, "")
}

// NoKeyVersion is the key version VerifyNotification returns with
// ErrVerificationFailed when the request named no key version and none of
// the client's keys verified the signature.
const NoKeyVersion = -1

// VerifyNotification checks the Signature header value signatureHeader of
// a notification from clientID for the request target uri, the
// Request-Time header value requestTime (used verbatim) and the raw body.
// keyVersionHeader is the value of the notification's Key-Version header,
// "" when it has none.
//
// The key is chosen as Alipay's SDKs expect (SPEC §1.2):
//
//   - the Signature header's keyVersion, when present (a Key-Version header
//     is then ignored);
//   - otherwise the Key-Version header, when present;
//   - otherwise each of the client's keys, newest (highest) version first,
//     until one verifies. A key whose size does not match the signature's
//     length is skipped without an RSA operation, so a signature is put
//     through at most one RSA verification per configured key.
//
// It returns the version of the key that verified the signature. With
// ErrVerificationFailed it returns the version the request named (so that
// callers can log which key failed), or NoKeyVersion when it named none;
// with any other error, 0.
//
// Errors wrap ErrMissing, ErrMalformed (also for a Key-Version header that
// is not a decimal integer), ErrUnsupportedAlgorithm, ErrBadEncoding,
// ErrUnknownKeyVersion (a named version that is not configured, or a
// client without keys; callers should check HasClient first) or
// ErrVerificationFailed.
func (r *KeyRing) VerifyNotification(clientID, uri, requestTime string, body []byte, signatureHeader, keyVersionHeader string) (keyVersion int, err error) {
	// The signature and the digest live in pooled scratch space: they go to
	// the verify function through a function value, so stack buffers would
	// escape to the heap on every call.
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	h, err := parseHeader(signatureHeader, s.sig[:0])
	if err != nil {
		return 0, err
	}
	if err := h.UseKeyVersionHeader(keyVersionHeader); err != nil {
		return 0, err
	}
	return r.verifyParsed(s, clientID, uri, requestTime, body, h)
}

// VerifyParsed is VerifyNotification for a Signature header already parsed
// with ParseHeader or ParseHeaderInto and given the Key-Version header with
// Header.UseKeyVersionHeader (whose errors the caller handles): a gateway
// checks both headers before it reads the body, refuses malformed ones at
// once, and verifies the parsed header once the body has arrived, without
// parsing it again. It chooses the key, returns and fails as
// VerifyNotification does, but for the parsing errors, which it never
// returns.
func (r *KeyRing) VerifyParsed(clientID, uri, requestTime string, body []byte, h Header) (keyVersion int, err error) {
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	return r.verifyParsed(s, clientID, uri, requestTime, body, h)
}

// verifyParsed is VerifyParsed working in s, whose sig may hold
// h.Signature.
func (r *KeyRing) verifyParsed(s *scratch, clientID, uri, requestTime string, body []byte, h Header) (keyVersion int, err error) {
	ck := r.client(clientID)
	if ck == nil {
		return 0, newError(ErrUnknownKeyVersion, "no keys configured for this client")
	}
	if h.HasKeyVersion {
		version := h.KeyVersion
		key := ck.byVersion[version]
		if key == nil {
			return 0, newError(ErrUnknownKeyVersion, "keyVersion %d is not configured for this client (configured: %v)", version, ck.versions)
		}
		if len(h.Signature) != key.prep.size {
			return version, newError(ErrVerificationFailed, "signature is %d bytes, key version %d needs %d", len(h.Signature), version, key.prep.size)
		}
		s.digest = Digest(uri, clientID, requestTime, body)
		if r.verifyWith(key, s, h.Signature) != nil {
			return version, newError(ErrVerificationFailed, "signature does not match the content under key version %d", version)
		}
		return version, nil
	}
	digested := false
	for i := len(ck.versions) - 1; i >= 0; i-- {
		v := ck.versions[i]
		key := ck.byVersion[v]
		if len(h.Signature) != key.prep.size {
			continue
		}
		if !digested {
			s.digest, digested = Digest(uri, clientID, requestTime, body), true
		}
		if r.verifyWith(key, s, h.Signature) == nil {
			return v, nil
		}
	}
	return NoKeyVersion, newError(ErrVerificationFailed, "signature has no keyVersion and matches the content under none of this client's %d keys (versions %v)", len(ck.versions), ck.versions)
}

// scratch is the space one verification works in.
type scratch struct {
	// sig holds the decoded signature of keys up to RSA-4096, em the
	// encoded message the RSA operation recovers from it; longer ones are
	// allocated.
	sig    [512]byte
	em     [512]byte
	digest [32]byte
}

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// VerifyFunc checks sig, an RSASSA-PKCS1-v1_5 signature, over digest, a
// SHA-256 digest, under key: nil when it verifies.
type VerifyFunc func(key *rsa.PublicKey, digest, sig []byte) error

// VerifyRSA is crypto/rsa's RSASSA-PKCS1-v1_5 verification with SHA-256, as
// DWS signs. A KeyRing's own verification accepts exactly what it accepts
// (the differential tests and FuzzPreparedVerify check this); a VerifyFunc
// given to NewKeyRingVerifying can wrap it.
func VerifyRSA(key *rsa.PublicKey, digest, sig []byte) error {
	return rsa.VerifyPKCS1v15(key, crypto.SHA256, digest, sig)
}

// verifyWith checks sig over s.digest under key.
func (r *KeyRing) verifyWith(key *ringKey, s *scratch, sig []byte) error {
	if r.verify != nil {
		return r.verify(key.pub, s.digest[:], sig)
	}
	return key.prep.verify(s.digest[:], sig, s.em[:0])
}
