package dwshttp

import (
	"errors"
	"fmt"
	"net/http"
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
