package signature

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ParsePublicKey parses an RSA public key of at least MinKeyBits bits from
// key material as operators receive it:
//
//   - bare Base64 of the DER SubjectPublicKeyInfo, the way DWS hands out its
//     key ("MIIBIjANBgkq..."); surrounding whitespace and line breaks inside
//     are ignored;
//   - bare Base64 of a DER PKCS#1 RSAPublicKey;
//   - PEM "PUBLIC KEY" (SubjectPublicKeyInfo) or "RSA PUBLIC KEY" (PKCS#1);
//   - PEM "CERTIFICATE" or a bare Base64 DER certificate, whose RSA key is
//     taken (the certificate itself is not validated).
//
// Anything else is refused with an error that says what was found (an EC,
// Ed25519 or X25519 key, a short RSA key, a private key, an encrypted key,
// text that is neither PEM nor Base64) without quoting the material.
func ParsePublicKey(material string) (*rsa.PublicKey, error) {
	der, pemType, err := decodeMaterial(material)
	if err != nil {
		return nil, err
	}
	var pub any
	switch pemType {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(der)
		if err != nil {
			err = keyErrorf("PEM PUBLIC KEY is not a valid SubjectPublicKeyInfo: %w", err)
		}
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(der)
		if err != nil {
			err = keyErrorf("PEM RSA PUBLIC KEY is not a valid PKCS#1 key: %w", err)
		}
	case "CERTIFICATE":
		pub, err = certificateKey(der)
	case "":
		pub, err = parseBareDERPublic(der)
	default:
		if isPrivatePEM(pemType) {
			return nil, keyErrorf("found a private key (PEM %q) where a public key is required", pemType)
		}
		return nil, keyErrorf("unsupported PEM block %q; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", pemType)
	}
	if err != nil {
		return nil, err
	}
	return checkRSAPublic(pub)
}

// ParsePrivateKey parses an RSA private key of at least MinKeyBits bits
// from PEM "PRIVATE KEY" (PKCS#8) or "RSA PRIVATE KEY" (PKCS#1), or from
// bare Base64 of either DER form (whitespace ignored). Encrypted keys, EC and
// Ed25519 keys, short RSA keys, public keys and certificates are refused with
// an error that says what was found, without quoting the material.
func ParsePrivateKey(material string) (*rsa.PrivateKey, error) {
	der, pemType, err := decodeMaterial(material)
	if err != nil {
		return nil, err
	}
	var priv any
	switch pemType {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			err = keyErrorf("PEM PRIVATE KEY is not a valid PKCS#8 key: %w", err)
		}
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(der)
		if err != nil {
			err = keyErrorf("PEM RSA PRIVATE KEY is not a valid PKCS#1 key: %w", err)
		}
	case "EC PRIVATE KEY":
		return nil, keyErrorf("found an EC private key (PEM EC PRIVATE KEY); an RSA private key is required")
	case "ENCRYPTED PRIVATE KEY":
		return nil, keyErrorf("found an encrypted PKCS#8 private key; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
	case "OPENSSH PRIVATE KEY":
		return nil, keyErrorf("found an OpenSSH private key; convert it to PKCS#8 PEM first (ssh-keygen -p -m PKCS8 -f key)")
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return nil, keyErrorf("found a public key (PEM %q) where a private key is required", pemType)
	case "CERTIFICATE":
		return nil, keyErrorf("found a certificate where a private key is required")
	case "":
		priv, err = parseBareDERPrivate(der)
	default:
		return nil, keyErrorf("unsupported PEM block %q; want PRIVATE KEY or RSA PRIVATE KEY", pemType)
	}
	if err != nil {
		return nil, err
	}
	key, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, keyErrorf("found %s; an RSA private key is required", describeKey(priv))
	}
	if bits := key.N.BitLen(); bits < MinKeyBits {
		return nil, keyErrorf("RSA private key is %d bits; at least %d are required", bits, MinKeyBits)
	}
	return key, nil
}

// decodeMaterial returns the DER bytes of PEM or bare Base64 material and
// the PEM block type ("" for bare Base64).
func decodeMaterial(material string) (der []byte, pemType string, err error) {
	s := strings.TrimSpace(material)
	if s == "" {
		return nil, "", keyErrorf("empty key material")
	}
	if strings.HasPrefix(s, "-----BEGIN ") {
		block, rest := pem.Decode([]byte(s))
		if block == nil {
			return nil, "", keyErrorf("key material starts like PEM but is not a valid PEM block")
		}
		if len(strings.TrimSpace(string(rest))) != 0 {
			return nil, "", keyErrorf("unexpected data after the PEM %q block; give exactly one key", block.Type)
		}
		if _, encrypted := block.Headers["DEK-Info"]; encrypted {
			return nil, "", keyErrorf("found an encrypted PEM %q block; decrypt it first", block.Type)
		}
		return block.Bytes, block.Type, nil
	}
	compact := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	der, err = base64.StdEncoding.DecodeString(compact)
	if err != nil {
		return nil, "", keyErrorf("key material is neither PEM nor standard Base64 DER")
	}
	return der, "", nil
}

// parseBareDERPublic identifies DER that came without a PEM type.
func parseBareDERPublic(der []byte) (any, error) {
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		return pub, nil
	}
	if pub, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return pub, nil
	}
	if cert, err := x509.ParseCertificate(der); err == nil {
		return cert.PublicKey, nil
	}
	if isPrivateDER(der) {
		return nil, keyErrorf("found a private key where a public key is required")
	}
	return nil, keyErrorf("Base64 key material is not a DER SubjectPublicKeyInfo, PKCS#1 public key or certificate")
}

// parseBareDERPrivate identifies DER that came without a PEM type.
func parseBareDERPrivate(der []byte) (any, error) {
	if priv, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return priv, nil
	}
	if priv, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return priv, nil
	}
	if _, err := x509.ParseECPrivateKey(der); err == nil {
		return nil, keyErrorf("found an EC private key; an RSA private key is required")
	}
	if _, err := x509.ParsePKIXPublicKey(der); err == nil {
		return nil, keyErrorf("found a public key where a private key is required")
	}
	if _, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return nil, keyErrorf("found a public key where a private key is required")
	}
	if _, err := x509.ParseCertificate(der); err == nil {
		return nil, keyErrorf("found a certificate where a private key is required")
	}
	return nil, keyErrorf("Base64 key material is not a DER PKCS#8 or PKCS#1 private key")
}

func certificateKey(der []byte) (any, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, keyErrorf("invalid certificate: %w", err)
	}
	return cert.PublicKey, nil
}

func isPrivateDER(der []byte) bool {
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return true
	}
	_, err := x509.ParseECPrivateKey(der)
	return err == nil
}

func isPrivatePEM(pemType string) bool {
	return strings.HasSuffix(pemType, "PRIVATE KEY")
}

func checkRSAPublic(pub any) (*rsa.PublicKey, error) {
	key, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, keyErrorf("found %s; an RSA public key is required", describeKey(pub))
	}
	if bits := key.N.BitLen(); bits < MinKeyBits {
		return nil, keyErrorf("RSA public key is %d bits; at least %d are required", bits, MinKeyBits)
	}
	return key, nil
}

// describeKey names a key's type for error messages.
func describeKey(k any) string {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return "an EC (" + k.Curve.Params().Name + ") public key"
	case *ecdsa.PrivateKey:
		return "an EC (" + k.Curve.Params().Name + ") private key"
	case ed25519.PublicKey:
		return "an Ed25519 public key"
	case ed25519.PrivateKey:
		return "an Ed25519 private key"
	case *ecdh.PublicKey:
		return "an X25519 public key"
	case *ecdh.PrivateKey:
		return "an X25519 private key"
	default:
		return fmt.Sprintf("a key of type %T", k)
	}
}

// KeyError is the error of key material that ParsePublicKey or
// ParsePrivateKey refused. Its message is "signature: " and Problem; a
// caller that names the material's source itself (a file, a flag) can put
// Problem in its own message.
type KeyError struct {
	// Problem says what was found instead of a usable key, without
	// quoting the material.
	Problem string
	cause   error
}

func (e *KeyError) Error() string { return "signature: " + e.Problem }

// Unwrap returns the parser's own error, if any (e.g. x509's).
func (e *KeyError) Unwrap() error { return e.cause }

// keyErrorf makes a *KeyError whose Problem is the formatted text; a %w
// operand becomes its cause.
func keyErrorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &KeyError{Problem: err.Error(), cause: errors.Unwrap(err)}
}
