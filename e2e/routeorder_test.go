package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// routeOrderCaddyfile is doc, a caddy block of docs/configuration.md,
// made runnable here: the site on a loopback port, the key and
// backend of the sandbox, an admin endpoint of its own.
func routeOrderCaddyfile(t *testing.T, doc docBlock, sb *sandbox, key *keyPair, backend, admin, site string) string {
	t.Helper()
	caddyfile := doc.Text
	for old, repl := range map[string]string{
		"notify.example.com":                                site,
		"/etc/dws/alipay_public_key.pem":                    key.PEMPath,
		"127.0.0.1:8080":                                    backend,
		"api addPaymentMethod /dws/notify/addPaymentMethod": "api addPaymentMethod /dws/notify/addPaymentMethod\n\t\t\tstorage " + sb.Storage,
	} {
		if !strings.Contains(caddyfile, old) {
			t.Fatalf("%s: the Caddyfile no longer has %q, which this test replaces", doc, old)
		}
		caddyfile = strings.ReplaceAll(caddyfile, old, repl)
	}
	return "{\n\tadmin " + admin + "\n\tpersist_config off\n}\n\n" + caddyfile
}

// TestRouteOrderRefused: the Caddyfile of docs/configuration.md with
// reverse_proxy before dws_notify in a route passes `caddy validate` (the
// check needs the started http app) and `caddy run` refuses it, naming the
// server, the positions, the reverse_proxy and what to do. Before the
// check, it started and proxied every request unverified.
func TestRouteOrderRefused(t *testing.T) {
	bin := caddyBin(t)
	sb := newSandbox(t)
	be := newBackend(t)
	key := newKeyPair(t, sb, "alipay")
	addrs := freeAddrs(t, 2)
	root := repoRoot(t)
	doc := docCaddyfileFor(t, root, "TestRouteOrderRefused")
	caddyfile := routeOrderCaddyfile(t, doc, sb, key, be.HostPort(), addrs[0], "http://"+addrs[1])
	cfg := sb.writeFile(t, "Caddyfile.refused", []byte(caddyfile))

	out, err := runCaddy(t, bin, sb, "validate", "--config", cfg, "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}

	// Before the check, caddy run served this config until runCaddy's
	// timeout killed it.
	out, err = runCaddy(t, bin, sb, "run", "--config", cfg, "--adapter", "caddyfile")
	if err == nil {
		t.Fatalf("caddy run exited 0\n%s", out)
	}
	// The message docs/configuration.md shows, whole: the text block right
	// after the Caddyfile.
	want := refusalMessageAfter(t, root, doc)
	if !strings.Contains(want, "server srv0: the dws_notify handler at routes[0].handle[0].routes[0].handle[0].routes[0].handle[1] never runs: "+
		"the reverse_proxy at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers every request before it (it would forward them unverified)") {
		t.Errorf("%s: the documented message no longer names the positions and the reverse_proxy: %q", doc, want)
	}
	expectLoggedRefusal(t, out, doc, want)
	if n := be.Count(); n != 0 {
		t.Errorf("the backend got %d requests", n)
	}
}

// refusalMessageAfter returns the text block that follows doc in its
// document: the error message the document shows for it.
func refusalMessageAfter(t *testing.T, root string, doc docBlock) string {
	t.Helper()
	for _, b := range allDocBlocks(t, root) {
		if b.File == doc.File && b.Line > doc.Line {
			if b.Lang != "text" {
				t.Fatalf("%s: the block after %s is no ```text block with the error message", b, doc)
			}
			return strings.TrimSpace(b.Text)
		}
	}
	t.Fatalf("%s: no block follows it with the error message", doc)
	return ""
}

// TestRouteOrderFixed: the corrected Caddyfile of docs/configuration.md (a
// route with a reverse_proxy limited to /health before dws_notify) starts,
// and its dws_notify verifies: a notification signed by another key is
// refused and never reaches the backend, DWS's is forwarded.
func TestRouteOrderFixed(t *testing.T) {
	bin := caddyBin(t)
	sb := newSandbox(t)
	be := newBackend(t)
	key := newKeyPair(t, sb, "alipay")
	forger := newKeyPair(t, sb, "forger")
	addrs := freeAddrs(t, 2)
	site := "http://" + addrs[1]
	root := repoRoot(t)
	doc := docCaddyfileFor(t, root, "TestRouteOrderFixed")
	caddyfile := routeOrderCaddyfile(t, doc, sb, key, be.HostPort(), addrs[0], site)
	startCaddy(t, bin, sb, caddyfile, addrs[0], site+"/")
	dws := newDWS(site, clientID, key.Private)

	forged := addNotif(t, "route-order-forged")
	if a := dws.Post(t, addURI, forged.Body, forger.Private, 1, nil); a.Result.ResultStatus != "F" || a.Result.ResultCode != "INVALID_SIGNATURE" {
		t.Fatalf("forged notification: HTTP %d %s, want F INVALID_SIGNATURE", a.Status, a.Body)
	}
	if n := be.Count(); n != 0 {
		t.Fatalf("the backend got %d requests from a forged notification", n)
	}
	genuine := addNotif(t, "route-order-genuine")
	if a := dws.Post(t, addURI, genuine.Body, key.Private, 1, nil); a.Result.ResultStatus != "S" {
		t.Fatalf("genuine notification: HTTP %d %s, want S", a.Status, a.Body)
	}
	if n := be.Count(); n != 1 {
		t.Fatalf("the backend got %d requests, want the genuine notification", n)
	}
}

// twoHandlersCaddyfile is doc (one of the two-handler Caddyfiles of
// docs/configuration.md) made runnable: the second Client-Id's key is
// second's.
func twoHandlersCaddyfile(t *testing.T, doc docBlock, sb *sandbox, key, second *keyPair, backend, admin, site string) string {
	t.Helper()
	if !strings.Contains(doc.Text, "/etc/dws/alipay_public_key_2.pem") {
		t.Fatalf("%s: the Caddyfile no longer has the second key's path, which this test replaces", doc)
	}
	doc.Text = strings.ReplaceAll(doc.Text, "/etc/dws/alipay_public_key_2.pem", second.PEMPath)
	return routeOrderCaddyfile(t, doc, sb, key, backend, admin, site)
}

// secondClientID is the second Client-Id of the two-handler Caddyfiles.
const secondClientID = "2188120000000001"

// TestRouteOrderTwoHandlers: the Caddyfile of docs/configuration.md with
// one dws_notify per Client-Id, the second after the first, passes
// `caddy validate` and `caddy run` refuses it with the documented message.
// Before, it started, and a notification for the first Client-Id was
// answered S while the second handler, not the backend, got it.
func TestRouteOrderTwoHandlers(t *testing.T) {
	bin := caddyBin(t)
	sb := newSandbox(t)
	be := newBackend(t)
	key := newKeyPair(t, sb, "alipay")
	second := newKeyPair(t, sb, "alipay2")
	addrs := freeAddrs(t, 2)
	root := repoRoot(t)
	doc := docCaddyfileFor(t, root, "TestRouteOrderTwoHandlers")
	caddyfile := twoHandlersCaddyfile(t, doc, sb, key, second, be.HostPort(), addrs[0], "http://"+addrs[1])
	cfg := sb.writeFile(t, "Caddyfile.two", []byte(caddyfile))

	out, err := runCaddy(t, bin, sb, "validate", "--config", cfg, "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}
	out, err = runCaddy(t, bin, sb, "run", "--config", cfg, "--adapter", "caddyfile")
	if err == nil {
		t.Fatalf("caddy run exited 0\n%s", out)
	}
	want := refusalMessageAfter(t, root, doc)
	if !strings.Contains(want, "the dws_notify handler at routes[0].handle[0].routes[0].handle[1] comes after the dws_notify handler at routes[0].handle[0].routes[0].handle[0]") {
		t.Errorf("%s: the documented message no longer names both handlers: %q", doc, want)
	}
	expectLoggedRefusal(t, out, doc, want)
	if n := be.Count(); n != 0 {
		t.Errorf("the backend got %d requests", n)
	}
}

// TestRouteOrderTwoHandlersFixed: the corrected Caddyfile (a handle block
// per Client-Id) starts, and each Client-Id's notification, signed with
// its own key, reaches the backend and is answered S; one signed with the
// other Client-Id's key is refused.
func TestRouteOrderTwoHandlersFixed(t *testing.T) {
	bin := caddyBin(t)
	sb := newSandbox(t)
	be := newBackend(t)
	key := newKeyPair(t, sb, "alipay")
	second := newKeyPair(t, sb, "alipay2")
	addrs := freeAddrs(t, 2)
	site := "http://" + addrs[1]
	root := repoRoot(t)
	doc := docCaddyfileFor(t, root, "TestRouteOrderTwoHandlersFixed")
	startCaddy(t, bin, sb, twoHandlersCaddyfile(t, doc, sb, key, second, be.HostPort(), addrs[0], site), addrs[0], site+"/")

	first := newDWS(site, clientID, key.Private)
	if a := first.Post(t, addURI, addNotif(t, "two-handlers-first").Body, key.Private, 1, nil); a.Result.ResultStatus != "S" {
		t.Fatalf("first Client-Id: HTTP %d %s, want S", a.Status, a.Body)
	}
	other := newDWS(site, secondClientID, second.Private)
	if a := other.Post(t, addURI, addNotif(t, "two-handlers-second").Body, second.Private, 1, nil); a.Result.ResultStatus != "S" {
		t.Fatalf("second Client-Id: HTTP %d %s, want S", a.Status, a.Body)
	}
	if a := other.Post(t, addURI, addNotif(t, "two-handlers-crossed").Body, key.Private, 1, nil); a.Result.ResultStatus != "F" || a.Result.ResultCode != "INVALID_SIGNATURE" {
		t.Fatalf("second Client-Id signed with the first's key: HTTP %d %s, want F INVALID_SIGNATURE", a.Status, a.Body)
	}
	if n := be.Count(); n != 2 {
		t.Fatalf("the backend got %d requests, want the two genuine notifications", n)
	}
}

// expectLoggedRefusal checks that caddy run's output (out) logged, as a
// JSON error line, the message doc documents (want): whole, or after
// Caddy's "loading initial config: loading new config: ".
func expectLoggedRefusal(t *testing.T, out string, doc docBlock, want string) {
	t.Helper()
	var logged []string
	for _, line := range strings.Split(out, "\n") {
		var entry struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "error" {
			logged = append(logged, entry.Msg)
		}
	}
	if !slices.ContainsFunc(logged, func(m string) bool { return m == want || strings.HasSuffix(m, ": "+want) }) {
		t.Errorf("caddy run logged no error ending in the message of %s:\n%s\nerrors logged:\n%s", doc, want, strings.Join(logged, "\n"))
	}
}
