package signature

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// SignatureHeader signs the content for uri, clientID, time t and body with
// key (RSASSA-PKCS1-v1_5, SHA-256) and returns the full Signature header
// value: algorithm=RSA256,keyVersion=<keyVersion>,signature=<standard Base64
// with "+", "/" and "=" percent-encoded as %2B, %2F and %3D>. It signs every
// time; see Signer for a caching signer.
func SignatureHeader(key *rsa.PrivateKey, keyVersion int, uri, clientID, t string, body []byte) (string, error) {
	if err := checkSigningKey(key, keyVersion); err != nil {
		return "", err
	}
	return signDigest(key, keyVersion, Digest(uri, clientID, t, body))
}

func checkSigningKey(key *rsa.PrivateKey, keyVersion int) error {
	switch {
	case key == nil || key.N == nil:
		return errors.New("signature: nil private key")
	case keyVersion < 0 || keyVersion > MaxKeyVersion:
		return fmt.Errorf("signature: key version %d out of range 0..%d", keyVersion, MaxKeyVersion)
	}
	return nil
}

func signDigest(key *rsa.PrivateKey, keyVersion int, digest [32]byte) (string, error) {
	// PKCS#1 v1.5 is deterministic; crypto/rsa ignores the random source.
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("signature: signing failed: %w", err)
	}
	return string(AppendHeader(make([]byte, 0, 64+3*len(sig)), keyVersion, sig)), nil
}

// DefaultSignerCacheEntries is the most signatures a Signer keeps.
const DefaultSignerCacheEntries = 4096

// Signer signs acknowledgements with one private key and caches the
// results. Within one Response-Time second the content for a given URI,
// client and body is identical, and PKCS#1 v1.5 signatures are
// deterministic, so Sign signs each distinct content once: later callers get
// the same header, and concurrent callers for a content being signed wait
// for that one signing instead of repeating it.
//
// The cache keeps the entries of the two most recent distinct Response-Time
// values it was given; a third evicts the older one. The total is capped at
// DefaultSignerCacheEntries: past it, the older generation is dropped early,
// and if the newest alone is full, Sign signs without caching. A Signer is
// safe for concurrent use.
type Signer struct {
	key        *rsa.PrivateKey
	keyVersion int
	maxEntries int
	sign       func(digest [32]byte) (string, error) // signDigest; replaced in tests

	mu   sync.Mutex
	gens [2]*generation // gens[0] is the newest; either may be nil

	signings atomic.Uint64 // RSA signing operations made (see Signings)
}

// generation holds the signatures made for one Response-Time value, keyed
// by content digest (the digest covers the time too).
type generation struct {
	responseTime string
	entries      map[[32]byte]*signing
}

// signing is one signature, made once and shared.
type signing struct {
	ready  atomic.Bool   // set once header and err are final
	done   chan struct{} // closed after ready is set
	header string
	err    error
}

// NewSigner returns a Signer that signs with key, announcing keyVersion in
// the header. A nil key or a version outside 0..2147483647 makes every Sign
// fail.
func NewSigner(key *rsa.PrivateKey, keyVersion int) *Signer {
	return newSigner(key, keyVersion, DefaultSignerCacheEntries)
}

func newSigner(key *rsa.PrivateKey, keyVersion, maxEntries int) *Signer {
	s := &Signer{key: key, keyVersion: keyVersion, maxEntries: maxEntries}
	s.sign = func(digest [32]byte) (string, error) { return signDigest(key, keyVersion, digest) }
	return s
}

// Sign returns the Signature header value for the content
// "POST <uri>\n<clientID>.<responseTime>.<body>", the same value
// SignatureHeader returns, signing only when no identical content has been
// signed (or is being signed) under the same responseTime.
func (s *Signer) Sign(uri, clientID, responseTime string, body []byte) (string, error) {
	if err := checkSigningKey(s.key, s.keyVersion); err != nil {
		return "", err
	}
	digest := Digest(uri, clientID, responseTime, body)

	s.mu.Lock()
	g := s.generationFor(responseTime)
	if e := g.entries[digest]; e != nil {
		s.mu.Unlock()
		return e.wait()
	}
	if !s.makeRoom(g) {
		s.mu.Unlock()
		s.signings.Add(1)
		return s.sign(digest)
	}
	e := &signing{done: make(chan struct{}), err: errSignAborted}
	g.entries[digest] = e
	s.mu.Unlock()

	s.fill(g, digest, e)
	return e.header, e.err
}

var errSignAborted = errors.New("signature: signing did not complete")

// fill signs for entry e of g and releases its waiters, also if signing
// panics. A failure is not cached: the next caller tries again.
func (s *Signer) fill(g *generation, digest [32]byte, e *signing) {
	defer func() {
		if e.err != nil {
			s.mu.Lock()
			if g.entries[digest] == e {
				delete(g.entries, digest)
			}
			s.mu.Unlock()
		}
		e.ready.Store(true)
		close(e.done)
	}()
	s.signings.Add(1)
	e.header, e.err = s.sign(digest)
}

// Signings returns how many RSA signing operations the Signer has made:
// the calls to Sign that did not find their content signed (or being
// signed) already. Each costs about a millisecond of CPU with RSA-2048.
func (s *Signer) Signings() uint64 { return s.signings.Load() }

func (e *signing) wait() (string, error) {
	if !e.ready.Load() {
		<-e.done
	}
	return e.header, e.err
}

// generationFor returns the generation for responseTime, creating it as the
// newest and evicting the older one when it is neither of the two kept.
// s.mu must be held.
func (s *Signer) generationFor(responseTime string) *generation {
	for _, g := range s.gens {
		if g != nil && g.responseTime == responseTime {
			return g
		}
	}
	g := &generation{responseTime: responseTime, entries: make(map[[32]byte]*signing)}
	s.gens[1], s.gens[0] = s.gens[0], g
	return g
}

// makeRoom reports whether g may take one more entry under the cap,
// dropping the other generation if that makes room. s.mu must be held.
func (s *Signer) makeRoom(g *generation) bool {
	if s.entries() < s.maxEntries {
		return true
	}
	for i, other := range s.gens {
		if other != nil && other != g {
			s.gens[i] = nil
		}
	}
	if s.gens[0] == nil {
		s.gens[0], s.gens[1] = s.gens[1], nil
	}
	return s.entries() < s.maxEntries
}

func (s *Signer) entries() int {
	n := 0
	for _, g := range s.gens {
		if g != nil {
			n += len(g.entries)
		}
	}
	return n
}
