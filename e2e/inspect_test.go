package e2e

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestInspectInboxStory: one notification acknowledged on receipt,
// followed with the built binary's inspect through its whole life:
// queued while the backend answers 503 (the last try's status),
// dead at max_age (the reason), redelivered, delivered (the status and
// when). The final output has the shape of docs/tooling.md's example, and
// the gateway logged one INFO line for the delivery, without the body.
func TestInspectInboxStory(t *testing.T) {
	e := startRelEnv(t, func(g *relGateway) {
		g.ForwardTimeout = "2s"
		g.Extra = inboxBlockAt(t, filepath.Join(t.TempDir(), "inbox.key"), "max_age 1500ms\nbackoff 100ms 300ms\n")
	})
	e.be.SetStatus(503)
	n := addNotif(t, "story-1")
	if a := e.lc.Send(t, n); a.Result != "S" {
		t.Fatalf("answered %+v, want S at receipt", a)
	}
	inspect := func(t *testing.T) string {
		t.Helper()
		out, err := runCaddy(t, e.bin, e.sb, "dws-notify", "inspect", "--request-id", "story-1", "--address", e.gw.AdminAddr)
		if err != nil {
			t.Fatalf("inspect: %v\n%s", err, out)
		}
		if strings.Contains(out, "HTTP 0") {
			t.Fatalf("inspect prints HTTP 0:\n%s", out)
		}
		return out
	}
	waitOutput := func(t *testing.T, what string, want ...string) string {
		t.Helper()
		var out string
		waitFor(t, 30*time.Second, what, func() bool {
			out = inspect(t)
			for _, w := range want {
				if !strings.Contains(out, w) {
					return false
				}
			}
			return true
		})
		return out
	}
	phase(t, "queued while the backend answers 503", func(t *testing.T) {
		out := waitOutput(t, "a failed try", "last try     HTTP 503\n")
		if !strings.Contains(out, "outcome      queued in the inbox at receipt") ||
			!(strings.Contains(out, "inbox        queued: waiting for its next try") || strings.Contains(out, "inbox        leased: being delivered now")) {
			t.Fatalf("inspect of a queued notification:\n%s", out)
		}
	})
	phase(t, "dead at max_age", func(t *testing.T) {
		waitOutput(t, "the dead letter", "inbox        dead: no try succeeded within max_age; dead-lettered at ", "(redeliverable (caddy dws-notify redeliver))", "last try     HTTP 503 at ")
	})
	var final string
	phase(t, "redelivered, then delivered", func(t *testing.T) {
		e.be.SetStatus(200)
		if out, err := runCaddy(t, e.bin, e.sb, "dws-notify", "redeliver", "story-1", "--address", e.gw.AdminAddr); err != nil {
			t.Fatalf("redeliver: %v\n%s", err, out)
		}
		final = waitOutput(t, "the delivery", "inbox        delivered: the backend took it (HTTP 200) at ", "(since its redelivery at ", "last try     HTTP 200 at ")
		t.Logf("inspect after the delivery:\n%s", final)
	})
	phase(t, "the output has the shape of docs/tooling.md's example", func(t *testing.T) {
		var doc string
		for _, b := range parseDocBlocks(t, repoRoot(t), "docs/tooling.md") {
			if strings.Contains(b.Text, "inbox        delivered: ") {
				doc = b.Text
			}
		}
		if doc == "" {
			t.Fatal("docs/tooling.md has no example of a delivered inbox item")
		}
		if got, want := maskInspect(final), maskInspect(doc); got != want {
			t.Errorf("the binary prints (masked)\n%s\ndocs/tooling.md shows (masked)\n%s", got, want)
		}
	})
	phase(t, "one INFO line for the delivery", func(t *testing.T) {
		var lines []map[string]any
		sc := bufio.NewScanner(strings.NewReader(e.proc.Output()))
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "inbox: notification delivered" {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 {
			t.Fatalf("%d delivery lines, want 1", len(lines))
		}
		l := lines[0]
		if l["level"] != "info" || l["request_id"] != "story-1" || l["backend_status"] != float64(200) || l["attempt"] != float64(1) || l["queued_at"] == nil {
			t.Errorf("delivery line %v", l)
		}
		for _, s := range atRestSecrets {
			if strings.Contains(e.proc.Output(), s) {
				t.Errorf("the gateway's output holds %q", s)
			}
		}
	})
}

var (
	inspectTimeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)`)
	inspectAgoRE  = regexp.MustCompile(`\((in )?[0-9dhms.]+( ago)?\)`)
	inspectInRE   = regexp.MustCompile(`, in [0-9dhms.]+\)`)
)

// maskInspect keeps the labels and words of inspect's output and masks
// what differs between runs: times, durations, the requestId, the
// Client-Id and the storage.
func maskInspect(s string) string {
	var out []string
	for line := range strings.Lines(strings.TrimSpace(s)) {
		line = strings.TrimRight(line, "\n")
		line = inspectTimeRE.ReplaceAllString(line, "TIME")
		line = inspectAgoRE.ReplaceAllString(line, "(DURATION)")
		line = inspectInRE.ReplaceAllString(line, ", in DURATION)")
		for _, label := range []string{"requestId ", "  Client-Id    ", "  storage      "} {
			if strings.HasPrefix(line, label) {
				line = label + "X"
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
