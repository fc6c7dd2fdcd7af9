package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// exampleRequireEnv makes TestExampleWalkthrough fail instead of skip when
// the fixed ports of Caddyfile.example are taken (CI sets it).
const exampleRequireEnv = "DWS_REQUIRE_EXAMPLE"

// The addresses Caddyfile.example listens on, as a newcomer runs it.
var examplePorts = []string{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:2019"}

// repoRoot is the repository root (the e2e package's parent directory).
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// walkthroughCommands returns the commands of the README's walkthrough
// section, in order: `./caddy dws-notify ...` as its arguments after
// `./caddy`, `./examples/send-sample.sh ...` whole (continuation lines
// joined, comments dropped).
func walkthroughCommands(t testing.TB, readme string) [][]string {
	t.Helper()
	f, err := os.Open(readme)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		cmds     [][]string
		inWalk   bool
		inSh     bool
		pending  string
		scanner  = bufio.NewScanner(f)
		sectionH = regexp.MustCompile(`^## `)
	)
	for scanner.Scan() {
		line := scanner.Text()
		if sectionH.MatchString(line) {
			inWalk = strings.HasPrefix(line, "## Walkthrough")
			continue
		}
		if !inWalk {
			continue
		}
		if strings.HasPrefix(line, "```") {
			inSh = !inSh && strings.TrimSpace(line) == "```sh"
			continue
		}
		if !inSh {
			continue
		}
		trimmed := strings.TrimSpace(line)
		if pending == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			pending += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		full := pending + trimmed
		pending = ""
		fields := strings.Fields(full)
		switch {
		case len(fields) >= 2 && fields[0] == "./caddy" && fields[1] == "dws-notify":
			cmds = append(cmds, fields[1:])
		case fields[0] == "./examples/send-sample.sh":
			cmds = append(cmds, fields)
		default:
			t.Fatalf("README walkthrough has a command this test does not know how to run: %q", full)
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return cmds
}

// flagValue returns the value of --name in args ("" when absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// TestExampleWalkthrough runs what a newcomer runs, unchanged: `caddy adapt`
// and `caddy run` on Caddyfile.example from the repository root, then every
// `./caddy dws-notify` command of the README's walkthrough in order (send,
// inspect, the refused key, keygen, examples/send-sample.sh with openssl
// and curl). Every send with the demo DWS key gets S with a verified answer
// signature, the resend is replayed, the stand-in backend received each
// notification exactly once with the X-Dws-* headers, and the refused one
// reached nothing and left no record.
func TestExampleWalkthrough(t *testing.T) {
	bin := caddyBin(t)
	root := repoRoot(t)
	sb := newSandbox(t)

	runIn := func(dir, prog string, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, prog, args...)
		cmd.Env = sb.env()
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	run := func(args ...string) (string, error) { return runIn(root, bin, args...) }

	// 1. The example adapts without warnings.
	out, err := run("adapt", "--config", "Caddyfile.example")
	if err != nil {
		t.Fatalf("caddy adapt --config Caddyfile.example: %v\n%s", err, out)
	}
	if strings.Contains(strings.ToLower(out), "warn") {
		t.Fatalf("caddy adapt --config Caddyfile.example printed a warning:\n%s", out)
	}
	t.Logf("caddy adapt --config Caddyfile.example: %d bytes of JSON, no warnings", len(out))

	// 2. The README's first command's second half, from the repository root.
	for _, addr := range examplePorts {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			msg := fmt.Sprintf("Caddyfile.example needs %s, which is taken here: %v", addr, err)
			if os.Getenv(exampleRequireEnv) != "" {
				t.Fatal(msg)
			}
			t.Skip("skipping: " + msg + " (set " + exampleRequireEnv + "=1 to fail instead)")
		}
		l.Close()
	}
	proc := &caddyProc{t: t, AdminAddr: "localhost:2019", output: new(lockedBuffer), exited: make(chan struct{})}
	proc.cmd = exec.Command(bin, "run", "--config", "Caddyfile.example")
	proc.cmd.Env = sb.env()
	proc.cmd.Dir = root
	proc.cmd.Stdout = proc.output
	proc.cmd.Stderr = proc.output
	if err := proc.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		proc.waitErr = proc.cmd.Wait()
		close(proc.exited)
	}()
	t.Cleanup(func() {
		if err := proc.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", proc.Output())
		}
	})
	proc.waitReady("http://localhost:2019/config/", "http://127.0.0.1:8081/", "http://127.0.0.1:8080/")

	// backendSaw counts the stand-in backend's access-log lines for a
	// requestId: only requests the gateway forwarded carry X-Dws-Request-Id.
	backendSaw := func(requestID string) int {
		n := 0
		for _, line := range strings.Split(proc.Output(), "\n") {
			if strings.Contains(line, "X-Dws-Request-Id") && strings.Contains(line, requestID) {
				n++
			}
		}
		return n
	}

	// 3. The walkthrough's commands, as written in the README.
	cmds := walkthroughCommands(t, filepath.Join(root, "README.md"))
	var sends, inspects, refused, keygens, scripts int
	sent := map[string]bool{}
	for _, args := range cmds {
		if args[0] == "./examples/send-sample.sh" {
			// The openssl + curl alternative, as the README runs it
			// (the relative path is resolved in the repository root).
			out, err := runIn(root, args[0], args[1:]...)
			if err != nil || !strings.Contains(out, `"resultStatus":"S"`) || !strings.Contains(out, "answer signature: verified") {
				t.Fatalf("%v: want S with a verified answer signature (err %v):\n%s", args, err, out)
			}
			// What it prints is what the README shows: no path of this
			// machine in it.
			if strings.Contains(out, root) {
				t.Errorf("%v prints a machine-specific path (%s):\n%s", args, root, out)
			}
			if len(args) > 2 {
				sent[args[2]] = true
			}
			scripts++
			continue
		}
		switch args[1] {
		case "keygen":
			// Run where it cannot touch the repository: --out is relative.
			out, err := runIn(sb.Dir, bin, args...)
			if err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
			dir, name := filepath.Join(sb.Dir, flagValue(args, "out")), flagValue(args, "name")
			for _, f := range []string{name + "_private.pem", name + "_public.pem", name + "_public.b64"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Fatalf("%v did not write %s: %v\n%s", args, f, err, out)
				}
			}
			keygens++
		case "send":
			key := flagValue(args, "key")
			rid := flagValue(args, "request-id")
			if rid == "" {
				rid = map[string]string{"addPaymentMethod": sampleRequestID, "removePaymentMethod": "2015032412007101547201355678"}[flagValue(args, "sample")]
			}
			out, err := run(args...)
			if strings.Contains(key, "merchant_private") { // a key the gateway does not have for DWS
				if err != nil || !strings.Contains(out, `"resultCode":"INVALID_SIGNATURE"`) {
					t.Fatalf("%v: want INVALID_SIGNATURE (err %v):\n%s", args, err, out)
				}
				if n := backendSaw(rid); n != 0 {
					t.Fatalf("%v: refused notification %s reached the backend %d times", args, rid, n)
				}
				refused++
				continue
			}
			if err != nil || !strings.Contains(out, "HTTP 200") || !strings.Contains(out, `"resultStatus":"S"`) {
				t.Fatalf("%v: want HTTP 200 and S (err %v):\n%s", args, err, out)
			}
			if flagValue(args, "verify-key") != "" && !strings.Contains(out, "answer signature: verified") {
				t.Fatalf("%v: answer signature not verified:\n%s", args, out)
			}
			sent[rid] = true
			sends++
			if rid == sampleRequestID {
				// "Send it again (the same command)": replayed from the store.
				again, err := run(args...)
				if err != nil || !strings.Contains(again, `"resultStatus":"S"`) {
					t.Fatalf("resend %v: want S (err %v):\n%s", args, err, again)
				}
				sends++
			}
		case "inspect":
			rid := flagValue(args, "request-id")
			out, err := run(args...)
			if sent[rid] {
				if err != nil || !regexp.MustCompile(`(?m)^\s*state\s+done\s*$`).MatchString(out) {
					t.Fatalf("%v: want a done record (err %v):\n%s", args, err, out)
				}
			} else {
				if err == nil || !strings.Contains(out, "no record of requestId") {
					t.Fatalf("%v: want a clear no-record error (err %v):\n%s", args, err, out)
				}
			}
			inspects++
		default:
			t.Fatalf("README walkthrough runs `caddy dws-notify %s`, which this test does not check", args[1])
		}
	}
	if sends < 3 || inspects < 2 || refused < 1 || keygens < 1 || scripts < 1 {
		t.Fatalf("README walkthrough has %d sends, %d inspects, %d refused sends, %d keygens, %d send-sample.sh runs; want at least 3, 2, 1, 1 and 1: did the section move?", sends, inspects, refused, keygens, scripts)
	}

	// 4. The backend got every accepted notification exactly once, with the
	// headers the walkthrough promises.
	deadline := time.Now().Add(5 * time.Second)
	for rid := range sent {
		for backendSaw(rid) == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // the access log is written after the answer
		}
		if n := backendSaw(rid); n != 1 {
			t.Errorf("stand-in backend logged requestId %s %d times; want exactly 1", rid, n)
		}
	}
	for _, h := range []string{"X-Dws-Api", "X-Dws-Client-Id", "X-Dws-Key-Version", "X-Dws-Verified"} {
		if !strings.Contains(proc.Output(), h) {
			t.Errorf("the stand-in backend's access log never shows %s", h)
		}
	}
	// The example's access logs drop both Signature headers: no signature
	// value may appear anywhere in Caddy's output.
	if strings.Contains(proc.Output(), "signature=") {
		t.Errorf("a signature value appears in Caddy's output (access log filter?)")
	}
	if strings.Contains(proc.Output(), "panic") {
		t.Errorf("caddy output mentions a panic")
	}
	t.Logf("Caddyfile.example walkthrough: %d README commands (%d sends incl. the resend, %d inspects, %d refused, %d keygen, %d send-sample.sh), %d distinct notifications each received once by the stand-in backend",
		len(cmds), sends, inspects, refused, keygens, scripts, len(sent))
}
