package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/notification"
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

// TestExampleWalkthrough runs what a newcomer runs, unchanged: every command
// of the blocks marked `doc-check: run TestExampleWalkthrough` in README.md
// and docs/*.md, in document order, from the repository root. The first is
// `./xcaddy.sh && ./caddy run --config Caddyfile.example` (the binary under
// test is what ./xcaddy.sh built); then `./caddy dws-notify` send, inspect,
// keygen, sign (and the curl line it prints), backup and restore, `./caddy
// reload`, examples/send-sample.sh with openssl and curl, and curl to the
// admin API. Every send with the demo DWS key gets S with a verified answer
// signature, the resend is replayed, the stand-in backend received each
// notification exactly once with the X-Dws-* headers, the refused one
// reached nothing and left no record, the admin API counts every accepted
// notification, and the restored backup holds each of them.
func TestExampleWalkthrough(t *testing.T) {
	bin := caddyBin(t)
	root := repoRoot(t)
	sb := newSandbox(t)
	cmds := docCommandsFor(t, root, "TestExampleWalkthrough")

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

	// 1. The first command builds and starts the gateway: its config file.
	var config string
	for part := range strings.SplitSeq(cmds[0].Cmd, "&&") {
		words := strings.Fields(part)
		switch {
		case len(words) == 1 && words[0] == "./xcaddy.sh":
			// DWS_CADDY_BIN is what it built (CI runs it before this test).
		case len(words) >= 2 && words[0] == "./caddy" && words[1] == "run":
			config = flagValue(words, "config")
		default:
			t.Fatalf("%s: the walkthrough must start with `./xcaddy.sh && ./caddy run --config <file>`, not %q", cmds[0].Block, cmds[0].Cmd)
		}
	}
	if config == "" {
		t.Fatalf("%s: `%s` starts no gateway", cmds[0].Block, cmds[0].Cmd)
	}

	// The example adapts without warnings.
	out, err := run("adapt", "--config", config)
	if err != nil {
		t.Fatalf("caddy adapt --config %s: %v\n%s", config, err, out)
	}
	if strings.Contains(strings.ToLower(out), "warn") {
		t.Fatalf("caddy adapt --config %s printed a warning:\n%s", config, out)
	}
	t.Logf("caddy adapt --config %s: %d bytes of JSON, no warnings", config, len(out))

	for _, addr := range examplePorts {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			msg := fmt.Sprintf("%s needs %s, which is taken here: %v", config, addr, err)
			if os.Getenv(exampleRequireEnv) != "" {
				t.Fatal(msg)
			}
			t.Skip("skipping: " + msg + " (set " + exampleRequireEnv + "=1 to fail instead)")
		}
		l.Close()
	}
	proc := &caddyProc{t: t, AdminAddr: "localhost:2019", output: new(lockedBuffer), exited: make(chan struct{})}
	proc.cmd = exec.Command(bin, "run", "--config", config)
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
	// An Antom notification has no requestId: its key is counted in the
	// lines of X-Dws-Idempotency-Key, which only forwarded requests carry
	// too.
	backendSaw := func(key, api string) int {
		header := "X-Dws-Request-Id"
		if a, ok := notification.Lookup(api); ok && a.Family() == notification.Antom {
			header = "X-Dws-Idempotency-Key"
		}
		n := 0
		for _, line := range strings.Split(proc.Output(), "\n") {
			if strings.Contains(line, header) && strings.Contains(line, key) {
				n++
			}
		}
		return n
	}

	// 2. The other commands, as written.
	sent := map[string]string{} // store key (a DWS requestId) -> API, of every accepted notification
	counts := map[string]int{}
	restored := ""
	for _, c := range cmds[1:] {
		args, err := shellWords(c.Cmd)
		if err != nil {
			t.Fatalf("%s: %v", c.Block, err)
		}
		fail := func(format string, a ...any) {
			t.Helper()
			t.Fatalf("%s: `%s`: %s", c.Block, c.Cmd, fmt.Sprintf(format, a...))
		}
		if args[0] == "./examples/send-sample.sh" {
			// The openssl + curl alternative, run from the repository root.
			out, err := runIn(root, args[0], args[1:]...)
			if err != nil || !strings.Contains(out, `"resultStatus":"S"`) || !strings.Contains(out, "answer signature: verified") {
				fail("want S with a verified answer signature (err %v):\n%s", err, out)
			}
			// What it prints is what the README shows: no path of this
			// machine in it.
			if strings.Contains(out, root) {
				t.Errorf("%v prints a machine-specific path (%s):\n%s", args, root, out)
			}
			if len(args) > 2 {
				sent[sampleKey(t, root, args[1], args[2])] = args[1]
			}
			counts["send-sample.sh"]++
			if a, ok := notification.Lookup(args[1]); ok && a.Family() == notification.Antom {
				counts["send-sample.sh antom"]++
			}
			continue
		}
		if args[0] == "curl" {
			out, err := runIn(root, "curl", args[1:]...)
			if err != nil {
				fail("%v\n%s", err, out)
			}
			checkAdminAnswer(t, c, args[len(args)-1], out, len(sent))
			counts["curl"]++
			continue
		}
		if args[0] != "./caddy" || len(args) < 2 {
			fail("a command this test does not know how to run")
		}
		args = args[1:]
		switch {
		case args[0] == "reload":
			if out, err := run(args...); err != nil {
				fail("%v\n%s", err, out)
			}
			counts["reload"]++
		case args[0] != "dws-notify" || len(args) < 2:
			fail("a command this test does not know how to run")
		case args[1] == "keygen":
			// Run where it cannot touch the repository: --out is relative.
			out, err := runIn(sb.Dir, bin, args...)
			if err != nil {
				fail("%v\n%s", err, out)
			}
			dir, name := filepath.Join(sb.Dir, flagValue(args, "out")), flagValue(args, "name")
			for _, f := range []string{name + "_private.pem", name + "_public.pem", name + "_public.b64"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					fail("did not write %s: %v\n%s", f, err, out)
				}
			}
			counts["keygen"]++
		case args[1] == "send":
			key := flagValue(args, "key")
			api := flagValue(args, "sample")
			rid := flagValue(args, "request-id")
			if rid == "" {
				rid = map[string]string{"addPaymentMethod": sampleRequestID, "removePaymentMethod": "2015032412007101547201355678"}[api]
			}
			out, err := run(args...)
			if strings.Contains(key, "merchant_private") { // a key the gateway does not have for DWS
				if err != nil || !strings.Contains(out, `"resultCode":"INVALID_SIGNATURE"`) {
					fail("want INVALID_SIGNATURE (err %v):\n%s", err, out)
				}
				if n := backendSaw(rid, api); n != 0 {
					fail("refused notification %s reached the backend %d times", rid, n)
				}
				counts["refused"]++
				continue
			}
			if err != nil || !strings.Contains(out, "HTTP 200") || !strings.Contains(out, `"resultStatus":"S"`) {
				fail("want HTTP 200 and S (err %v):\n%s", err, out)
			}
			if flagValue(args, "verify-key") != "" && !strings.Contains(out, "answer signature: verified") {
				fail("answer signature not verified:\n%s", out)
			}
			sent[rid] = api
			counts["send"]++
			if rid == sampleRequestID {
				// "Send it again (the same command)": replayed from the store.
				again, err := run(args...)
				if err != nil || !strings.Contains(again, `"resultStatus":"S"`) {
					fail("resend: want S (err %v):\n%s", err, again)
				}
				counts["send"]++
			}
		case args[1] == "inspect":
			rid := flagValue(args, "request-id")
			out, err := run(args...)
			if _, ok := sent[rid]; ok {
				if err != nil || !regexp.MustCompile(`(?m)^\s*state\s+done\s*$`).MatchString(out) {
					fail("want a done record (err %v):\n%s", err, out)
				}
			} else {
				checkNoRecordError(t, root, rid, out, err, fail)
			}
			counts["inspect"]++
		case args[1] == "sign":
			out, err := run(args...)
			if err != nil || !strings.Contains(out, "Signature: algorithm=RSA256,keyVersion=") {
				fail("want the DWS headers (err %v):\n%s", err, out)
			}
			// The curl line it prints, pasted into a shell as it is.
			i := strings.Index(out, "\ncurl ")
			if i < 0 {
				fail("prints no curl line:\n%s", out)
			}
			answer, err := runIn(root, "bash", "-c", out[i+1:])
			if err != nil || !strings.Contains(answer, `"resultStatus":"S"`) {
				fail("its curl line: want S (err %v):\n%s\n%s", err, out[i+1:], answer)
			}
			body, err := os.ReadFile(filepath.Join(root, args[len(args)-1]))
			if err != nil {
				fail("%v", err)
			}
			var n struct{ RequestID string }
			if err := json.Unmarshal(body, &n); err != nil || n.RequestID == "" {
				fail("the body has no requestId (%v)", err)
			}
			sent[n.RequestID] = path.Base(flagValue(args, "uri"))
			counts["sign"]++
		case args[1] == "backup":
			out, err := runIn(sb.Dir, bin, args...)
			file := filepath.Join(sb.Dir, flagValue(args, "out"))
			if fi, serr := os.Stat(file); err != nil || serr != nil || fi.Size() == 0 {
				fail("want a backup in %s (err %v, %v):\n%s", file, err, serr, out)
			}
			counts["backup"]++
		case args[1] == "restore":
			out, err := runIn(sb.Dir, bin, args...)
			if err != nil || !strings.Contains(out, "restored ") {
				fail("%v\n%s", err, out)
			}
			restored = filepath.Join(sb.Dir, flagValue(args, "storage"))
			counts["restore"]++
		default:
			fail("runs `caddy dws-notify %s`, which this test does not check", args[1])
		}
	}
	for kind, least := range map[string]int{"send": 3, "inspect": 2, "refused": 1, "keygen": 1, "send-sample.sh": 2, "send-sample.sh antom": 1,
		"sign": 1, "backup": 1, "restore": 1, "reload": 1, "curl": 2} {
		if counts[kind] < least {
			t.Errorf("the documents' walkthrough commands include %d of kind %s; want at least %d: did a marked block move or lose its marker?", counts[kind], kind, least)
		}
	}

	// 3. The backend got every accepted notification exactly once, with the
	// headers the walkthrough promises.
	deadline := time.Now().Add(5 * time.Second)
	for rid, api := range sent {
		for backendSaw(rid, api) == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // the access log is written after the answer
		}
		if n := backendSaw(rid, api); n != 1 {
			t.Errorf("stand-in backend logged %s %s %d times; want exactly 1", api, rid, n)
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

	// 4. The restored backup holds every accepted notification, done.
	if restored != "" {
		st, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: restored})
		if err != nil {
			t.Fatalf("opening the restored store %s: %v", restored, err)
		}
		defer st.Close()
		for rid, api := range sent {
			rec, ok, err := st.Get(context.Background(), idempotency.Key{ClientID: exampleClientID, API: api, RequestID: rid})
			if err != nil || !ok || rec.State != idempotency.StateDone || rec.Answer.Outcome != idempotency.OutcomeAccepted {
				t.Errorf("the restored store's record of %s %s: %+v, found %v, err %v; want done and accepted", api, rid, rec, ok, err)
			}
		}
	}
	t.Logf("walkthrough of README.md and docs/: %d commands %v, %d distinct notifications each received once by the stand-in backend and restored from the backup",
		len(cmds), counts, len(sent))
}

// sampleKey is the key the gateway stores for examples/send-sample.sh
// api id: for DWS the requestId id, for Antom the key of examples/<api>.json
// with its first key field set to id, as the script sets it.
func sampleKey(t *testing.T, root, api, id string) string {
	t.Helper()
	a, ok := notification.Lookup(api)
	if !ok {
		t.Fatalf("send-sample.sh %s: not an API of the catalog", api)
	}
	if a.Family() == notification.DWS {
		return id
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", api+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[a.KeyFields()[0]] = id
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	res, err := a.Validate(b, notification.Options{})
	if err != nil {
		t.Fatalf("examples/%s.json with %s: %v", api, id, err)
	}
	return res.Key
}

// exampleClientID is Caddyfile.example's Client-Id.
const exampleClientID = "2188120000000000"

// checkAdminAnswer checks what a walkthrough curl to the admin API printed:
// stats count every accepted notification of the walkthrough, the
// follow-up list is empty (the stand-in backend accepts everything) and
// honours its limit.
func checkAdminAnswer(t *testing.T, c docCommand, target, out string, accepted int) {
	t.Helper()
	u, err := url.Parse("http://" + strings.TrimPrefix(target, "http://"))
	if err != nil {
		t.Fatalf("%s: %v", c.Block, err)
	}
	switch u.Path {
	case "/dws_notify/stats":
		var stats struct {
			Stores []json.RawMessage `json:"stores"`
			Total  struct {
				InFlight int `json:"in_flight"`
				Accepted int `json:"accepted"`
				Total    int `json:"total"`
			} `json:"total"`
			Errors []json.RawMessage `json:"errors"`
		}
		if err := json.Unmarshal([]byte(out), &stats); err != nil {
			t.Fatalf("%s: stats: %v\n%s", c.Block, err, out)
		}
		if stats.Total.Accepted != accepted || stats.Total.Total != accepted || stats.Total.InFlight != 0 ||
			len(stats.Stores) != 1 || len(stats.Errors) != 0 {
			t.Fatalf("%s: stats %+v over %d stores, %d errors; want %d accepted, nothing in flight, one store, no errors:\n%s",
				c.Block, stats.Total, len(stats.Stores), len(stats.Errors), accepted, out)
		}
		// The answer the doc shows after the command is the one a reader
		// who followed the walkthrough gets.
		shown := nextDocBlock(t, c.Block)
		var doc struct {
			Total struct {
				Accepted int `json:"accepted"`
				Total    int `json:"total"`
			} `json:"total"`
		}
		if err := json.Unmarshal([]byte(shown.Text), &doc); err != nil || shown.Lang != "json" {
			t.Fatalf("%s: the block after the stats command is no JSON answer (%v)", shown, err)
		}
		if doc.Total.Accepted != accepted || doc.Total.Total != accepted {
			t.Errorf("%s shows %d accepted (total %d); the walkthrough up to there gives %d", shown, doc.Total.Accepted, doc.Total.Total, accepted)
		}
	case "/dws_notify/follow_up":
		var fu struct {
			Records []json.RawMessage `json:"records"`
			Total   int               `json:"total"`
			Limit   int               `json:"limit"`
			Errors  []json.RawMessage `json:"errors"`
		}
		if err := json.Unmarshal([]byte(out), &fu); err != nil {
			t.Fatalf("%s: follow_up: %v\n%s", c.Block, err, out)
		}
		want, _ := strconv.Atoi(u.Query().Get("limit"))
		if len(fu.Records) != 0 || fu.Total != 0 || fu.Limit != want || len(fu.Errors) != 0 {
			t.Fatalf("%s: follow_up %+v; want no records (the stand-in backend accepts all) and limit %d:\n%s", c.Block, fu, want, out)
		}
	default:
		t.Fatalf("%s: curl to %s, which this test does not check", c.Block, target)
	}
}

// nextDocBlock returns the fenced block that follows b in its file.
func nextDocBlock(t *testing.T, b docBlock) docBlock {
	t.Helper()
	blocks := parseDocBlocks(t, repoRoot(t), b.File)
	for i, x := range blocks {
		if x.Line == b.Line && i+1 < len(blocks) {
			return blocks[i+1]
		}
	}
	t.Fatalf("%s: no block follows it", b)
	return docBlock{}
}

// noRecordStore is the store path of a no-record error, which the README
// shows as the demo's (/tmp/dws-demo/...) and the test's sandbox differs.
var noRecordStore = regexp.MustCompile(`( in the store at )[^:]+(: )`)

// checkNoRecordError checks what `inspect` printed for a requestId that
// has no record (err is its exit): one Error line that names the
// requestId, then the reasons (the refused notification's, "refused before
// the store ... see the gateway's log", among them), then, as a sentence
// of its own after them, the note on Antom's composed keys (the example
// serves Antom APIs); and, the store path aside, the line README.md shows
// for this requestId.
func checkNoRecordError(t *testing.T, root, rid, out string, err error, fail func(string, ...any)) {
	t.Helper()
	line := strings.TrimSpace(out)
	if err == nil || strings.Contains(line, "\n") {
		fail("want one error line and exit status 1 (err %v):\n%s", err, out)
	}
	head := `Error: no record of requestId "` + rid + `" in the store at `
	reasons := ": it never arrived, was refused before the store (signature or field checks; see the gateway's log), was released after the backend failed (DWS resends it), or its retention ended"
	r := strings.Index(line, reasons)
	a := strings.Index(line, "An Antom notification is recorded under its composed key")
	if !strings.HasPrefix(line, head) || r < 0 || a < 0 || a != r+len(reasons)+len(". ") {
		fail("want %q, the reasons, then the Antom note as its own sentence:\n%s", head, out)
	}
	readme, rerr := os.ReadFile(filepath.Join(root, "README.md"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	for shown := range strings.Lines(string(readme)) {
		if strings.HasPrefix(shown, head) {
			got, want := noRecordStore.ReplaceAllString(line, "${1}STORE$2"), noRecordStore.ReplaceAllString(strings.TrimSpace(shown), "${1}STORE$2")
			if got != want {
				fail("README.md shows\n%s\nthe binary prints\n%s", want, got)
			}
		}
	}
}
