package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/dwsnotify/dws_notify/adminapi"
)

func TestRoughDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                    "0s",
		1500 * time.Millisecond:         "2s",
		59 * time.Minute:                "59m0s",
		90*time.Minute + 20*time.Second: "1h30m",
		168 * time.Hour:                 "7d0h",
		167*time.Hour + 59*time.Minute:  "7d0h",
		49*time.Hour + 10*time.Minute:   "2d1h",
	} {
		if got := roughDuration(d); got != want {
			t.Errorf("roughDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestGatewayNotRunning(t *testing.T) {
	ck := writeCLIKeys(t)
	addr := closedPort(t)
	// Every command that asks the admin API gets the same error, which
	// follows from how the address was found.
	commands := [][]string{
		{"inspect", "--request-id", "r1"},
		{"queue"},
		{"queue", "--dead"},
		{"redeliver", "r1"},
		{"redeliver", "--dead"},
		{"backup", "--out", filepath.Join(t.TempDir(), "b.backup")},
	}
	// --address given: nothing answers there, and no other address is
	// suggested.
	for _, args := range commands {
		_, err := runCLI(t, append(args, "--address", addr)...)
		if want := "no Caddy admin API answers at --address " + addr + " (connection refused): is the gateway running, with its admin API there?"; err == nil || err.Error() != want {
			t.Fatalf("%v --address: err = %v, want %q", args, err, want)
		}
	}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	_, err := runCLI(t, "inspect", "--request-id", "r1", "--address", "unix/"+sock)
	if want := "no Caddy admin API answers at --address unix/" + sock + " (no such file or directory): is the gateway running, with its admin API there?"; err == nil || err.Error() != want {
		t.Fatalf("inspect on a unix socket: err = %v, want %q", err, want)
	}
	// --config given: the address is the one read from the file, which
	// the error names with the file.
	caddyfile := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte("{\n\tadmin "+addr+"\n}\n\n:9080 {\n\trespond 200\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range commands {
		_, err := runCLI(t, append(args, "--config", caddyfile)...)
		if want := "no Caddy admin API answers at " + addr + ", the admin address read from --config " + caddyfile + " (connection refused): is the gateway running with that config?"; err == nil || err.Error() != want {
			t.Fatalf("%v --config: err = %v, want %q", args, err, want)
		}
	}
	// --address wins over --config (as for caddy reload), and so does
	// its error.
	_, err = runCLI(t, "queue", "--config", caddyfile, "--address", "unix/"+sock)
	if want := "no Caddy admin API answers at --address unix/" + sock + " (no such file or directory): is the gateway running, with its admin API there?"; err == nil || err.Error() != want {
		t.Fatalf("queue with --config and --address: err = %v, want %q", err, want)
	}
	out, err := runCLI(t, "send", "--url", "http://"+addr+addPath, "--client-id", testClientID, "--key", ck.dwsPrivate, "--sample", "addPaymentMethod")
	if want := "nothing is listening at " + addr + ": is the gateway running? (connection refused)"; err == nil || err.Error() != want {
		t.Fatalf("send: err = %v, want %q (output %q)", err, want, out)
	}
}

// Without --address or --config the address is Caddy's default, and the
// error says how to point the command elsewhere. Nothing may listen on
// the default admin address (inns gives the test a loopback of its own).
func TestGatewayNotRunningDefaultAddress(t *testing.T) {
	if c, err := net.DialTimeout("tcp", caddy.DefaultAdminListen, time.Second); err == nil {
		c.Close()
		t.Fatalf("something listens on %s; run this test where nothing does (/work/bin/inns)", caddy.DefaultAdminListen)
	}
	elsewhere := " If it is, its admin API is elsewhere: pass --config FILE (the Caddyfile whose admin option names it) or --address ADMIN"
	for _, args := range [][]string{
		{"inspect", "--request-id", "r1"},
		{"queue"},
		{"redeliver", "--dead"},
		{"backup", "--out", filepath.Join(t.TempDir(), "b.backup")},
	} {
		_, err := runCLI(t, args...)
		if want := "no Caddy admin API at " + caddy.DefaultAdminListen + ": is the gateway running? (connection refused)" + elsewhere; err == nil || err.Error() != want {
			t.Fatalf("%v: err = %v, want %q", args, err, want)
		}
	}
}

// A record queued at receipt prints its inbox item, state by state, and
// never the record's own "backend HTTP 0".
func TestPrintRecordInboxItem(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 22, 11, 22, 822_000_000, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	rec := adminapi.RecordView{Storage: "/var/lib/caddy/dws_notify", ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "bind-1",
		State: "done", Outcome: "queued", ResultCode: "SUCCESS", ClaimedAt: t0, CompletedAt: at(2 * time.Millisecond), ExpiresAt: at(7 * 24 * time.Hour)}
	for _, c := range []struct {
		name string
		item *adminapi.ItemView
		want []string
	}{
		{"pending, never tried", &adminapi.ItemView{State: "pending", EnqueuedAt: t0, DueAt: t0},
			[]string{"  inbox        queued: waiting for its first try, due " + formatTime(t0) + "\n", "  attempts     0\n"}},
		{"pending after a timeout", &adminapi.ItemView{State: "pending", Attempts: 2, EnqueuedAt: t0, DueAt: at(time.Minute), LastReason: "timeout"},
			[]string{"  inbox        queued: waiting for its next try, due " + formatTime(at(time.Minute)) + "\n",
				"  last try     no answer within forward_timeout (timeout)\n", "  attempts     2\n"}},
		{"leased", &adminapi.ItemView{State: "leased", Attempts: 3, EnqueuedAt: t0, LeaseExpiry: at(time.Hour), LastStatus: 502, LastReason: "status"},
			[]string{"  inbox        leased: being delivered now (lease until " + formatTime(at(time.Hour)) + ")\n", "  last try     HTTP 502\n"}},
		{"delivered", &adminapi.ItemView{State: "delivered", Attempts: 1, EnqueuedAt: t0, LastStatus: 204, FinishedAt: at(time.Second)},
			[]string{"  inbox        delivered: the backend took it (HTTP 204) at " + formatTime(at(time.Second)) + "\n", "  queued at    " + formatTime(t0) + " ("}},
		{"business rejected", &adminapi.ItemView{State: "business_rejected", Attempts: 1, EnqueuedAt: t0, LastStatus: 409, FinishedAt: at(time.Second)},
			[]string{"  inbox        business_rejected: the backend refused it for a business reason (HTTP 409) at "}},
		{"dead, redeliverable", &adminapi.ItemView{State: "dead", Attempts: 9, EnqueuedAt: t0, LastReason: "error", FinishedAt: at(time.Hour), HasPayload: true},
			[]string{"  inbox        dead: no try succeeded within max_age; dead-lettered at " + formatTime(at(time.Hour)) + " (redeliverable (caddy dws-notify redeliver))\n",
				"  last try     no answer: the backend could not be reached or no handler answered (error) at "}},
		{"dead, payload expired", &adminapi.ItemView{State: "dead", Attempts: 9, EnqueuedAt: t0, LastStatus: 500, LastReason: "status", FinishedAt: at(time.Hour)},
			[]string{"(its payload expired, it cannot be redelivered)\n", "  last try     HTTP 500 at "}},
		{"redelivered", &adminapi.ItemView{State: "pending", EnqueuedAt: t0, RedeliveredAt: at(2 * time.Hour), DueAt: at(2 * time.Hour), LastStatus: 503, LastReason: "status"},
			[]string{"  attempts     0 (since its redelivery at " + formatTime(at(2*time.Hour)) + ")\n"}},
		{"no item any more", nil, []string{"  inbox        no item any more (its retention ended)\n"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rec
			r.Inbox = c.item
			var b strings.Builder
			printRecord(&b, r, at(time.Hour))
			out := b.String()
			want := append([]string{"  outcome      queued in the inbox at receipt (acknowledge on_receipt): how the backend took it is the inbox item's\n"}, c.want...)
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "HTTP 0") || (c.item != nil && c.item.Attempts == 0 && strings.Contains(out, "last try")) {
				t.Errorf("prints HTTP 0 or a last try that did not happen:\n%s", out)
			}
		})
	}
}

// A queued record whose inbox item could not be read says so on the inbox
// line, and prints no item lines.
func TestPrintRecordInboxError(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 22, 11, 22, 822_000_000, time.UTC)
	rec := adminapi.RecordView{Storage: "/var/lib/caddy/dws_notify", ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "bind-1",
		State: "done", Outcome: "queued", ResultCode: "SUCCESS", ClaimedAt: t0, CompletedAt: t0,
		InboxError: "reading the dws_notify store at /var/lib/caddy/dws_notify: disk on fire"}
	var b strings.Builder
	printRecord(&b, rec, t0)
	out := b.String()
	if want := "  inbox        could not be read: reading the dws_notify store at /var/lib/caddy/dws_notify: disk on fire\n"; !strings.Contains(out, want) {
		t.Errorf("lacks %q:\n%s", want, out)
	}
	for _, bad := range []string{"no item any more", "attempts", "queued at"} {
		if strings.Contains(out, bad) {
			t.Errorf("prints %q for an item it could not read:\n%s", bad, out)
		}
	}
}
