package signature

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"os"
	"strings"
	"testing"
)

// benchSetup returns the committed openssl test key (the same key on every
// run), a ring holding it, a 1 KiB body and a real header over it.
func benchSetup(b *testing.B) (*rsa.PrivateKey, *KeyRing, []byte, string) {
	b.Helper()
	pem, err := os.ReadFile("testdata/openssl/key.pem")
	if err != nil {
		b.Fatal(err)
	}
	key, err := ParsePrivateKey(string(pem))
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	h, err := SignatureHeader(key, 1, benchURI, benchClient, benchTime, body)
	if err != nil {
		b.Fatal(err)
	}
	r := NewKeyRing()
	if err := r.Add(benchClient, 1, &key.PublicKey); err != nil {
		b.Fatal(err)
	}
	return key, r, body, h
}

const (
	benchURI    = "/dws/notify/addPaymentMethod"
	benchClient = "2188120000000000"
	benchTime   = "1685599933871"
)

// BenchmarkVerify is the whole verification of a notification: header
// parse and decode, key lookup, content digest, RSA verify.
func BenchmarkVerify(b *testing.B) {
	_, r, body, h := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Verify(benchClient, benchURI, benchTime, body, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawVerifyPKCS1v15 is the irreducible work on the same key and
// content: SHA-256 of the prepared content and rsa.VerifyPKCS1v15 on the
// already decoded signature.
func BenchmarkRawVerifyPKCS1v15(b *testing.B) {
	key, _, body, h := benchSetup(b)
	hdr, err := ParseHeader(h)
	if err != nil {
		b.Fatal(err)
	}
	content := AppendSignedContent(nil, benchURI, benchClient, benchTime, body)
	b.ReportAllocs()
	for b.Loop() {
		d := sha256.Sum256(content)
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], hdr.Signature); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHeader(b *testing.B) {
	_, _, _, h := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeader(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest1KiB(b *testing.B) {
	_, _, body, _ := benchSetup(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Digest(benchURI, benchClient, benchTime, body)
	}
}

func BenchmarkParseRequestTime(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequestTime("2025-02-20T08:51:49.09+08:00"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignatureHeader is one uncached RSA-2048 signing of an
// acknowledgement.
func BenchmarkSignatureHeader(b *testing.B) {
	key, _, _, _ := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignatureHeader(key, 1, benchURI, benchClient, ackTime, ackBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignerSignCached is Sign for an acknowledgement already signed
// in the same Response-Time second.
func BenchmarkSignerSignCached(b *testing.B) {
	key, _, _, _ := benchSetup(b)
	s := NewSigner(key, 1)
	if _, err := s.Sign(benchURI, benchClient, ackTime, ackBody); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(benchURI, benchClient, ackTime, ackBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignerSignCachedParallel is the same from every core at once.
func BenchmarkSignerSignCachedParallel(b *testing.B) {
	key, _, _, _ := benchSetup(b)
	s := NewSigner(key, 1)
	if _, err := s.Sign(benchURI, benchClient, ackTime, ackBody); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Sign(benchURI, benchClient, ackTime, ackBody); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyMinusRSA is Verify's work apart from the RSA operation:
// header parse and decode, key lookup and content digest. Together with
// BenchmarkRawSHA256 it isolates what Verify adds to the irreducible work,
// a figure that the noise of the RSA operation does not swamp.
func BenchmarkVerifyMinusRSA(b *testing.B) {
	_, r, body, h := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		var buf [512]byte
		hdr, err := parseHeader(h, buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		if k := r.client(benchClient).byVersion[hdr.KeyVersion]; k == nil {
			b.Fatal("no key")
		}
		Digest(benchURI, benchClient, benchTime, body)
	}
}

// BenchmarkRawSHA256 is the hashing part of BenchmarkRawVerifyPKCS1v15.
func BenchmarkRawSHA256(b *testing.B) {
	_, _, body, _ := benchSetup(b)
	content := AppendSignedContent(nil, benchURI, benchClient, benchTime, body)
	b.ReportAllocs()
	for b.Loop() {
		sha256.Sum256(content)
	}
}

// BenchmarkVerifyCryptoRSA is BenchmarkVerify with the ring verifying
// through crypto/rsa (VerifyRSA), as every ring did before keys were
// prepared: the before of the prepared verifier, in the same binary.
func BenchmarkVerifyCryptoRSA(b *testing.B) {
	key, _, body, h := benchSetup(b)
	r := NewKeyRingVerifying(VerifyRSA)
	if err := r.Add(benchClient, 1, &key.PublicKey); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Verify(benchClient, benchURI, benchTime, body, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRSAVerify is the RSA operation alone, crypto/rsa against the
// prepared key, on the fixture keys of testdata/rsa (openssl-made), one
// valid signature each.
func BenchmarkRSAVerify(b *testing.B) {
	keys, err := rsaFixtureKeys()
	if err != nil {
		b.Fatal(err)
	}
	d := sha256.Sum256([]byte("bench"))
	for _, name := range []string{"key-2048-e65537", "key-2048-e3", "key-3072-e65537", "key-4096-e65537"} {
		var k *testRSAKey
		for _, c := range keys {
			if c.name == name {
				k = c
			}
		}
		if k == nil {
			b.Fatalf("no fixture %s", name)
		}
		sig := k.sign(d[:])
		prep := mustPrepare(b, k)
		label := strings.TrimPrefix(name, "key-")
		b.Run("impl=crypto-rsa/key="+label, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := rsa.VerifyPKCS1v15(k.pub, crypto.SHA256, d[:], sig); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("impl=prepared/key="+label, func(b *testing.B) {
			var em [512]byte
			b.ReportAllocs()
			for b.Loop() {
				if err := prep.verify(d[:], sig, em[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPrepareKey is what Add now does once per key (the modulus's
// Montgomery constants), the part of crypto/rsa's verification that the
// prepared key saves.
func BenchmarkPrepareKey(b *testing.B) {
	key, _, _, _ := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := prepareKey(&key.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}
