package cli

import (
	"net"
	"path/filepath"
	"testing"
	"time"
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
	_, err := runCLI(t, "inspect", "--request-id", "r1", "--address", addr)
	if want := "no Caddy admin API at " + addr + ": is the gateway running? (connection refused)"; err == nil || err.Error() != want {
		t.Fatalf("inspect: err = %v, want %q", err, want)
	}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	_, err = runCLI(t, "inspect", "--request-id", "r1", "--address", "unix/"+sock)
	if want := "no Caddy admin API at unix/" + sock + ": is the gateway running? (no such file or directory)"; err == nil || err.Error() != want {
		t.Fatalf("inspect on a unix socket: err = %v, want %q", err, want)
	}
	out, err := runCLI(t, "send", "--url", "http://"+addr+addPath, "--client-id", testClientID, "--key", ck.dwsPrivate, "--sample", "addPaymentMethod")
	if want := "nothing is listening at " + addr + ": is the gateway running? (connection refused)"; err == nil || err.Error() != want {
		t.Fatalf("send: err = %v, want %q (output %q)", err, want, out)
	}
}
