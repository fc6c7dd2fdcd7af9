package dwshttp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"
)

var (
	// ErrTooLarge is wrapped by ReadBody's error for a body over the
	// limit (answered 413).
	ErrTooLarge = errors.New("body too large")
	// ErrBodyTimeout is wrapped by ReadBody's error for a body that did
	// not arrive by its deadline.
	ErrBodyTimeout = errors.New("the request body did not arrive within body_timeout")
)

// initialBodyBuffer caps the first allocation for a body, whatever
// Content-Length announces: the buffer then grows with the bytes that
// arrive, so memory follows what a sender really sent, not what it
// claims it will send. Notifications are a few KiB: most fit at once.
const initialBodyBuffer = 4 << 10

// BodyLimits bound ReadBody.
type BodyLimits struct {
	// MaxSize is the largest body accepted, in bytes.
	MaxSize int64
	// Deadline is when the whole body must have arrived. Enforced says
	// the connection enforces it (a blocked read then fails at that
	// moment); otherwise it is only checked between reads, with Now,
	// which cuts a trickle but not a stall.
	Deadline time.Time
	Enforced bool
	Now      func() time.Time
	// Timeout is the setting Deadline comes from, for the error.
	Timeout time.Duration
	// Arrived, if set, is called once the whole body has arrived (before
	// it is measured against MaxSize): the caller clears a deadline it set
	// on the connection then.
	Arrived func()
}

// ReadBody reads r's whole body within l. Its error wraps ErrTooLarge for
// a body over l.MaxSize (announced or sent), ErrBodyTimeout for one that
// did not arrive by l.Deadline (an expired connection deadline stays: it
// also ends net/http's drain of the rest of the body after the answer),
// and otherwise the reader's error.
func ReadBody(r *http.Request, l BodyLimits) ([]byte, error) {
	if r.ContentLength > l.MaxSize {
		return nil, ErrTooLarge
	}
	// One byte more than announced, so that the read which finds EOF
	// needs no bigger buffer: a body of the announced length, up to
	// initialBodyBuffer, costs exactly one allocation.
	size := int64(512)
	if r.ContentLength >= 0 {
		size = r.ContentLength + 1
	}
	buf := make([]byte, 0, min(size, initialBodyBuffer))
	lr := io.LimitedReader{R: r.Body, N: l.MaxSize + 1}
	for {
		if len(buf) == cap(buf) {
			// Double, but not past the announced length (plus the byte
			// for EOF): a buffer at most twice what arrived.
			grow := max(cap(buf), 512)
			if r.ContentLength >= 0 {
				grow = max(min(grow, int(r.ContentLength)+1-len(buf)), 1)
			}
			buf = slices.Grow(buf, grow)
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err == nil && !l.Enforced && l.Now().After(l.Deadline) {
			err = os.ErrDeadlineExceeded
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
			case errors.Is(err, os.ErrDeadlineExceeded):
				return nil, fmt.Errorf("%w (%s, %d bytes received): %w", ErrBodyTimeout, l.Timeout, len(buf), err)
			}
			return nil, fmt.Errorf("reading the request body: %w", err)
		}
	}
	if l.Arrived != nil {
		l.Arrived()
	}
	if int64(len(buf)) > l.MaxSize {
		return nil, ErrTooLarge
	}
	return buf, nil
}
