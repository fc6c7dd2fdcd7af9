package signature

import (
	"bytes"
	"encoding/base64"
	"math"
	"strconv"
	"strings"
)

// Algorithm is the only signature algorithm supported, as spelled in the
// Signature header.
const Algorithm = "RSA256"

// MaxKeyVersion is the highest key version: a keyVersion (and a
// Key-Version header) is a decimal integer from 0 to 2147483647, the
// range of a Java int, in which Alipay's SDKs carry it.
const MaxKeyVersion = math.MaxInt32

// MaxSignatureSize is the largest decoded signature accepted, in bytes: the
// signature of a 16384-bit RSA key, the largest Go's crypto/rsa handles.
const MaxSignatureSize = 2048

// maxEncodedLen bounds the signature value before decoding: Base64 of
// MaxSignatureSize bytes with every character percent-encoded.
const maxEncodedLen = 3 * 4 * ((MaxSignatureSize + 2) / 3)

// strictBase64 is standard Base64 that rejects non-canonical trailing bits.
var strictBase64 = base64.StdEncoding.Strict()

// Header is a parsed Signature header.
type Header struct {
	// Algorithm is the algorithm as sent; it always equals RSA256 ignoring
	// case when ParseHeader succeeds.
	Algorithm string
	// KeyVersion is the keyVersion parameter, 0 when absent; or the
	// Key-Version header's, once UseKeyVersionHeader took it.
	KeyVersion int
	// HasKeyVersion reports whether KeyVersion names the key: the
	// keyVersion parameter was present, or UseKeyVersionHeader took one.
	HasKeyVersion bool
	// Signature is the decoded raw signature.
	Signature []byte
}

// ParseHeader parses a Signature header value following the grammar in the
// package documentation and decodes the signature. Errors wrap ErrMissing,
// ErrMalformed, ErrUnsupportedAlgorithm or ErrBadEncoding; when a header has
// several faults, malformation is reported first, then the algorithm, then
// the encoding.
func ParseHeader(v string) (Header, error) {
	return parseHeader(v, nil)
}

// UseKeyVersionHeader applies a notification's Key-Version header value v
// ("" when it has none) to h, as Alipay's SDKs choose the key (SPEC §1.2):
// the Signature's own keyVersion wins; otherwise a Key-Version header
// names the version, and h.HasKeyVersion is then set. A value that is not
// a decimal integer between 0 and MaxKeyVersion is refused with
// ErrMalformed, whichever wins, as long as it would be used.
func (h *Header) UseKeyVersionHeader(v string) error {
	if h.HasKeyVersion || v == "" {
		return nil
	}
	version, ok := parseKeyVersion(v)
	if !ok {
		return newError(ErrMalformed, "Key-Version header is not a decimal integer between 0 and %d", MaxKeyVersion)
	}
	h.KeyVersion, h.HasKeyVersion = version, true
	return nil
}

// ParseHeaderInto is ParseHeader decoding the signature into dst[:0]'s
// spare capacity (a new slice when it is too small: 512 bytes hold the
// signature of an RSA-4096 key), so that a caller that parses the header
// before the body arrives can keep the signature in memory it owns. The
// returned Header's Signature aliases dst when it fits.
func ParseHeaderInto(v string, dst []byte) (Header, error) {
	return parseHeader(v, dst[:0])
}

// parseHeader is ParseHeader decoding the signature into dst's spare
// capacity (or a new slice when it is too small).
func parseHeader(v string, dst []byte) (Header, error) {
	p, err := scanHeader(v)
	if err != nil {
		return Header{}, err
	}
	h := Header{Algorithm: p.algorithm}
	if p.keyVersion != "" {
		n, ok := parseKeyVersion(p.keyVersion)
		if !ok {
			return Header{}, newError(ErrMalformed, "keyVersion is not a decimal integer between 0 and %d", MaxKeyVersion)
		}
		h.KeyVersion, h.HasKeyVersion = n, true
	}
	if !strings.EqualFold(p.algorithm, Algorithm) {
		return Header{}, newError(ErrUnsupportedAlgorithm, "only %s is supported", Algorithm)
	}
	h.Signature, err = decodeSignature(dst, p.signature)
	if err != nil {
		return Header{}, err
	}
	return h, nil
}

// headerParams holds the raw values of the known parameters.
type headerParams struct {
	algorithm, keyVersion, signature string
}

// scanHeader splits the header into parameters and checks the structure.
// keyVersion is "" when absent; the other two are always set on success.
func scanHeader(v string) (headerParams, error) {
	var p headerParams
	v = trimOWS(v)
	if v == "" {
		return p, ErrMissing
	}
	var seenAlg, seenVer, seenSig bool
	for rest, more := v, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		part = trimOWS(part)
		if part == "" {
			return p, newError(ErrMalformed, "empty parameter")
		}
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return p, newError(ErrMalformed, "parameter without '='")
		}
		key, val = trimOWS(key), trimOWS(val)
		var seen *bool
		var dst *string
		var name string
		switch {
		case key == "":
			return p, newError(ErrMalformed, "parameter without a name")
		case strings.EqualFold(key, "algorithm"):
			seen, dst, name = &seenAlg, &p.algorithm, "algorithm"
		case strings.EqualFold(key, "keyVersion"):
			seen, dst, name = &seenVer, &p.keyVersion, "keyVersion"
		case strings.EqualFold(key, "signature"):
			seen, dst, name = &seenSig, &p.signature, "signature"
		default:
			continue // unknown parameter: ignored
		}
		if *seen {
			return p, newError(ErrMalformed, "duplicate %s parameter", name)
		}
		if val == "" {
			return p, newError(ErrMalformed, "empty %s value", name)
		}
		*seen, *dst = true, val
	}
	switch {
	case !seenAlg:
		return p, newError(ErrMalformed, "no algorithm parameter")
	case !seenSig:
		return p, newError(ErrMalformed, "no signature parameter")
	}
	return p, nil
}

// trimOWS removes surrounding spaces and tabs (HTTP's optional whitespace).
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseKeyVersion parses a non-negative decimal integer no larger than
// MaxKeyVersion. The bound is on the value, not on the digits: leading
// zeros are allowed however many there are, and the value is checked after
// each digit, so that it cannot overflow.
func parseKeyVersion(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > MaxKeyVersion {
			return 0, false
		}
	}
	return n, true
}

// decodeSignature percent-decodes s with path semantics and decodes the
// result as strict standard Base64, appending the bytes to dst[:0].
func decodeSignature(dst []byte, s string) ([]byte, error) {
	if len(s) > maxEncodedLen {
		return nil, newError(ErrBadEncoding, "signature value is %d characters, longer than any supported key needs", len(s))
	}
	// Room for the Base64 text of a 4096-bit signature without allocating.
	var textBuf [704]byte
	text := textBuf[:0]
	for rest, off := s, 0; ; {
		i := strings.IndexByte(rest, '%')
		if i < 0 {
			text = append(text, rest...)
			break
		}
		if i+2 >= len(rest) || !isHex(rest[i+1]) || !isHex(rest[i+2]) {
			return nil, newError(ErrBadEncoding, "invalid percent escape at offset %d", off+i)
		}
		text = append(text, rest[:i]...)
		text = append(text, unhex(rest[i+1])<<4|unhex(rest[i+2]))
		rest, off = rest[i+3:], off+i+3
	}
	// Go's Base64 decoder skips CR and LF; the value must not contain them,
	// encoded or not.
	if bytes.IndexByte(text, '\r') >= 0 || bytes.IndexByte(text, '\n') >= 0 {
		return nil, newError(ErrBadEncoding, "line break in signature value")
	}
	n := strictBase64.DecodedLen(len(text))
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	n, err := strictBase64.Decode(dst, text)
	if err != nil {
		if ce, ok := err.(base64.CorruptInputError); ok {
			return nil, newError(ErrBadEncoding, "signature is not standard Base64 (invalid data at byte %d after percent-decoding)", int64(ce))
		}
		return nil, newError(ErrBadEncoding, "signature is not standard Base64")
	}
	if n > MaxSignatureSize {
		return nil, newError(ErrBadEncoding, "signature is %d bytes, longer than any supported key produces", n)
	}
	return dst[:n], nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// AppendHeader appends the Signature header value for sig made with the key
// of the given version, the way DWS sends it:
// algorithm=RSA256,keyVersion=<n>,signature=<value>, the value being
// standard Base64 with "+", "/" and "=" percent-encoded. sig may be at most
// 512 bytes (an RSA-4096 signature) for the encoding to stay on the stack.
func AppendHeader(dst []byte, keyVersion int, sig []byte) []byte {
	dst = append(dst, "algorithm="+Algorithm+",keyVersion="...)
	dst = strconv.AppendInt(dst, int64(keyVersion), 10)
	dst = append(dst, ",signature="...)
	var b64Buf [684]byte
	b64 := base64.StdEncoding.AppendEncode(b64Buf[:0], sig)
	for _, c := range b64 {
		switch c {
		case '+':
			dst = append(dst, "%2B"...)
		case '/':
			dst = append(dst, "%2F"...)
		case '=':
			dst = append(dst, "%3D"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
