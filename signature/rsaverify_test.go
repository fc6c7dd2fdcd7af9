package signature

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The prepared-key verifier (rsaverify.go) must accept exactly the
// signatures crypto/rsa.VerifyPKCS1v15 accepts. These tests put the same
// key, digest and signature to both and compare, over keys of several sizes
// and public exponents: the openssl-made fixtures of testdata/rsa, keys made
// from the random primes of testdata/rsa/primes.txt, and keys crypto/rsa
// generates afresh on every run. Valid signatures are made by the raw RSA
// private operation on an encoded message, so that malformed encodings can
// be signed too.

// testRSAKey is a public key and, when the private half is known, what the
// raw private operation needs.
type testRSAKey struct {
	name         string
	pub          *rsa.PublicKey
	p, q         *big.Int
	dp, dq, qInv *big.Int // nil: cannot sign (e not invertible)
}

// newTestRSAKey builds the key N = p*q with exponent e; it can sign when e
// is invertible modulo p-1 and q-1.
func newTestRSAKey(name string, p, q *big.Int, e int) *testRSAKey {
	k := &testRSAKey{name: name, pub: &rsa.PublicKey{N: new(big.Int).Mul(p, q), E: e}, p: p, q: q}
	one := big.NewInt(1)
	pm1 := new(big.Int).Sub(p, one)
	qm1 := new(big.Int).Sub(q, one)
	E := big.NewInt(int64(e))
	k.dp = new(big.Int).ModInverse(E, pm1)
	k.dq = new(big.Int).ModInverse(E, qm1)
	k.qInv = new(big.Int).ModInverse(q, p)
	if k.dp == nil || k.dq == nil || k.qInv == nil {
		k.dp, k.dq, k.qInv = nil, nil, nil
	}
	return k
}

func (k *testRSAKey) canSign() bool { return k.dp != nil }

func (k *testRSAKey) size() int { return (k.pub.N.BitLen() + 7) / 8 }

// rawSign returns em^d mod N as a k-byte big-endian signature (CRT).
func (k *testRSAKey) rawSign(em []byte) []byte {
	c := new(big.Int).SetBytes(em)
	c.Mod(c, k.pub.N)
	m1 := new(big.Int).Exp(c, k.dp, k.p)
	m2 := new(big.Int).Exp(c, k.dq, k.q)
	h := new(big.Int).Sub(m1, m2)
	h.Mul(h, k.qInv).Mod(h, k.p)
	s := h.Mul(h, k.q).Add(h, m2)
	return s.FillBytes(make([]byte, k.size()))
}

// encodeEM is the RSASSA-PKCS1-v1_5 encoding of a SHA-256 digest for a
// k-byte modulus, written independently of rsaverify.go (RFC 8017, 9.2).
func encodeEM(k int, digest []byte) []byte {
	t := append([]byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, digest...)
	em := []byte{0x00, 0x01}
	em = append(em, bytes.Repeat([]byte{0xff}, k-len(t)-3)...)
	em = append(em, 0x00)
	return append(em, t...)
}

func (k *testRSAKey) sign(digest []byte) []byte { return k.rawSign(encodeEM(k.size(), digest)) }

// rsaFixtureKeys parses testdata/rsa/key-*.pem (made by make.sh there).
var rsaFixtureKeys = sync.OnceValues(func() ([]*testRSAKey, error) {
	files, err := filepath.Glob("testdata/rsa/key-*.pem")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no testdata/rsa/key-*.pem: %v", err)
	}
	var keys []*testRSAKey
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		b, _ := pem.Decode(raw)
		if b == nil {
			return nil, fmt.Errorf("%s: no PEM block", f)
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		priv := k.(*rsa.PrivateKey)
		keys = append(keys, newTestRSAKey(strings.TrimSuffix(filepath.Base(f), ".pem"), priv.Primes[0], priv.Primes[1], priv.E))
	}
	return keys, nil
})

// primePool is testdata/rsa/primes.txt: random primes, smallest first.
var primePool = sync.OnceValues(func() ([]*big.Int, error) {
	f, err := os.Open("testdata/rsa/primes.txt")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var primes []*big.Int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		bitsField, hexField, ok := strings.Cut(sc.Text(), " ")
		p, okHex := new(big.Int).SetString(hexField, 16)
		bits, err := strconv.Atoi(bitsField)
		if !ok || !okHex || err != nil || p.BitLen() != bits || !p.ProbablyPrime(20) {
			return nil, fmt.Errorf("primes.txt: bad line %q", sc.Text())
		}
		primes = append(primes, p)
	}
	if len(primes) < 8 {
		return nil, fmt.Errorf("primes.txt: %d primes", len(primes))
	}
	return primes, sc.Err()
})

// differentialKeys returns every key the differential test runs over.
func differentialKeys(t *testing.T) []*testRSAKey {
	t.Helper()
	keys, err := rsaFixtureKeys()
	if err != nil {
		t.Fatal(err)
	}
	primes, err := primePool()
	if err != nil {
		t.Fatal(err)
	}
	keys = append([]*testRSAKey(nil), keys...)
	// Products of two pool primes of the given sizes, with exponents from
	// 3 to the largest crypto/rsa accepts; the first pair of the sizes for
	// which e is invertible.
	for _, c := range []struct{ bitsP, bitsQ, e int }{
		{1023, 1024, 3}, {1024, 1024, 65537}, {1024, 1024, 5}, {1025, 1025, 65537}, {1023, 1025, 1<<31 - 1},
		{1024, 1536, 65537}, {1536, 1536, 3}, {1536, 1536, 65537}, {1024, 2048, 7}, {2048, 2048, 65537}, {2048, 2048, 3},
	} {
		var k *testRSAKey
		for i := 0; i < len(primes) && k == nil; i++ {
			for j := i + 1; j < len(primes) && k == nil; j++ {
				if primes[i].BitLen() != c.bitsP || primes[j].BitLen() != c.bitsQ {
					continue
				}
				if cand := newTestRSAKey(fmt.Sprintf("pool-%d-%d-e%d", i, j, c.e), primes[i], primes[j], c.e); cand.canSign() {
					k = cand
				}
			}
		}
		if k == nil {
			t.Fatalf("primes.txt has no pair of %d and %d bits for e = %d", c.bitsP, c.bitsQ, c.e)
		}
		keys = append(keys, k)
	}
	// Keys crypto/rsa generated on this run.
	for i, priv := range []*rsa.PrivateKey{testKey(), otherKey()} {
		keys = append(keys, newTestRSAKey(fmt.Sprintf("generated-%d", i), priv.Primes[0], priv.Primes[1], priv.E))
	}
	return keys
}

// verifyBoth runs crypto/rsa and the prepared key on the same input,
// fails the test when they disagree (on acceptance, or on whether the
// rejection is rsa.ErrVerification), and returns whether the signature
// verified.
func verifyBoth(t testing.TB, k *testRSAKey, prep *preparedKey, digest, sig []byte) bool {
	t.Helper()
	want := rsa.VerifyPKCS1v15(k.pub, crypto.SHA256, digest, sig)
	dirty := bytes.Repeat([]byte{0xa5}, 512)
	for i, em := range [][]byte{nil, dirty[:0], make([]byte, 0, 16)} {
		got := prep.verify(digest, sig, em)
		if (got == nil) != (want == nil) || errors.Is(got, rsa.ErrVerification) != errors.Is(want, rsa.ErrVerification) {
			t.Fatalf("%s (scratch %d): prepared verify = %v, crypto/rsa = %v (digest %x, %d-byte signature %x)",
				k.name, i, got, want, digest, len(sig), sig)
		}
	}
	return want == nil
}

func mustPrepare(t testing.TB, k *testRSAKey) *preparedKey {
	t.Helper()
	prep, err := prepareKey(k.pub)
	if err != nil {
		t.Fatalf("%s: prepareKey: %v", k.name, err)
	}
	return prep
}

func flipBit(b []byte, bit int) []byte {
	c := bytes.Clone(b)
	c[len(c)-1-bit/8] ^= 1 << (bit % 8)
	return c
}

func TestPreparedVerifyMatchesCryptoRSA(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	for _, k := range differentialKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			if !k.canSign() {
				t.Fatal("test key cannot sign")
			}
			prep := mustPrepare(t, k)
			size := k.size()
			if prep.size != size {
				t.Fatalf("size %d, want %d", prep.size, size)
			}
			accept := func(name string, digest, sig []byte) {
				t.Helper()
				if !verifyBoth(t, k, prep, digest, sig) {
					t.Errorf("%s: rejected by both, want accepted", name)
				}
			}
			reject := func(name string, digest, sig []byte) {
				t.Helper()
				if verifyBoth(t, k, prep, digest, sig) {
					t.Errorf("%s: accepted by both, want rejected", name)
				}
			}

			msgDigest := sha256.Sum256([]byte("differential"))
			randDigest := make([]byte, 32)
			rand.Read(randDigest)
			for _, digest := range [][]byte{msgDigest[:], randDigest, make([]byte, 32), bytes.Repeat([]byte{0xff}, 32)} {
				sig := k.sign(digest)
				accept("valid", digest, sig)

				// Off by one bit: the edges of the signature, then random bits.
				for _, bit := range []int{0, 1, 7, 8, 8*size/2 + 3, 8*size - 9, 8*size - 1} {
					reject(fmt.Sprintf("signature bit %d flipped", bit), digest, flipBit(sig, bit))
				}
				for range 8 {
					bit := rng.IntN(8 * size)
					reject(fmt.Sprintf("signature bit %d flipped", bit), digest, flipBit(sig, bit))
				}
				for _, bit := range []int{0, 255, rng.IntN(256)} {
					reject(fmt.Sprintf("digest bit %d flipped", bit), flipBit(digest, bit), sig)
				}
				// Wrong lengths of signature and digest.
				reject("signature without its first byte", digest, sig[1:])
				reject("signature without its last byte", digest, sig[:size-1])
				reject("signature with a leading zero byte", digest, append([]byte{0}, sig...))
				reject("signature with a trailing byte", digest, append(bytes.Clone(sig), 0))
				reject("empty signature", digest, []byte{})
				reject("nil signature", digest, nil)
				reject("31-byte digest", digest[:31], sig)
				reject("33-byte digest", append(bytes.Clone(digest), 0), sig)
				reject("64-byte digest", append(bytes.Clone(digest), digest...), sig)
				reject("nil digest", nil, sig)
			}

			digest := msgDigest[:]
			n := k.pub.N
			nBytes := n.FillBytes(make([]byte, size))
			plus := func(d int64) []byte {
				v := new(big.Int).Add(n, big.NewInt(d))
				if v.BitLen() > 8*size {
					return nil
				}
				return v.FillBytes(make([]byte, size))
			}
			// Out of range and degenerate values.
			reject("signature = N", digest, nBytes)
			reject("signature = N-1", digest, plus(-1))
			if s := plus(1); s != nil {
				reject("signature = N+1", digest, s)
			}
			if s := new(big.Int).Add(n, new(big.Int).SetBytes(k.sign(digest))); s.BitLen() <= 8*size {
				// A valid signature plus N: the same residue, out of range.
				reject("valid signature + N", digest, s.FillBytes(make([]byte, size)))
			}
			reject("signature 0", digest, make([]byte, size))
			reject("signature 1", digest, append(make([]byte, size-1), 1))
			reject("signature all 0xff", digest, bytes.Repeat([]byte{0xff}, size))

			// Signatures over encodings that are not the canonical one.
			em := encodeEM(size, digest)
			ps := size - 3 - 19 - 32
			mutations := map[string]func([]byte) []byte{
				"first byte 01":                   func(e []byte) []byte { e[0] = 1; return e },
				"block type 02":                   func(e []byte) []byte { e[1] = 2; return e },
				"block type 00":                   func(e []byte) []byte { e[1] = 0; return e },
				"padding byte fe":                 func(e []byte) []byte { e[2+ps/2] = 0xfe; return e },
				"no zero separator":               func(e []byte) []byte { e[2+ps] = 0xff; return e },
				"separator early":                 func(e []byte) []byte { e[2+ps-1] = 0; return e },
				"DigestInfo with the SHA-384 OID": func(e []byte) []byte { e[2+ps+1+14] = 0x02; return e },
				"DigestInfo without NULL": func(e []byte) []byte {
					// 30 2f 30 0b 06 09 <oid> 04 20 <digest>, padded by one more 0xff
					t := append([]byte{0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20}, digest...)
					out := append([]byte{0, 1}, bytes.Repeat([]byte{0xff}, size-3-len(t))...)
					return append(append(out, 0), t...)
				},
				"garbage after the digest (short padding)": func(e []byte) []byte {
					// Bleichenbacher's 2006 layout: 00 01 ff*8 00 T garbage.
					out := append([]byte{0, 1}, bytes.Repeat([]byte{0xff}, 8)...)
					out = append(out, 0)
					out = append(out, e[2+ps+1:]...)
					for len(out) < size {
						out = append(out, 0x42)
					}
					return out
				},
				"digest shifted left": func(e []byte) []byte {
					out := append(bytes.Clone(e[1:]), 0)
					return out
				},
				"all 0xff padding to the end": func(e []byte) []byte {
					return append([]byte{0, 1}, bytes.Repeat([]byte{0xff}, size-2)...)
				},
			}
			for name, mutate := range mutations {
				bad := mutate(bytes.Clone(em))
				if len(bad) != size || bytes.Equal(bad, em) {
					t.Fatalf("%s: the mutation made a %d-byte or unchanged encoding", name, len(bad))
				}
				reject("signed "+name, digest, k.rawSign(bad))
			}
		})
	}
}

// TestPreparedVerifyLeadingZeroSignatures checks signatures whose first
// byte is zero (their value has fewer significant bytes than the modulus)
// on the fixture keys of 2049 bits (whose top byte is 1, so that about
// every other signature starts with a zero byte).
func TestPreparedVerifyLeadingZeroSignatures(t *testing.T) {
	keys, err := rsaFixtureKeys()
	if err != nil {
		t.Fatal(err)
	}
	tested := 0
	for _, k := range keys {
		if k.pub.N.BitLen()%8 != 1 {
			continue
		}
		prep := mustPrepare(t, k)
		found := 0
		for i := 0; i < 100 && found < 3; i++ {
			d := sha256.Sum256([]byte(strconv.Itoa(i)))
			sig := k.sign(d[:])
			if sig[0] != 0 {
				continue
			}
			found++
			if !verifyBoth(t, k, prep, d[:], sig) {
				t.Errorf("%s: a valid signature with a leading zero byte was rejected", k.name)
			}
			if verifyBoth(t, k, prep, d[:], sig[1:]) {
				t.Errorf("%s: the same signature without its leading zero was accepted", k.name)
			}
		}
		if found == 0 {
			t.Errorf("%s: no signature with a leading zero byte in 100 tries", k.name)
		}
		tested++
	}
	if tested == 0 {
		t.Fatal("no fixture key of 2049 bits")
	}
}

// TestPreparedVerifyOpenSSLSignatures checks the signatures openssl made
// with each fixture key (testdata/rsa/make.sh): both verifiers accept them,
// and they are byte for byte what the raw private operation makes.
func TestPreparedVerifyOpenSSLSignatures(t *testing.T) {
	keys, err := rsaFixtureKeys()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := os.ReadFile("testdata/rsa/message.txt")
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(msg)
	exps := map[int]bool{}
	sizes := map[int]bool{}
	for _, k := range keys {
		sig, err := os.ReadFile("testdata/rsa/" + k.name + ".sig")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sig, k.sign(d[:])) {
			t.Errorf("%s: openssl's signature differs from the raw private operation's", k.name)
		}
		if !verifyBoth(t, k, mustPrepare(t, k), d[:], sig) {
			t.Errorf("%s: openssl's signature rejected", k.name)
		}
		exps[k.pub.E] = true
		sizes[k.pub.N.BitLen()] = true
	}
	for _, e := range []int{3, 17, 65537, 1<<31 - 1} {
		if !exps[e] {
			t.Errorf("no fixture key with e = %d", e)
		}
	}
	for _, b := range []int{2048, 2049, 3071, 3072, 4096} {
		if !sizes[b] {
			t.Errorf("no fixture key of %d bits", b)
		}
	}
}

// TestPrepareKeyRefusesWhatCryptoRSARefuses: every key crypto/rsa refuses
// to verify with is refused by prepareKey, and the edges crypto/rsa
// accepts are accepted.
func TestPrepareKeyRefusesWhatCryptoRSARefuses(t *testing.T) {
	good := testKey().PublicKey
	primes, err := primePool()
	if err != nil {
		t.Fatal(err)
	}
	small := new(big.Int).Mul(primes[0], primes[1]) // 1023 or 1024 bits
	var under1024 *big.Int
	if small.BitLen() < 1024 {
		under1024 = small
	} else {
		under1024 = new(big.Int).Rsh(small, 1)
		under1024.SetBit(under1024, 0, 1)
	}
	digest := make([]byte, 32)
	for _, tt := range []struct {
		name string
		key  *rsa.PublicKey
		ok   bool
	}{
		{"good", &good, true},
		{"e = 3", &rsa.PublicKey{N: good.N, E: 3}, true},
		{"e = 2^31-1", &rsa.PublicKey{N: good.N, E: 1<<31 - 1}, true},
		{"1024-bit modulus", &rsa.PublicKey{N: new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 1023), big.NewInt(1)), E: 65537}, true},
		{"nil modulus", &rsa.PublicKey{E: 65537}, false},
		{"zero modulus", &rsa.PublicKey{N: new(big.Int), E: 65537}, false},
		{"even modulus", &rsa.PublicKey{N: new(big.Int).Add(good.N, big.NewInt(1)), E: 65537}, false},
		{"modulus under 1024 bits", &rsa.PublicKey{N: under1024, E: 65537}, false},
		{"e = 1", &rsa.PublicKey{N: good.N, E: 1}, false},
		{"e = 2", &rsa.PublicKey{N: good.N, E: 2}, false},
		{"e = 65536", &rsa.PublicKey{N: good.N, E: 65536}, false},
		{"e = 0", &rsa.PublicKey{N: good.N, E: 0}, false},
		{"e = -3", &rsa.PublicKey{N: good.N, E: -3}, false},
		{"e = 2^31", &rsa.PublicKey{N: good.N, E: 1 << 31}, false},
		{"e = 2^31+1", &rsa.PublicKey{N: good.N, E: 1<<31 + 1}, false},
	} {
		size := 256
		if tt.key.N != nil && tt.key.N.Sign() > 0 {
			size = (tt.key.N.BitLen() + 7) / 8
		}
		sig := make([]byte, size)
		sig[size-1] = 2
		stdErr := rsa.VerifyPKCS1v15(tt.key, crypto.SHA256, digest, sig)
		stdRefuses := stdErr != nil && !errors.Is(stdErr, rsa.ErrVerification)
		_, err := prepareKey(tt.key)
		if stdRefuses == tt.ok {
			t.Errorf("%s: crypto/rsa says %v; the test expects the key to be usable: %v", tt.name, stdErr, tt.ok)
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: prepareKey = %v, want usable %v", tt.name, err, tt.ok)
		}
	}
	if _, err := prepareKey(nil); err == nil {
		t.Error("prepareKey(nil) succeeded")
	}
}

// TestKeyRingRefusesUnusableKey: a key crypto/rsa cannot verify with is
// refused when it is configured, not at every notification.
func TestKeyRingRefusesUnusableKey(t *testing.T) {
	n := testKey().PublicKey.N
	for _, key := range []*rsa.PublicKey{
		{N: n, E: 4},
		{N: new(big.Int).Add(n, big.NewInt(1)), E: 65537},
	} {
		err := NewKeyRing().Add("c", 1, key)
		if err == nil || !strings.Contains(err.Error(), "unusable RSA public key") {
			t.Errorf("Add(e=%d, even N %v) = %v, want an unusable-key error", key.E, key.N.Bit(0) == 0, err)
		}
	}
}

// fuzzKeys caches the keys the fuzz target builds from pool primes; it is
// emptied when it reaches 1024 keys.
var fuzzKeys struct {
	sync.Mutex
	m map[fuzzKeyID]*fuzzKey
}

type fuzzKeyID struct{ i, j, e int }

type fuzzKey struct {
	k    *testRSAKey
	prep *preparedKey
	err  error
}

// FuzzPreparedVerify compares the prepared-key verifier with crypto/rsa on
// a key made of two primes of testdata/rsa/primes.txt (the pair picks the
// size: 1023 to 4096 bits) with the public exponent the fuzzer chooses (odd,
// even, tiny, past 2³¹-1), or on an arbitrary modulus from the input; the
// signature is valid, valid but off by one bit, a raw signature of a
// mutated or arbitrary encoding, out of range, of the wrong length, zero,
// one, N-1 or all 0xff, as mode and pos say.
func FuzzPreparedVerify(f *testing.F) {
	primes, err := primePool()
	if err != nil {
		f.Fatal(err)
	}
	np := len(primes)
	pair := func(i, j int) uint16 { return uint16(i + j*np) }
	d := sha256.Sum256([]byte("seed"))
	for _, s := range []struct {
		i, j int
		e    uint32
	}{{3, 4, 65537}, {5, 6, 3}, {7, 8, 17}, {9, 10, 65537}, {10, 11, 3}, {12, 13, 65537}, {13, 14, 3}, {2, 8, 1<<31 - 1}, {3, 4, 65536}, {0, 1, 65537}, {3, 4, 1 << 31}} {
		for mode := uint8(0); mode < 9; mode++ {
			f.Add(pair(s.i, s.j), s.e, mode, uint16(mode)*37, d[:], []byte("data"))
		}
	}
	f.Add(uint16(0), uint32(65537), uint8(8), uint16(0), d[:], bytes.Repeat([]byte{0xab}, 300))

	f.Fuzz(func(t *testing.T, sel uint16, e uint32, mode uint8, pos uint16, digest, data []byte) {
		if mode%9 == 8 {
			fuzzArbitraryModulus(t, int(e), digest, data)
			return
		}
		i, j := int(sel)%np, int(sel)/np%np
		if i == j {
			j = (j + 1) % np
		}
		id := fuzzKeyID{i, j, int(e)}
		fuzzKeys.Lock()
		fk := fuzzKeys.m[id]
		if fk == nil {
			k := newTestRSAKey(fmt.Sprintf("pool-%d-%d-e%d", i, j, e), primes[i], primes[j], int(e))
			prep, err := prepareKey(k.pub)
			fk = &fuzzKey{k: k, prep: prep, err: err}
			if len(fuzzKeys.m) >= 1024 || fuzzKeys.m == nil {
				fuzzKeys.m = map[fuzzKeyID]*fuzzKey{}
			}
			fuzzKeys.m[id] = fk
		}
		fuzzKeys.Unlock()
		k := fk.k
		size := k.size()
		if fk.err != nil {
			// Refused by prepareKey: crypto/rsa must refuse it too.
			sig := make([]byte, size)
			if err := rsa.VerifyPKCS1v15(k.pub, crypto.SHA256, make([]byte, 32), sig); err == nil || errors.Is(err, rsa.ErrVerification) {
				t.Fatalf("%s: prepareKey refused (%v), crypto/rsa verifies with it (%v)", k.name, fk.err, err)
			}
			return
		}
		bit := int(pos) % (8 * size)
		var sig []byte
		wantValid := false
		switch mode % 9 {
		case 0, 1, 2, 5:
			if !k.canSign() {
				sig = data
				break
			}
			em := encodeEM(size, padDigest(digest))
			switch mode % 9 {
			case 0: // valid, for the given digest when it has 32 bytes
				sig, wantValid = k.rawSign(em), len(digest) == 32
			case 1: // valid but one bit of the signature flipped
				sig = flipBit(k.rawSign(em), bit)
			case 2: // the encoding off by one bit, then signed
				sig = k.rawSign(flipBit(em, bit))
			case 5: // valid but of the wrong length
				s := k.rawSign(em)
				if pos%2 == 0 {
					sig = s[:size-1-int(pos)%min(size-1, 4)]
				} else {
					sig = append(make([]byte, 1+int(pos)%4), s...)
				}
			}
		case 3: // the input as a signature
			sig = data
		case 4: // N plus the input: out of range (or too long)
			s := new(big.Int).Add(k.pub.N, new(big.Int).SetBytes(data))
			sig = s.Bytes()
			if len(sig) < size {
				sig = s.FillBytes(make([]byte, size))
			}
		case 6: // a raw signature of an arbitrary encoding
			if !k.canSign() {
				sig = data
				break
			}
			em := make([]byte, size)
			copy(em[max(0, size-len(data)):], data)
			sig = k.rawSign(em)
			// It verifies only if em (mod N) is exactly the encoding of digest.
			r := new(big.Int).SetBytes(em)
			r.Mod(r, k.pub.N)
			wantValid = len(digest) == 32 && bytes.Equal(r.FillBytes(make([]byte, size)), encodeEM(size, digest))
		case 7: // degenerate values
			switch pos % 5 {
			case 0:
				sig = make([]byte, size)
			case 1:
				sig = append(make([]byte, size-1), 1)
			case 2:
				sig = new(big.Int).Sub(k.pub.N, big.NewInt(1)).FillBytes(make([]byte, size))
			case 3:
				sig = bytes.Repeat([]byte{0xff}, size)
			case 4:
				sig = k.pub.N.FillBytes(make([]byte, size))
			}
		}
		if got := verifyBoth(t, k, fk.prep, digest, sig); got != wantValid {
			t.Fatalf("%s mode %d: verified %v, want %v", k.name, mode%9, got, wantValid)
		}
	})
}

// padDigest makes digest 32 bytes long (cut or zero-padded) for encoding.
func padDigest(digest []byte) []byte {
	d := make([]byte, 32)
	copy(d, digest)
	return d
}

// fuzzArbitraryModulus: data holds a modulus (its first two bytes give its
// length, at most 520 bytes) and then a signature; no private key exists,
// so both verifiers must agree on the key's usability and reject.
func fuzzArbitraryModulus(t *testing.T, e int, digest, data []byte) {
	if len(data) < 2 {
		return
	}
	nLen := (int(data[0])<<8 | int(data[1])) % 521
	data = data[2:]
	if len(data) < nLen {
		return
	}
	n := new(big.Int).SetBytes(data[:nLen])
	sig := data[nLen:]
	k := &testRSAKey{name: "arbitrary", pub: &rsa.PublicKey{N: n, E: e}}
	prep, err := prepareKey(k.pub)
	if err != nil {
		std := rsa.VerifyPKCS1v15(k.pub, crypto.SHA256, make([]byte, 32), make([]byte, k.size()))
		if std == nil || errors.Is(std, rsa.ErrVerification) {
			t.Fatalf("prepareKey refused a %d-bit modulus with e = %d (%v), crypto/rsa uses it (%v)", n.BitLen(), e, err, std)
		}
		return
	}
	if verifyBoth(t, k, prep, digest, sig) {
		// Possible only if sig^e mod N happens to be the encoding of digest,
		// which the fuzzer cannot find for a real-size modulus; both agreed.
		t.Logf("an arbitrary signature verified under an arbitrary %d-bit modulus (both agreed)", n.BitLen())
	}
}
