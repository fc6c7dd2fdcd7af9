package e2e

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/signature"
)

// dwsClient is the one DWS stand-in of the tests: it signs and posts
// notifications to a gateway the way DWS does, signed afresh for every
// attempt (Request-Time = now, epoch milliseconds). Post, Do and
// WaitStatus check answers strictly (one result envelope) for the
// functional tests; Send and runLoad record what came of each attempt
// (answered or not, and how the connection failed) for the load tests.
type dwsClient struct {
	base       string // e.g. http://127.0.0.1:PORT
	clientID   string
	key        *rsa.PrivateKey // Send's key (DWS's, keyVersion 1)
	keyVersion int
	client     *http.Client
}

// newDWS returns a client that opens a new connection for every
// notification, as a notifier sending sporadic callbacks does. Reusing idle
// connections would make tests flaky around reloads and restarts: Caddy
// closes the old server's idle connections after a reload, and a POST sent on
// one that is being closed fails with EOF and is not retried (keepAlive
// makes a client that reuses them). key signs what Send sends; Post takes
// the key to sign with.
func newDWS(base, clientID string, key *rsa.PrivateKey) *dwsClient {
	return &dwsClient{
		base:       base,
		clientID:   clientID,
		key:        key,
		keyVersion: 1,
		client: &http.Client{
			Timeout: loadCallTimeout,
			Transport: &http.Transport{
				Proxy:             nil,
				DisableKeepAlives: true,
				DialContext:       (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			},
		},
	}
}

// loadCallTimeout bounds one exchange: generous, as the load tests run the
// gateway, the backend and the load on two cores.
const loadCallTimeout = 60 * time.Second

// answer is the gateway's reply to one notification.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	Result struct {
		ResultStatus  string `json:"resultStatus"`
		ResultCode    string `json:"resultCode"`
		ResultMsg     string `json:"resultMsg"`
		ResultMessage string `json:"resultMessage"`
	}
}

// Post signs body for uri with key/keyVersion (Request-Time = now, epoch
// milliseconds) and posts it once; extra headers are added after the signed
// ones. A transport error (no HTTP answer) fails the test.
func (d *dwsClient) Post(t testing.TB, uri string, body []byte, key *rsa.PrivateKey, keyVersion int, extra http.Header) *answer {
	t.Helper()
	return d.PostWithResend(t, 1, uri, body, key, keyVersion, extra)
}

// PostWithResend is Post that, like DWS, sends the notification again (signed
// afresh) when an attempt got no HTTP answer at all, up to attempts times.
// Every resend is logged. Use it where Caddy may drop a new connection: a
// stock Caddy v2.11.9 resets or closes about one in a hundred connections
// that arrive while a config reload swaps servers.
func (d *dwsClient) PostWithResend(t testing.TB, attempts int, uri string, body []byte, key *rsa.PrivateKey, keyVersion int, extra http.Header) *answer {
	t.Helper()
	for i := 1; ; i++ {
		requestTime := strconv.FormatInt(time.Now().UnixMilli(), 10)
		sig, err := signature.SignatureHeader(key, keyVersion, uri, d.clientID, requestTime, body)
		if err != nil {
			t.Fatalf("signing: %v", err)
		}
		h := http.Header{}
		h.Set("Client-Id", d.clientID)
		h.Set("Request-Time", requestTime)
		h.Set("Signature", sig)
		h.Set("Content-Type", "application/json; charset=UTF-8")
		for k, vs := range extra {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		a, err := d.send(http.MethodPost, uri, body, h)
		if err == nil {
			return d.decode(t, http.MethodPost, uri, a)
		}
		if i >= attempts {
			t.Fatalf("POST %s: no answer after %d attempt(s): %v", uri, i, err)
		}
		t.Logf("POST %s: attempt %d got no answer (%v); resending", uri, i, err)
		time.Sleep(100 * time.Millisecond)
	}
}

// Do sends one request with exactly the given headers and decodes the
// envelope. It fails the test on a transport error or if the body is not one
// result envelope.
func (d *dwsClient) Do(t testing.TB, method, uri string, body []byte, h http.Header) *answer {
	t.Helper()
	a, err := d.send(method, uri, body, h)
	if err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	return d.decode(t, method, uri, a)
}

// WaitStatus repeats a bodiless request until it is answered with status,
// tolerating transport errors, and fails the test after timeout. After a
// reload it tells when the new configuration is the one answering.
func (d *dwsClient) WaitStatus(t testing.TB, method, uri string, status int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		a, err := d.send(method, uri, nil, http.Header{})
		if err == nil && a.Status == status {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("%s %s: no HTTP %d within %s: last attempt: %v", method, uri, status, timeout, err)
			}
			t.Fatalf("%s %s: no HTTP %d within %s: last answer HTTP %d %q", method, uri, status, timeout, a.Status, a.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send makes one HTTP exchange; an error means no complete HTTP answer.
func (d *dwsClient) send(method, uri string, body []byte, h http.Header) (*answer, error) {
	req, err := http.NewRequest(method, d.base+uri, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = h
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	a := &answer{Status: resp.StatusCode, Header: resp.Header}
	if a.Body, err = io.ReadAll(resp.Body); err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return a, nil
}

// decode parses a's body as exactly one result envelope, failing the test
// otherwise.
func (d *dwsClient) decode(t testing.TB, method, uri string, a *answer) *answer {
	t.Helper()
	var env struct {
		Result *json.RawMessage `json:"result"`
	}
	dec := json.NewDecoder(bytes.NewReader(a.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Result == nil {
		t.Fatalf("%s %s: HTTP %d, answer is not a result envelope (%v): %q", method, uri, a.Status, err, a.Body)
	}
	dec = json.NewDecoder(bytes.NewReader(*env.Result))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a.Result); err != nil {
		t.Fatalf("%s %s: HTTP %d, bad result object (%v): %q", method, uri, a.Status, err, a.Body)
	}
	return a
}

// attempt is one POST of a notification and what came of it.
type attempt struct {
	ID          string
	RequestTime string
	Start, End  time.Time
	Answered    bool   // a complete HTTP answer arrived
	Status      int    // its HTTP status
	Result      string // resultStatus: S, U or F
	Code        string // resultCode
	Err         error  // why there was no answer
	// For attempts without an answer: where the connection failed.
	Kind   string // "refused", "reset", "eof", "closed idle", "timeout", "other"
	Wrote  bool   // the whole request had been written
	Reused bool   // sent on a kept-alive connection
	// Gateway is the fleet gateway it went to, for tests that set it.
	Gateway int
}

// String describes an attempt without any body or signature.
func (a attempt) String() string {
	if a.Answered {
		return fmt.Sprintf("%s: HTTP %d %s %s", a.ID, a.Status, a.Result, a.Code)
	}
	return fmt.Sprintf("%s: no answer (%s, request written: %v, reused connection: %v): %v", a.ID, a.Kind, a.Wrote, a.Reused, a.Err)
}

// keepAlive returns a client like c that keeps connections open between
// notifications (up to conns idle ones).
func (c *dwsClient) keepAlive(conns int) *dwsClient {
	k := *c
	k.client = &http.Client{
		Timeout: loadCallTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: conns,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		},
	}
	return &k
}

// Send posts n to the addPaymentMethod path once.
func (c *dwsClient) Send(t testing.TB, n notif) attempt {
	return c.Prepare(t, n).Do(t)
}

// prepared is a signed notification ready to be posted.
type prepared struct {
	c    *dwsClient
	n    notif
	time string
	sig  string
}

// Prepare signs n (Request-Time = now) without sending it.
func (c *dwsClient) Prepare(t testing.TB, n notif) prepared {
	p := prepared{c: c, n: n, time: strconv.FormatInt(time.Now().UnixMilli(), 10)}
	sig, err := signature.SignatureHeader(c.key, c.keyVersion, addURI, c.clientID, p.time, n.Body)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	p.sig = sig
	return p
}

// Do posts the prepared notification once.
func (p prepared) Do(t testing.TB) attempt {
	c, n := p.c, p.n
	a := attempt{ID: n.ID, RequestTime: p.time}
	req, err := http.NewRequest(http.MethodPost, c.base+addURI, bytes.NewReader(n.Body))
	if err != nil {
		t.Errorf("request: %v", err)
		a.Err, a.Kind = err, "other"
		return a
	}
	req.Header.Set("Client-Id", c.clientID)
	req.Header.Set("Request-Time", a.RequestTime)
	req.Header.Set("Signature", p.sig)
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	var wrote, reused atomic.Bool
	trace := &httptrace.ClientTrace{
		GotConn:      func(i httptrace.GotConnInfo) { reused.Store(i.Reused) },
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))

	a.Start = time.Now()
	resp, err := c.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	a.End = time.Now()
	if err != nil {
		a.Err, a.Kind, a.Wrote, a.Reused = err, errKind(err), wrote.Load(), reused.Load()
		return a
	}
	a.Answered, a.Status = true, resp.StatusCode
	var env struct {
		Result struct {
			ResultStatus string `json:"resultStatus"`
			ResultCode   string `json:"resultCode"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Errorf("%s: HTTP %d, answer is not an envelope (%v)", n.ID, resp.StatusCode, err)
	}
	a.Result, a.Code = env.Result.ResultStatus, env.Result.ResultCode
	return a
}

// errKind classifies a transport error.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "server closed idle connection"):
		// net/http's name for a kept-alive connection that the server
		// closed as the request was being sent on it.
		return "closed idle"
	}
	return "other"
}

// runLoad sends every notification in items once with conc workers and
// returns the attempts in the order they finished. Before each send it asks
// keepGoing; once that says no, the remaining items are not sent.
func (c *dwsClient) runLoad(t testing.TB, items []notif, conc int, keepGoing func() bool, onDone func(attempt)) []attempt {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		attempts []attempt
		wg       sync.WaitGroup
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if keepGoing != nil && !keepGoing() {
					return
				}
				i := int(next.Add(1)) - 1
				if i >= len(items) {
					return
				}
				a := c.Send(t, items[i])
				if onDone != nil {
					onDone(a)
				}
				mu.Lock()
				attempts = append(attempts, a)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return attempts
}
