package dwshttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Recorder is the response writer the next handler gets. It keeps
// the status and size and drops everything else: the backend's headers and
// body never touch the real response. It has its own header map (Caddy's
// ResponseRecorder shares the real one, which would leak backend headers
// such as Content-Length or Set-Cookie onto the envelope), and it is not
// an Unwrap()-able wrapper, so http.ResponseController cannot reach through
// it to flush or hijack the connection to DWS.
type Recorder struct {
	header http.Header
	// Status is the status the backend answered, 0 while it wrote nothing.
	Status int
	// Size is the number of body bytes it wrote.
	Size int64
}

// NewRecorder returns a Recorder with an empty header map.
func NewRecorder() *Recorder {
	return &Recorder{header: make(http.Header)}
}

// Header implements http.ResponseWriter: the backend's own header map.
func (b *Recorder) Header() http.Header { return b.header }

// WriteHeader implements http.ResponseWriter: it keeps the first final
// status.
func (b *Recorder) WriteHeader(code int) {
	if b.Status != 0 || code < 200 { // informational responses are not final
		return
	}
	b.Status = code
}

// Write implements http.ResponseWriter: it counts the bytes and drops them.
func (b *Recorder) Write(p []byte) (int, error) {
	if b.Status == 0 {
		b.WriteHeader(http.StatusOK)
	}
	b.Size += int64(len(p))
	return len(p), nil
}

// Flush is accepted and does nothing: there is nothing to send.
func (b *Recorder) Flush() {}

// CallNext runs next (the next handler's ServeHTTP), turning a panic
// (reverse_proxy aborts a broken upstream stream with
// http.ErrAbortHandler) into an error: nothing was written to DWS yet, so
// the notification can still be answered U.
func CallNext(next func(http.ResponseWriter, *http.Request) error, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok && errors.Is(e, http.ErrAbortHandler) {
				err = errors.New("backend response aborted")
				return
			}
			err = fmt.Errorf("next handler panicked: %v", p)
		}
	}()
	return next(w, r)
}

// ErrNoAnswer is Forward's error when the next handler returned without
// writing a status (no handler after dws_notify), and ErrNoAnswerInTime
// (wrapped with the time allowed) when the forward's time ran out before
// one was written.
var (
	ErrNoAnswer       = errors.New("no handler after dws_notify wrote a response")
	ErrNoAnswerInTime = errors.New("backend did not answer")
)

// Forward runs next (the next handler's ServeHTTP) on r, prepared by
// PrepareForward, within timeout, into a Recorder: nothing of the
// backend's answer gets out. It returns the status the backend wrote (0:
// none) and how long it took. A status written settles the forward even
// when the handler returned after the deadline or with an error: a 2xx
// whose body was still coming when the time ran out, or was cut, means
// the backend took the notification, and sending it again would deliver
// it twice (reverse_proxy writes the status, then aborts the copy of a
// body it cannot finish, http.ErrAbortHandler); err is then nil.
// Otherwise err, worded for the log, wraps the handler's own
// error (a panic turned into one, CallNext), ErrNoAnswerInTime, or is
// ErrNoAnswer. The synchronous forward and the inbox's delivery both use
// it, so the two settle a try, and say why it failed, the same way.
func Forward(next func(http.ResponseWriter, *http.Request) error, r *http.Request, timeout time.Duration) (status int, took time.Duration, err error) {
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	rec := NewRecorder()
	began := time.Now()
	err = CallNext(next, rec, r.WithContext(ctx))
	took = time.Since(began)
	switch {
	case rec.Status != 0:
		return rec.Status, took, nil
	case err != nil:
		return 0, took, fmt.Errorf("backend: %w", err)
	case ctx.Err() != nil:
		return 0, took, fmt.Errorf("%w within %s", ErrNoAnswerInTime, timeout)
	}
	return 0, took, ErrNoAnswer
}
