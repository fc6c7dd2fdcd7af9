package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/dwsnotify/dws_notify/config"
)

// routeOrderSites are site bodies around one dws_notify block (NOTIFY)
// and a backend (BACKEND), lines starting "GLOBAL " going to the global
// options and lines starting "TOP " before the site, with what the route-order check says of them:
// the text its error must hold, or "" for a config that must load.
var routeOrderSites = []struct {
	name, body, refused string
}{
	{"route with reverse_proxy before dws_notify", "route {\n\treverse_proxy BACKEND\n\tNOTIFY\n}",
		"the dws_notify handler at routes[0].handle[0].routes[0].handle[0].routes[0].handle[1] never runs: the reverse_proxy at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers every request before it (it would forward them unverified)"},
	{"route with respond before dws_notify", "route {\n\trespond \"hi\"\n\tNOTIFY\n\treverse_proxy BACKEND\n}",
		"the static_response at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers every request before it"},
	{"route with file_server before dws_notify", "route {\n\tfile_server\n\tNOTIFY\n\treverse_proxy BACKEND\n}",
		"the file_server at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers"},
	{"route with error before dws_notify", "route {\n\terror 403\n\tNOTIFY\n\treverse_proxy BACKEND\n}",
		"the error at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers"},
	{"route with a handle block before dws_notify", "route {\n\thandle {\n\t\treverse_proxy BACKEND\n\t}\n\tNOTIFY\n}",
		"the reverse_proxy at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers"},
	{"order global option puts dws_notify last", "GLOBAL order dws_notify last\nNOTIFY\nreverse_proxy BACKEND",
		"the reverse_proxy at routes[0].handle[0].routes[0].handle[0] answers every request before it"},
	{"order global option puts dws_notify first", "GLOBAL order dws_notify first\nNOTIFY\nreverse_proxy BACKEND", ""},
	{"route with dws_notify first", "route {\n\tNOTIFY\n\treverse_proxy BACKEND\n}", ""},
	{"directive order", "NOTIFY\nreverse_proxy BACKEND", ""},
	{"handle blocks", "handle /health {\n\trespond \"ok\"\n}\nhandle {\n\tNOTIFY\n\treverse_proxy BACKEND\n}", ""},
	{"route with a matcher-limited reverse_proxy", "route {\n\treverse_proxy /other/* BACKEND\n\tNOTIFY\n\treverse_proxy BACKEND\n}", ""},
	{"route with php_fastcgi before dws_notify", "route {\n\tphp_fastcgi 127.0.0.1:9000\n\tNOTIFY\n\treverse_proxy BACKEND\n}",
		"the reverse_proxy at routes[0].handle[0].routes[0].handle[0].routes[2].handle[0] answers every request before it"},
	{"php_fastcgi in a handle block", "handle /app/* {\n\tphp_fastcgi 127.0.0.1:9000\n}\nhandle {\n\tNOTIFY\n\treverse_proxy BACKEND\n}", ""},
	{"route with a path-limited php_fastcgi", "route {\n\tphp_fastcgi /app/* 127.0.0.1:9000\n\tNOTIFY\n\treverse_proxy BACKEND\n}", ""},
	// forward_auth: a reverse_proxy whose handle_response routes for a 2xx
	// answer copy headers and go on to the next handler (Caddy compiles
	// them with it); any other answer of the auth server is the answer.
	{"forward_auth before dws_notify", "GLOBAL order dws_notify after forward_auth\nforward_auth AUTH {\n\turi /auth\n\tcopy_headers X-User\n}\nNOTIFY\nreverse_proxy BACKEND", ""},
	{"route with a handle_response that goes on", "route {\n\treverse_proxy AUTH {\n\t\tmethod GET\n\t\t@ok status 2xx\n\t\thandle_response @ok {\n\t\t\trequest_header X-Checked yes\n\t\t}\n\t}\n\tNOTIFY\n\treverse_proxy BACKEND\n}", ""},
	{"route with a handle_response that answers", "route {\n\treverse_proxy AUTH {\n\t\t@ok status 2xx\n\t\thandle_response @ok {\n\t\t\trespond \"denied\" 403\n\t\t}\n\t}\n\tNOTIFY\n\treverse_proxy BACKEND\n}",
		"the reverse_proxy at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers every request before it (it would forward them unverified)"},
	{"route with a handle_response that sets the status", "route {\n\treverse_proxy AUTH {\n\t\treplace_status 403\n\t}\n\tNOTIFY\n\treverse_proxy BACKEND\n}",
		"the reverse_proxy at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers every request before it"},
	// A path matcher for every path is no limit.
	{"route with reverse_proxy /* before dws_notify", "route {\n\treverse_proxy /* BACKEND\n\tNOTIFY\n}",
		"the reverse_proxy at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers every request before it"},
	// A matcher that takes every notification of the api paths.
	{"route with a reverse_proxy for the api paths", "route {\n\treverse_proxy /dws/* BACKEND\n\tNOTIFY\n\treverse_proxy BACKEND\n}",
		"the reverse_proxy at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers every request for its api paths before it"},
	{"route with a reverse_proxy for POST", "@post method POST\nroute {\n\treverse_proxy @post BACKEND\n\tNOTIFY\n\treverse_proxy BACKEND\n}",
		"the reverse_proxy at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers every request for its api paths before it"},
	{"handle for the api paths sorted first", "handle /dws/* {\n\tNOTIFY\n\treverse_proxy BACKEND\n}\nhandle /dws/notify/* {\n\treverse_proxy BACKEND\n}",
		"answers every request for its api paths before it"},
	{"handle blocks each with dws_notify", "handle /dws/* {\n\tNOTIFY\n\treverse_proxy BACKEND\n}\nhandle {\n\tNOTIFY\n\treverse_proxy BACKEND\n}", ""},
	{"route with a reverse_proxy for GET", "@get method GET\nroute {\n\treverse_proxy @get BACKEND\n\tNOTIFY\n\treverse_proxy BACKEND\n}", ""},
	{"rewrite before a reverse_proxy for the api paths", "route {\n\trewrite * /elsewhere{uri}\n\treverse_proxy /dws/* BACKEND\n\tNOTIFY\n\treverse_proxy BACKEND\n}", ""},
	{"route with a reverse_proxy for one of two api paths", "route {\n\treverse_proxy /dws/notify/remove* BACKEND\n\tNOTIFY_TWO\n\treverse_proxy BACKEND\n}", ""},
	// invoke runs a named route; metrics answers every request.
	{"route invoking a named route that proxies", "TOP &(backend) {\nTOP \treverse_proxy BACKEND\nTOP }\nroute {\n\tinvoke backend\n\tNOTIFY\n}",
		"the reverse_proxy at named_routes.backend.handle[0] answers every request before it"},
	{"route with metrics before dws_notify", "route {\n\tmetrics\n\tNOTIFY\n\treverse_proxy BACKEND\n}",
		"the metrics at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0] answers every request before it"},
	{"route with file_server pass_thru", "route {\n\tfile_server {\n\t\tpass_thru\n\t}\n\tNOTIFY\n\treverse_proxy BACKEND\n}", ""},
	// Two dws_notify in one chain: the second gets what the first
	// forwards (one per Client-Id, each with its key, as the reviewer's).
	{"two dws_notify in a site", "NOTIFY\nNOTIFY\nreverse_proxy BACKEND",
		"the dws_notify handler at routes[0].handle[0].routes[0].handle[1] comes after the dws_notify handler at routes[0].handle[0].routes[0].handle[0] in the chain that one forwards to"},
	{"two dws_notify in a route", "route {\n\tNOTIFY\n\tNOTIFY\n\treverse_proxy BACKEND\n}",
		"the dws_notify handler at routes[0].handle[0].routes[0].handle[0].routes[0].handle[1] comes after the dws_notify handler at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0]"},
	{"dws_notify in a handle block after a dws_notify", "route {\n\tNOTIFY\n\thandle /dws/* {\n\t\tNOTIFY\n\t}\n\treverse_proxy BACKEND\n}",
		"comes after the dws_notify handler at routes[0].handle[0].routes[0].handle[0].routes[0].handle[0]"},
	// Sibling dws_notify whose matchers both take every notification of
	// the api path: what the first forwards goes to the second.
	{"sibling dws_notify for the api paths", "@dws path /dws/*\nNOTIFY_AT @dws " + testClientID + " " + addPath + "\nNOTIFY_AT @dws " + otherSiblingID + " " + addPath + "\nreverse_proxy BACKEND",
		"the dws_notify handler at routes[0].handle[0].routes[0].handle[1] comes after the dws_notify handler at routes[0].handle[0].routes[0].handle[0]"},
	// The last one starts ("reload keeps the running config").
	{"handle blocks by Client-Id", "@first header Client-Id " + testClientID + "\nhandle @first {\n\tNOTIFY\n\treverse_proxy BACKEND\n}\nhandle {\n\tNOTIFY_TWO\n\treverse_proxy BACKEND\n}", ""},
}

// otherSiblingID is the Client-Id of the second of two sibling dws_notify.
const otherSiblingID = "2188120000000001"

// routeOrderSiblings are configs with a dws_notify per Client-Id (or host,
// or path) side by side in one chain, each behind a matcher of its own
// (NOTIFY_AT <matcher> <client id> <api path, or - for any path>): the
// matchers keep what one forwards from the other, so they must start,
// and each dws_notify's notifications reach the backend. path is where
// each client's notifications go.
var routeOrderSiblings = []struct {
	name, body string
	paths      [2]string
}{
	{"sibling dws_notify by Client-Id",
		"@a header Client-Id " + testClientID + "\n@b header Client-Id " + otherSiblingID + "\nNOTIFY_AT @a " + testClientID + " " + addPath + "\nNOTIFY_AT @b " + otherSiblingID + " " + addPath + "\nreverse_proxy BACKEND",
		[2]string{addPath, addPath}},
	{"sibling dws_notify by Client-Id in a route",
		"@a header Client-Id " + testClientID + "\n@b header Client-Id " + otherSiblingID + "\nroute {\n\tNOTIFY_AT @a " + testClientID + " " + addPath + "\n\tNOTIFY_AT @b " + otherSiblingID + " " + addPath + "\n\treverse_proxy BACKEND\n}",
		[2]string{addPath, addPath}},
	{"sibling dws_notify by host",
		"@a host localhost\n@b host b.example.com\nNOTIFY_AT @a " + testClientID + " " + addPath + "\nNOTIFY_AT @b " + otherSiblingID + " " + addPath + "\nreverse_proxy BACKEND",
		[2]string{addPath, ""}},
	{"sibling dws_notify by path serving any path",
		"@a path /a/*\n@b path /b/*\nNOTIFY_AT @a " + testClientID + " -\nNOTIFY_AT @b " + otherSiblingID + " -\nreverse_proxy BACKEND",
		[2]string{"/a/notify", "/b/notify"}},
}

// notifyAt matches NOTIFY_AT <matcher> <client id> <api path>.
var notifyAt = regexp.MustCompile(`NOTIFY_AT (@\w+) (\d+) (\S+)`)

// routeOrderCaddyfile is a gateway Caddyfile whose site holds body.
// NOTIFY_TWO is a dws_notify block serving both APIs; AUTH is the address
// of an auth server.
func routeOrderCaddyfile(t *testing.T, body, backend, auth, storage string) string {
	t.Helper()
	k := keys(t)
	notify := fmt.Sprintf("dws_notify {\n\tclient_id %s\n\tdws_public_key {file.%s}\n\tapi addPaymentMethod %s\n\tstorage %s\n}",
		testClientID, filepath.Join(k.dir, "dws_public.pem"), addPath, storage)
	two := strings.Replace(notify, "\n\tstorage", "\n\tapi removePaymentMethod "+removePath+"\n\tstorage", 1)
	body = notifyAt.ReplaceAllStringFunc(body, func(m string) string {
		p := notifyAt.FindStringSubmatch(m)
		api := "addPaymentMethod " + p[3]
		if p[3] == "-" {
			api = "addPaymentMethod"
		}
		return fmt.Sprintf("dws_notify %s {\n\tclient_id %s\n\tdws_public_key {file.%s}\n\tapi %s\n\tstorage %s\n}",
			p[1], p[2], filepath.Join(k.dir, "dws_public.pem"), api, storage)
	})
	body = strings.ReplaceAll(body, "NOTIFY_TWO", two)
	body = strings.ReplaceAll(body, "NOTIFY", notify)
	body = strings.ReplaceAll(body, "BACKEND", backend)
	body = strings.ReplaceAll(body, "AUTH", auth)
	var globals, top, site []string
	for _, line := range strings.Split(body, "\n") {
		if g, ok := strings.CutPrefix(line, "GLOBAL "); ok {
			globals = append(globals, "\t"+g)
		} else if l, ok := strings.CutPrefix(line, "TOP "); ok {
			top = append(top, l)
		} else {
			site = append(site, line)
		}
	}
	return "{\n\tadmin localhost:2999\n\thttp_port 9080\n\thttps_port 9443\n\tgrace_period 1ns\n\tskip_install_trust\n" +
		strings.Join(globals, "\n") + "\n}\n" + strings.Join(top, "\n") + "\nhttp://localhost:9080 {\n" + strings.Join(site, "\n") + "\n}\n"
}

// adaptCaddyfile adapts a Caddyfile to Caddy's JSON.
func adaptCaddyfile(t *testing.T, src string) []byte {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v\n%s", err, src)
	}
	return out
}

// TestRouteOrderCaddyfiles runs the route-order check over the JSON that
// real Caddyfiles adapt to.
func TestRouteOrderCaddyfiles(t *testing.T) {
	sites := routeOrderSites
	for _, s := range routeOrderSiblings {
		sites = append(sites, struct{ name, body, refused string }{s.name, s.body, ""})
	}
	for _, tc := range sites {
		t.Run(tc.name, func(t *testing.T) {
			raw := adaptCaddyfile(t, routeOrderCaddyfile(t, tc.body, "127.0.0.1:8081", "127.0.0.1:19000", t.TempDir()))
			var cfg struct {
				Apps map[string]json.RawMessage `json:"apps"`
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			servers, err := config.RoutesFromJSON(cfg.Apps["http"])
			if err != nil {
				t.Fatal(err)
			}
			err = config.CheckRouteOrder(servers)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused a correct config: %v\n%s", err, raw)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("got %v, want an error with %q\n%s", err, tc.refused, raw)
			}
		})
	}
}

// TestRouteOrderRefusedAtStart runs the same Caddyfiles in an in-process
// Caddy: a config whose dws_notify never runs fails to start (it used to
// start and forward every request unverified), and a reload to one keeps
// the config that runs; the correct ones start, and their dws_notify
// verifies.
func TestRouteOrderRefusedAtStart(t *testing.T) {
	b := newBackend(t)
	auth := newBackend(t)
	g := &gateway{t: t, tester: caddytest.NewTester(t), keys: keys(t)}
	forged := func() *notice {
		n := g.notice(addPath, addSample(t, "route-order-forged"))
		n.clientID = "2188999999999999"
		return n
	}
	for _, tc := range routeOrderSites {
		t.Run(tc.name, func(t *testing.T) {
			g.t = t
			before := len(b.hits())
			raw := adaptCaddyfile(t, routeOrderCaddyfile(t, tc.body, b.addr(), auth.addr(), t.TempDir()))
			err := caddy.Load(raw, true)
			if tc.refused != "" {
				if err == nil {
					defer unloadConfig(t)
					_, _ = g.tester.Client.Do(forged().request(t))
					t.Fatalf("the config started; the backend got %d requests from an unknown client", len(b.hits())-before)
				}
				advice := "put dws_notify first in its route"
				if strings.Contains(tc.refused, "comes after the dws_notify handler") {
					advice = "use one dws_notify per chain"
				}
				for _, want := range []string{"server srv0", tc.refused, advice} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("start error %q lacks %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("a correct config did not start: %v", err)
			}
			defer unloadConfig(t)
			g.send(forged()).expect(t, http.StatusOK, "F", "ACCESS_DENIED")
			if got := len(b.hits()) - before; got != 0 {
				t.Fatalf("backend got %d requests from an unknown client", got)
			}
			g.send(g.notice(addPath, addSample(t, "route-order-"+strings.ReplaceAll(tc.name, " ", "-")))).expect(t, http.StatusOK, "S", "SUCCESS")
			if got := len(b.hits()) - before; got != 1 {
				t.Fatalf("backend got %d requests, want the one genuine notification", got)
			}
		})
	}

	t.Run("reload keeps the running config", func(t *testing.T) {
		g.t = t
		good := adaptCaddyfile(t, routeOrderCaddyfile(t, routeOrderSites[len(routeOrderSites)-1].body, b.addr(), auth.addr(), t.TempDir()))
		if err := caddy.Load(good, true); err != nil {
			t.Fatal(err)
		}
		defer unloadConfig(t)
		bad := adaptCaddyfile(t, routeOrderCaddyfile(t, routeOrderSites[0].body, b.addr(), auth.addr(), t.TempDir()))
		res, err := http.Post("http://localhost:2999/load", "application/json", strings.NewReader(string(bad)))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Fatal("the admin API took a config whose dws_notify never runs")
		}
		before := len(b.hits())
		g.send(forged()).expect(t, http.StatusOK, "F", "ACCESS_DENIED")
		if got := len(b.hits()) - before; got != 0 {
			t.Fatalf("after the refused reload, the backend got %d requests from an unknown client", got)
		}
	})
}

// TestRouteOrderSiblingsStart runs the sibling configs in an in-process
// Caddy: they start (the route-order check used to refuse them), and a
// notification of each client goes through its own dws_notify to the
// backend, not into the other (whose guard would answer 500 and turn
// the answer into U).
func TestRouteOrderSiblingsStart(t *testing.T) {
	b := newBackend(t)
	g := &gateway{t: t, tester: caddytest.NewTester(t), keys: keys(t)}
	for k, tc := range routeOrderSiblings {
		t.Run(tc.name, func(t *testing.T) {
			g.t = t
			raw := adaptCaddyfile(t, routeOrderCaddyfile(t, tc.body, b.addr(), "127.0.0.1:19000", t.TempDir()))
			if err := caddy.Load(raw, true); err != nil {
				t.Fatalf("a correct config did not start: %v", err)
			}
			defer unloadConfig(t)
			for i, client := range []string{testClientID, otherSiblingID} {
				id := fmt.Sprintf("ro-sibling-%d-%d-%d", k, i, time.Now().UnixNano())
				if tc.paths[i] == "" {
					continue
				}
				before := len(b.hits())
				n := g.notice(tc.paths[i], addSample(t, id))
				n.clientID = client
				g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
				if got := len(b.hits()) - before; got != 1 {
					t.Fatalf("client %s: backend got %d requests, want 1", client, got)
				}
			}
		})
	}
}
