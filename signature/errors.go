package signature

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package for a rejected
// signature or Request-Time wraps exactly one of them.
var (
	// ErrMissing reports an absent or blank Signature header.
	ErrMissing = errors.New("signature: missing")
	// ErrMalformed reports a Signature header that does not follow the
	// grammar: no "=", an empty parameter or value, a duplicate key, no
	// algorithm or signature parameter, or a keyVersion that is not a
	// non-negative decimal integer.
	ErrMalformed = errors.New("signature: malformed header")
	// ErrUnsupportedAlgorithm reports an algorithm other than RSA256.
	ErrUnsupportedAlgorithm = errors.New("signature: unsupported algorithm")
	// ErrUnknownKeyVersion reports a (Client-Id, keyVersion) pair for which
	// no public key is configured.
	ErrUnknownKeyVersion = errors.New("signature: unknown key version")
	// ErrBadEncoding reports a signature value that is not (percent-encoded)
	// standard Base64.
	ErrBadEncoding = errors.New("signature: bad encoding")
	// ErrVerificationFailed reports a signature that does not verify over
	// the content, including one of the wrong length for the key.
	ErrVerificationFailed = errors.New("signature: verification failed")
	// ErrBadRequestTime reports a Request-Time in none of the known formats.
	ErrBadRequestTime = errors.New("signature: bad request time")
	// ErrStale reports a Request-Time outside the configured tolerance.
	ErrStale = errors.New("signature: request time outside tolerance")
)

// detailError carries a specific message while matching its sentinel with
// errors.Is.
type detailError struct {
	kind   error
	detail string
}

func (e *detailError) Error() string { return e.kind.Error() + ": " + e.detail }
func (e *detailError) Unwrap() error { return e.kind }

func newError(kind error, format string, args ...any) error {
	return &detailError{kind: kind, detail: fmt.Sprintf(format, args...)}
}

var reasons = []struct {
	err   error
	label string
}{
	{ErrMissing, "missing"},
	{ErrMalformed, "malformed"},
	{ErrUnsupportedAlgorithm, "unsupported_algorithm"},
	{ErrUnknownKeyVersion, "unknown_key_version"},
	{ErrBadEncoding, "bad_encoding"},
	{ErrVerificationFailed, "verification_failed"},
	{ErrBadRequestTime, "bad_request_time"},
	{ErrStale, "stale"},
}

// Reason returns the bounded metric label for err: "missing", "malformed",
// "unsupported_algorithm", "unknown_key_version", "bad_encoding",
// "verification_failed", "bad_request_time", "stale", or "other" for any
// error that wraps none of the sentinels. It returns "" for a nil error.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "other"
}
