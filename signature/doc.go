// Package signature implements the Alipay DWS signature scheme for the
// notifications DWS sends and for the acknowledgements the gateway returns.
//
// # Scheme
//
// DWS signs, with RSASSA-PKCS1-v1_5 over SHA-256, the bytes
//
//	POST <HTTP-URI>\n<Client-Id>.<Request-Time>.<HTTP-BODY>
//
// where the URI is the request target as DWS called it (path and query), the
// Client-Id and Request-Time are the header values verbatim, and the body is
// the raw bytes as received. The signature travels in the Signature header:
//
//	algorithm=RSA256,keyVersion=1,signature=<percent-encoded standard Base64>
//
// The gateway signs its answers the same way, with the Response-Time and the
// response body in place of the request's.
//
// # Signature header grammar
//
// [ParseHeader] accepts the tolerant superset of every form seen in documents
// and SDKs:
//
//   - parameters are separated by commas, with optional spaces or tabs around
//     them; keys may come in any order; each parameter is split on its first
//     "=" only, and surrounding spaces of keys and values are ignored;
//   - key names are matched case-insensitively; unknown keys are ignored
//     (forward compatibility) but must still have the key=value form;
//   - "algorithm" is required and compared case-insensitively; only RSA256
//     is supported;
//   - "keyVersion" is optional; when present it is a decimal integer between
//     0 and 2147483647 (leading zeros allowed);
//   - "signature" is required; its value is standard Base64 (alphabet "+/",
//     "=" padding, canonical encoding) that may be percent-encoded, with hex
//     digits in either case. Decoding uses path semantics: "+" stays "+" and
//     is never turned into a space. A raw, un-encoded Base64 value is
//     accepted too. The URL-safe alphabet ("-_") is not accepted;
//   - a repeated algorithm, keyVersion or signature key (in any case), an
//     empty value for one of them, or an empty parameter (",," or a
//     trailing comma) is malformed. Repeated unknown keys are ignored.
//
// An absent or blank header is [ErrMissing]; a header without a signature
// parameter is [ErrMalformed]. A signature whose decoded length differs from
// the key's modulus size is reported as [ErrVerificationFailed] by
// [KeyRing.Verify].
//
// # Key selection
//
// A [KeyRing] holds each client's DWS public keys by version.
// [KeyRing.VerifyNotification] verifies with the key the Signature header's
// keyVersion names; without one, with the key the Key-Version request
// header names (Alipay's SDKs send both); without either, with each of the
// client's keys, newest version first, until one verifies. That last rule
// keeps a notification signed by the old key without keyVersion verifying
// while the new key is configured too. A forged signature then costs at
// most one RSA verification per configured key. [KeyRing.VerifyParsed]
// does the same for a header parsed earlier with [ParseHeaderInto], so a
// gateway can refuse a malformed header before it reads the body and
// still parse it only once.
//
// # RSA verification
//
// The ring prepares each key when it is added: the modulus with its
// Montgomery constants and the fixed part of the PKCS#1 v1.5 encoding
// (filippo.io/bigmod, the standalone form of the arithmetic crypto/rsa uses
// internally). crypto/rsa.VerifyPKCS1v15 recomputes the modulus's constants
// on every call; the prepared key saves that, about 30% of an RSA-2048
// verification, and allocates nothing. It accepts exactly the signatures
// crypto/rsa accepts: differential tests and the fuzz target
// FuzzPreparedVerify compare the two over keys of 2048 to 4096 bits and
// exponents from 3 to 2³¹-1. A key crypto/rsa would refuse to verify with
// (even modulus or exponent, exponent under 3 or over 2³¹-1) is refused by
// [KeyRing.Add]. A ring made with [NewKeyRingVerifying] calls its
// [VerifyFunc] instead, for example [VerifyRSA] (crypto/rsa) wrapped to
// count the RSA operations.
//
// # Errors
//
// Every failure wraps exactly one of the sentinel errors, to be matched with
// [errors.Is]; [Reason] turns an error into a bounded metric label. Error
// messages never contain the signature value, key material or message bodies.
//
// # Request-Time
//
// [ParseRequestTime] understands every format DWS, its sibling gateways and
// Alipay's SDKs have been seen to send (epoch seconds, milliseconds,
// microseconds and nanoseconds, told apart by their 10, 13, 16 or 19
// digits, and ISO 8601 with a zone); it is only used for the freshness check
// ([CheckFreshness]) — the signed content always uses the header verbatim.
//
// # Signing acknowledgements
//
// [SignatureHeader] signs one content. [Signer] caches: PKCS#1 v1.5
// signatures are deterministic and, within one Response-Time second, every
// acknowledgement with the same URI, client and body has the same content,
// so each distinct content is signed once and the header is shared.
package signature
