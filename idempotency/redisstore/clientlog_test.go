package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
)

func TestRedact(t *testing.T) {
	if _, err := Check(Options{URL: "redis://:pw-from-check-9f3@127.0.0.1:6379/0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(Options{URL: "redis://user:pw-from-check-9f3-longer@127.0.0.1:6379/0"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{"dial redis://:hunter2@10.0.0.1:6379/0 failed", "dial redis://[redacted]@10.0.0.1:6379/0 failed"},
		{"rediss://dws:p%40ss@host:6380 and unix://u:p@/run/redis.sock", "rediss://[redacted]@host:6380 and unix://[redacted]@/run/redis.sock"},
		{"no URL here: connection refused", "no URL here: connection refused"},
		{"AUTH pw-from-check-9f3 failed", "AUTH [redacted] failed"},
		// The longer password is redacted whole, not as the shorter one
		// plus a tail.
		{"got pw-from-check-9f3-longer", "got [redacted]"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestClientLogRateLimitAndRedaction drives the go-redis logger adapter
// directly: lines go to the logger at WARN, passwords never, and repeats
// of one format are held back for ClientLogEvery and then counted.
func TestClientLogRateLimitAndRedaction(t *testing.T) {
	const password = "adapter-secret-7c1"
	if _, err := Check(Options{URL: "redis://:" + password + "@127.0.0.1:1/0"}); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	now := time.Unix(1000, 0)
	l := &clientLogger{logger: func() *zap.Logger { return zap.New(core) }, seen: map[string]*logKind{}, now: func() time.Time { return now }}
	ctx := context.Background()
	dial := "redis: connection pool: failed to dial after %d attempts: %v"
	l.Printf(ctx, dial, 1, errors.New("dial tcp 127.0.0.1:1: connect: connection refused (password "+password+")"))
	for range 5 {
		now = now.Add(time.Second)
		l.Printf(ctx, dial, 1, errors.New("refused"))
	}
	l.Printf(ctx, "redis: other %s", "redis://:"+password+"@127.0.0.1:1/0")
	now = now.Add(ClientLogEvery)
	l.Printf(ctx, dial, 1, errors.New("refused again"))

	all := logs.All()
	if len(all) != 3 {
		for _, e := range all {
			t.Log(e.Message, e.ContextMap())
		}
		t.Fatalf("%d lines, want 3 (first dial failure, the other line, the dial failure after the pause)", len(all))
	}
	for _, e := range all {
		if e.Level != zapcore.WarnLevel {
			t.Errorf("level %v, want WARN: %s", e.Level, e.Message)
		}
		if strings.Contains(e.Message, password) {
			t.Errorf("line shows the password: %s", e.Message)
		}
		if e.ContextMap()["source"] != "go-redis" {
			t.Errorf("line without source=go-redis: %v", e.ContextMap())
		}
	}
	if !strings.Contains(all[0].Message, "connection refused (password [redacted])") {
		t.Errorf("first line = %q", all[0].Message)
	}
	if all[1].Message != "redis: other redis://[redacted]@127.0.0.1:1/0" {
		t.Errorf("second line = %q", all[1].Message)
	}
	if got := all[2].ContextMap()["repeated"]; got != int64(5) {
		t.Errorf("third line repeated = %v, want 5 (held back since the first)", got)
	}
	if _, ok := all[0].ContextMap()["repeated"]; ok {
		t.Error("first line claims repeats")
	}
}

// TestRouteClientLog: with RouteClientLog, go-redis's own line about a
// failed dial (Redis gone) arrives in zap, at most once per
// ClientLogEvery however many calls fail.
func TestRouteClientLog(t *testing.T) {
	const password = "route-secret-d41"
	srv := redistest.Start(t, redistest.Config{Password: password})
	core, logs := observer.New(zapcore.DebugLevel)
	RouteClientLog(func() *zap.Logger { return zap.New(core) })
	t.Cleanup(logging.Enable) // back to go-redis's default for the other tests

	s, err := Open(t.Context(), Options{URL: srv.URL(0), Prefix: "routelog:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.Kill()
	key := idempotency.Key{ClientID: "c", API: "a", RequestID: "r"}
	for range 20 {
		if _, _, err := s.Get(t.Context(), key); err == nil {
			t.Fatal("Get with Redis gone succeeded")
		}
	}
	dials := logs.FilterMessageSnippet("failed to dial").All()
	if len(dials) != 1 {
		for _, e := range logs.All() {
			t.Log(e.Message)
		}
		t.Fatalf("%d 'failed to dial' lines for 20 failed calls, want 1", len(dials))
	}
	if !strings.Contains(dials[0].Message, srv.Addr()) {
		t.Errorf("line does not name the server: %s", dials[0].Message)
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, password) {
			t.Errorf("line shows the password: %s", e.Message)
		}
	}
}

// TestRedactBounds: a password of fewer than four bytes is taken out of
// URLs only (searching the text for "ab" would mangle lines and show the
// password by what it took out); the passwords no open store uses are
// bounded (maxIdleSecrets), while an open store's password stays until
// the store closes.
func TestRedactBounds(t *testing.T) {
	if _, err := Check(Options{URL: "redis://:ab@127.0.0.1:6379/0"}); err != nil {
		t.Fatal(err)
	}
	if got := Redact("redis://:ab@127.0.0.1:6379/0: tab about"); got != "redis://[redacted]@127.0.0.1:6379/0: tab about" {
		t.Errorf("short password: Redact = %q", got)
	}

	const held = "held-by-an-open-store-1f2"
	srv := redistest.Start(t, redistest.Config{Password: held})
	s, err := Open(t.Context(), Options{URL: srv.URL(0), Prefix: "redactbounds:"})
	if err != nil {
		t.Fatal(err)
	}
	const first = "idle-secret-first-77a"
	if _, err := Check(Options{URL: "redis://:" + first + "@127.0.0.1:6379/0"}); err != nil {
		t.Fatal(err)
	}
	for i := range maxIdleSecrets {
		if _, err := Check(Options{URL: fmt.Sprintf("redis://:idle-secret-%03d@127.0.0.1:6379/0", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := Redact("x " + first); got != "x "+first {
		t.Errorf("the oldest idle password is still redacted after %d newer ones: %q", maxIdleSecrets, got)
	}
	if got := Redact("x " + held + " idle-secret-000"); got != "x [redacted] [redacted]" {
		t.Errorf("Redact = %q, want the open store's and a recent password redacted", got)
	}
	secrets.RLock()
	n := len(secrets.list)
	secrets.RUnlock()
	if n > maxIdleSecrets+1 {
		t.Errorf("%d passwords kept, want at most %d idle ones and the open store's", n, maxIdleSecrets)
	}
	s.Close()
	// Closed, the store's password is the newest idle one: still redacted.
	if got := Redact("x " + held); got != "x [redacted]" {
		t.Errorf("just after Close: Redact = %q", got)
	}
}
