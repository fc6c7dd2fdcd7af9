package signature

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/bits"

	"filippo.io/bigmod"
)

// preparedKey is an RSA public key made ready for RSASSA-PKCS1-v1_5
// SHA-256 verification once, when it is configured: the modulus with its
// Montgomery constants and the fixed part of the encoded message.
//
// crypto/rsa.VerifyPKCS1v15 rebuilds the modulus (bigmod.NewModulus, which
// computes R² mod N by a few thousand modular doublings and squarings) on
// every call, about a third of a 2048-bit verification. The arithmetic here
// is filippo.io/bigmod, the standalone form of the package crypto/rsa uses
// internally, so the one RSA operation is the same code; the differential
// tests and FuzzPreparedVerify check that verify accepts exactly what
// crypto/rsa accepts.
type preparedKey struct {
	n    *bigmod.Modulus
	e    uint
	size int // bytes of the modulus and of every valid signature
	// prefix is the encoded message EM (RFC 8017, 9.2) up to the digest:
	// 0x00 0x01, 0xff padding, 0x00, the DER DigestInfo header of SHA-256.
	prefix []byte
}

// sha256DigestInfo is the DER header of a SHA-256 DigestInfo (RFC 8017,
// 9.2, note 1); the 32-byte digest follows it.
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// errPreparedVerification is what preparedKey.verify returns for every
// signature it rejects, as crypto/rsa returns rsa.ErrVerification.
var errPreparedVerification = rsa.ErrVerification

// prepareKey checks pub the way crypto/rsa checks a public key on every
// verification and precomputes what verify needs. A key crypto/rsa would
// refuse (modulus missing, even or under 1024 bits, exponent even, under 2
// or over 2³¹-1) is an error here, so that it is refused when configured
// rather than failing every notification.
func prepareKey(pub *rsa.PublicKey) (*preparedKey, error) {
	switch {
	case pub == nil || pub.N == nil:
		return nil, errors.New("missing public modulus")
	case pub.N.Sign() <= 0:
		return nil, errors.New("public modulus is not positive")
	case pub.N.BitLen() < 1024:
		return nil, fmt.Errorf("%d-bit modulus is too small", pub.N.BitLen())
	case pub.N.Bit(0) == 0:
		return nil, errors.New("public modulus is even")
	case pub.E < 2:
		return nil, errors.New("public exponent too small or negative")
	case pub.E&1 == 0:
		return nil, errors.New("public exponent is even")
	case pub.E > 1<<31-1:
		return nil, errors.New("public exponent too large")
	}
	n, err := bigmod.NewModulus(pub.N.Bytes())
	if err != nil {
		return nil, err
	}
	k := &preparedKey{n: n, e: uint(pub.E), size: n.Size()}
	// EM = 0x00 || 0x01 || PS (0xff, at least 8) || 0x00 || DigestInfo || H
	// with len(EM) = size; 2048 bits leave 202 bytes of padding.
	ps := k.size - 3 - len(sha256DigestInfo) - 32
	if ps < 8 {
		return nil, errors.New("modulus too short for a SHA-256 signature")
	}
	k.prefix = make([]byte, 0, k.size-32)
	k.prefix = append(k.prefix, 0x00, 0x01)
	k.prefix = append(k.prefix, bytes.Repeat([]byte{0xff}, ps)...)
	k.prefix = append(k.prefix, 0x00)
	k.prefix = append(k.prefix, sha256DigestInfo...)
	return k, nil
}

// verify checks sig, an RSASSA-PKCS1-v1_5 signature, over digest, a SHA-256
// digest: nil when it verifies. em is scratch space for the encoded message;
// it is used when it can hold k.size bytes, else a buffer is allocated.
//
// The steps are those of crypto/rsa (RFC 8017, 8.2.2): a signature of any
// length but the modulus's is rejected, so is one whose value is not below
// the modulus; the signature raised to e modulo N must equal the encoding
// of digest exactly.
func (k *preparedKey) verify(digest, sig, em []byte) error {
	if len(digest) != 32 {
		return errors.New("crypto/rsa: input must be hashed message")
	}
	if len(sig) != k.size {
		return errPreparedVerification
	}
	s, err := bigmod.NewNat().SetBytes(sig, k.n)
	if err != nil {
		return errPreparedVerification // s >= N
	}
	m := bigmod.NewNat().ExpShortVarTime(s, k.e, k.n)
	if cap(em) < k.size {
		em = make([]byte, k.size)
	}
	em = em[:k.size]
	putBigEndian(em, m.Bits())
	if !bytes.Equal(em[:len(k.prefix)], k.prefix) || !bytes.Equal(em[len(k.prefix):], digest) {
		return errPreparedVerification
	}
	return nil
}

// putBigEndian writes the little-endian limbs as a big-endian number filling
// out, which must hold it (the number is below the modulus, whose size out
// is); it does what bigmod.Nat.Bytes does without allocating.
func putBigEndian(out []byte, limbs []uint) {
	i := len(out)
	for _, limb := range limbs {
		for j := 0; j < bits.UintSize/8; j++ {
			i--
			if i < 0 {
				if limb != 0 {
					panic("signature: RSA result longer than the modulus")
				}
				break
			}
			out[i] = byte(limb)
			limb >>= 8
		}
	}
	clear(out[:max(i, 0)])
}
