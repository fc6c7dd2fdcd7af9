package caddymodule

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// Over HTTP/2 (h2c; TLS h2 takes the same stream code in Go's server) and
// HTTP/3 (Caddy's QUIC listener) body_timeout holds per stream: a body
// that stalls or trickles is answered U after body_timeout and nothing is
// forwarded, while a slow body sent on the same connection during the
// stall arrives in time and is served. The read deadline reaches the
// stream through http.ResponseController, as on HTTP/1.1.
func TestSlowBodyIsCutOffOverHTTP2And3(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       gatewayConfig
		url       string
		transport func() http.RoundTripper
		major     int
	}{
		{
			name: "HTTP/2 (h2c)",
			cfg:  gatewayConfig{globals: "servers {\n\t\tprotocols h1 h2c\n\t}"},
			url:  "http://127.0.0.1:9080",
			transport: func() http.RoundTripper {
				var p http.Protocols
				p.SetUnencryptedHTTP2(true)
				return &http.Transport{Protocols: &p}
			},
			major: 2,
		},
		{
			name: "HTTP/3",
			cfg:  gatewayConfig{globals: "local_certs\n\tservers {\n\t\tprotocols h3\n\t}", site: "https://localhost:9443"},
			url:  "https://localhost:9443",
			transport: func() http.RoundTripper {
				// The site's certificate comes from Caddy's internal CA,
				// which the test does not install.
				return &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}
			},
			major: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			tc.cfg.extra = "body_timeout 1s\n\t\tmax_body_size 16MiB"
			g := startGateway(t, b, tc.cfg)
			tr := tc.transport()
			if c, ok := tr.(io.Closer); ok {
				defer c.Close()
			}
			client := &http.Client{Transport: tr, Timeout: 20 * time.Second}

			// send posts notification id with ContentLength announce (0:
			// the body's own) and its body in pieces, pace apart, from a
			// pipe; it returns the answer, when it came, and whether the
			// request went on a connection already open (HTTP/2 reports
			// it through httptrace; HTTP/3 does not, and says true).
			send := func(t *testing.T, id string, announce int, pace time.Duration, pieces int) (answer, time.Duration, bool) {
				t.Helper()
				raw, body := signedRaw(t, g, id, "", false, "")
				parsed, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
				if err != nil {
					t.Error(err)
					return answer{}, 0, false
				}
				pr, pw := io.Pipe()
				reused := tc.major == 3
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
				})
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, tc.url+addPath, pr)
				if err != nil {
					t.Error(err)
					return answer{}, 0, false
				}
				req.Header = parsed.Header
				req.Host = strings.TrimPrefix(strings.TrimPrefix(tc.url, "http://"), "https://")
				if tc.major == 2 {
					req.Host = parsed.Host // the HTTP site's name
				}
				req.ContentLength = int64(len(body))
				if announce > 0 {
					req.ContentLength = int64(announce)
				}
				stop := make(chan struct{})
				go func() {
					defer pw.Close()
					step := (len(body) + pieces - 1) / pieces
					for i := 0; i < len(body); i += step {
						if _, err := pw.Write(body[i:min(i+step, len(body))]); err != nil {
							return
						}
						select {
						case <-stop:
							return
						case <-time.After(pace):
						}
					}
					if announce > len(body) {
						<-stop // a stall: the rest never comes
					}
				}()
				defer close(stop)
				start := time.Now()
				res, err := client.Do(req)
				if err != nil {
					t.Errorf("%s: %v", id, err)
					return answer{}, 0, false
				}
				defer res.Body.Close()
				if res.ProtoMajor != tc.major {
					t.Errorf("%s: answered over %s, want HTTP/%d", id, res.Proto, tc.major)
				}
				a, err := readAnswer(res)
				if err != nil {
					t.Errorf("%s: %v (status %s, after %s)", id, err, res.Status, time.Since(start))
				}
				return a, time.Since(start), reused
			}

			if tc.major == 3 {
				// Caddy's local CA issues the site's certificate in the
				// background at the first start on a machine: wait until
				// a handshake succeeds (a GET, which dws_notify answers
				// itself and never forwards).
				ready := false
				for i := 0; i < 100 && !ready; i++ {
					req, _ := http.NewRequest(http.MethodGet, tc.url+addPath, nil)
					if res, err := client.Do(req); err == nil {
						res.Body.Close()
						ready = true
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if !ready {
					t.Fatal("no HTTP/3 handshake with the site within 10 s")
				}
			}

			// A stall (16 MiB announced, the notification's bytes sent,
			// then nothing) and, on the same connection while it waits, a
			// slow body that arrives in time: the deadline is the stall's
			// stream's, the other stream is served.
			stalled := make(chan struct{})
			var stall answer
			var stallTook time.Duration
			go func() {
				defer close(stalled)
				stall, stallTook, _ = send(t, "stall", 16<<20, 10*time.Millisecond, 3)
			}()
			time.Sleep(200 * time.Millisecond)
			a, _, reused := send(t, "in-time", 0, 100*time.Millisecond, 3)
			a.expect(t, http.StatusOK, "S", "SUCCESS")
			if !reused {
				t.Error("the in-time notification did not share the stalled one's connection")
			}
			<-stalled
			stall.expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
			t.Logf("stalled body answered U after %s", stallTook)
			if stallTook < 900*time.Millisecond || stallTook > 6*time.Second {
				t.Errorf("stalled body answered after %s, body_timeout is 1s", stallTook)
			}
			// A trickle: a piece every 150 ms, about 15 s for the whole.
			a, took, _ := send(t, "trickle", 0, 150*time.Millisecond, 100)
			a.expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
			t.Logf("trickled body answered U after %s", took)
			if took < 900*time.Millisecond || took > 6*time.Second {
				t.Errorf("trickled body answered after %s, body_timeout is 1s", took)
			}
			if hits := b.hits(); len(hits) != 1 || hits[0].header.Get("X-Dws-Request-Id") != "in-time" {
				t.Fatalf("backend got %d requests, want only in-time", len(hits))
			}
		})
	}
}
