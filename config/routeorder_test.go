package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestRouteOrderJSON walks http app configs in Caddy's JSON: which
// dws_notify handlers never run, and what pre-empts them.
func TestRouteOrderJSON(t *testing.T) {
	const notify = `{"handler":"dws_notify","client_id":["1"]}`
	const proxy = `{"handler":"reverse_proxy","upstreams":[{"dial":"127.0.0.1:8081"}]}`
	const notifyAPI = `{"handler":"dws_notify","api":[{"name":"addPaymentMethod","path":"/dws/notify/addPaymentMethod"}]}`
	const notifyAnyPath = `{"handler":"dws_notify","api":[{"name":"addPaymentMethod"}]}`
	const notifyTwo = `{"handler":"dws_notify","api":[{"name":"addPaymentMethod","path":"/dws/notify/addPaymentMethod"},{"name":"removePaymentMethod","path":"/dws/notify/removePaymentMethod"}]}`
	cases := []struct {
		name  string
		route string // the server's routes
		want  []Shadowed
	}{
		{"notify before proxy", `[{"handle":[` + notify + `,` + proxy + `]}]`, nil},
		{"proxy before notify", `[{"handle":[` + proxy + `,` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "reverse_proxy", false}}},
		{"respond before notify", `[{"handle":[{"handler":"static_response","body":"x"},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "static_response", false}}},
		{"error before notify", `[{"handle":[{"handler":"error","status_code":403},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "error", false}}},
		{"file_server before notify", `[{"handle":[{"handler":"file_server","root":"/srv"},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "file_server", false}}},
		{"file_server pass_thru before notify", `[{"handle":[{"handler":"file_server","pass_thru":true},` + notify + `]}]`, nil},
		{"middleware before notify", `[{"handle":[{"handler":"headers"},{"handler":"encode"},` + notify + `,` + proxy + `]}]`, nil},
		{"unknown handler before notify", `[{"handle":[{"handler":"authentication"},` + notify + `]}]`, nil},
		{"matcherless earlier route", `[{"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "reverse_proxy", false}}},
		{"matched earlier route", `[{"match":[{"path":["/other/*"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `,` + proxy + `]}]`, nil},
		{"matched route after notify", `[{"handle":[` + notify + `]},{"handle":[` + proxy + `]}]`, nil},
		{"matcherless terminal route without a responder", `[{"handle":[{"handler":"vars"}],"terminal":true},{"handle":[` + notify + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0]", "terminal route", false}}},
		{"matched terminal route", `[{"match":[{"host":["a"]}],"handle":[` + proxy + `],"terminal":true},{"handle":[` + notify + `]}]`, nil},
		{"route block after proxy in a site", `[{"handle":[{"handler":"subroute","routes":[{"handle":[` + proxy + `,` + notify + `]}]}],"terminal":true}]`,
			[]Shadowed{{"routes[0].handle[0].routes[0].handle[1]", "routes[0].handle[0].routes[0].handle[0]", "reverse_proxy", false}}},
		{"subroute that always answers before notify", `[{"handle":[{"handler":"subroute","routes":[{"handle":[` + proxy + `]}]},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0].routes[0].handle[0]", "reverse_proxy", false}}},
		{"subroute with a matched proxy before notify", `[{"handle":[{"handler":"subroute","routes":[{"match":[{"path":["/x"]}],"handle":[` + proxy + `]}]},` + notify + `]}]`, nil},
		{"notify inside a shadowed subroute", `[{"handle":[` + proxy + `,{"handler":"subroute","routes":[{"handle":[` + notify + `]}]}]}]`,
			[]Shadowed{{"routes[0].handle[1].routes[0].handle[0]", "routes[0].handle[0]", "reverse_proxy", false}}},
		// handle blocks: routes of one group, only the first match runs.
		{"handle blocks", `[{"group":"g0","match":[{"path":["/health"]}],"handle":[{"handler":"static_response"}]},{"group":"g0","handle":[` + notify + `,` + proxy + `]}]`, nil},
		{"grouped matcherless route after a group mate", `[{"group":"g0","match":[{"path":["/a"]}],"handle":[{"handler":"vars"}]},{"group":"g0","handle":[` + proxy + `]},{"handle":[` + notify + `]}]`, nil},
		{"grouped route whose group an enclosing route holds", `[{"group":"g0","handle":[{"handler":"subroute","routes":[{"group":"g0","handle":[` + proxy + `]}]},` + notify + `]}]`, nil},
		// php_fastcgi's routes: a fallback rewrite to index.php, then a
		// proxy for *.php, which every rewritten request matches.
		{"php_fastcgi before notify", `[{"match":[{"file":{"try_files":["{http.request.uri.path}","index.php"],"try_policy":"first_exist_fallback"}}],"handle":[{"handler":"rewrite","uri":"{http.matchers.file.relative}"}]},` +
			`{"match":[{"path":["*.php"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`,
			[]Shadowed{{"routes[2].handle[0]", "routes[1].handle[0]", "reverse_proxy", false}}},
		{"php_fastcgi proxy for other paths", `[{"match":[{"file":{"try_files":["{http.request.uri.path}","index.php"],"try_policy":"first_exist_fallback"}}],"handle":[{"handler":"rewrite","uri":"{http.matchers.file.relative}"}]},` +
			`{"match":[{"path":["/cgi/*"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`, nil},
		{"another rewrite between", `[{"match":[{"file":{"try_files":["{http.request.uri.path}","index.php"],"try_policy":"first_exist_fallback"}}],"handle":[{"handler":"rewrite","uri":"{http.matchers.file.relative}"}]},` +
			`{"handle":[{"handler":"rewrite","uri":"/dws{uri}"}]},{"match":[{"path":["*.php"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`, nil},
		{"try_files without a fallback", `[{"match":[{"file":{"try_files":["{http.request.uri.path}","index.php"]}}],"handle":[{"handler":"rewrite","uri":"{http.matchers.file.relative}"}]},` +
			`{"match":[{"path":["*.php"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`, nil},
		{"path matcher with another matcher", `[{"match":[{"file":{"try_files":["index.php"],"try_policy":"first_exist_fallback"}}],"handle":[{"handler":"rewrite","uri":"{http.matchers.file.relative}"}]},` +
			`{"match":[{"path":["*.php"],"method":["GET"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`, nil},
		// reverse_proxy's handle_response: Caddy runs the first entry whose
		// matcher takes the response, its routes with the next handler.
		{"handle_response routes that go on", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"match":{"status_code":[2]},"routes":[{"handle":[{"handler":"headers"}]}]}]},` + notify + `]}]`, nil},
		{"handle_response without routes or status", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{}]},` + notify + `]}]`, nil},
		{"handle_response routes that answer", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"match":{"status_code":[2]},"routes":[{"handle":[{"handler":"static_response","status_code":403}]}]}]},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "reverse_proxy", false}}},
		{"handle_response setting a status", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"status_code":403}]},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "reverse_proxy", false}}},
		{"handle_response routes answering only some paths", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"routes":[{"match":[{"path":["/x"]}],"handle":[{"handler":"static_response"}]}]}]},` + notify + `]}]`, nil},
		{"handle_response routes that copy the response", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"routes":[{"handle":[{"handler":"copy_response"}]}]}]},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "reverse_proxy", false}}},
		// Caddy runs the first entry that takes the response: none after
		// an entry without a matcher ever runs.
		{"a second handle_response entry after one that takes every response", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"status_code":403},{"routes":[{"handle":[{"handler":"vars"}]}]}]},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "reverse_proxy", false}}},
		{"a matched entry after a copy_response entry that takes every response", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"routes":[{"handle":[{"handler":"copy_response"}]}]},{"match":{"status_code":[5]},"routes":[{"handle":[{"handler":"headers"}]}]}]},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "reverse_proxy", false}}},
		{"one of two matched handle_response entries goes on", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"match":{"status_code":[4]},"status_code":403},{"match":{"status_code":[5]},"routes":[{"handle":[{"handler":"vars"}]}]}]},` + notify + `]}]`, nil},
		{"dws_notify in handle_response routes after respond", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"routes":[{"handle":[{"handler":"static_response"},` + notify + `]}]}]}]}]`,
			[]Shadowed{{"routes[0].handle[0].handle_response[0].routes[0].handle[1]", "routes[0].handle[0].handle_response[0].routes[0].handle[0]", "static_response", false}}},
		// A path matcher for every path is no limit.
		{"path matcher /*", `[{"match":[{"path":["/*"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "reverse_proxy", false}}},
		{"path matcher * among others", `[{"match":[{"path":["/x","*"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "reverse_proxy", false}}},
		{"path matcher /* with a host matcher", `[{"match":[{"path":["/*"],"host":["a"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`, nil},
		{"second matcher set for every path", `[{"match":[{"host":["a"]},{"path":["*"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "reverse_proxy", false}}},
		// Matchers that take every notification of the api paths.
		{"path matcher covering the api path", `[{"match":[{"path":["/dws/*"]}],"handle":[` + proxy + `]},{"handle":[` + notifyAPI + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "reverse_proxy", true}}},
		{"path matcher missing an api path", `[{"match":[{"path":["/dws/notify/add*"]}],"handle":[` + proxy + `]},{"handle":[` + notifyTwo + `]}]`, nil},
		{"path matcher for the api paths, notify serving any path", `[{"match":[{"path":["/dws/*"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`, nil},
		{"path matcher with a placeholder", `[{"match":[{"path":["{vars.p}*"]}],"handle":[` + proxy + `]},{"handle":[` + notifyAPI + `]}]`, nil},
		{"method POST", `[{"match":[{"method":["POST"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "reverse_proxy", true}}},
		// Caddy upper-cases the methods when it provisions the matcher,
		// so the provisioned check refuses this one too.
		{"method post in lower case", `[{"match":[{"method":["post"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "reverse_proxy", true}}},
		{"method GET", `[{"match":[{"method":["GET"]}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`, nil},
		{"method POST and the api path", `[{"match":[{"method":["GET","POST"],"path":["/dws/notify/*"]}],"handle":[` + proxy + `]},{"handle":[` + notifyAPI + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "reverse_proxy", true}}},
		{"method POST and a header", `[{"match":[{"method":["POST"],"header":{"X":["1"]}}],"handle":[` + proxy + `]},{"handle":[` + notify + `]}]`, nil},
		{"covering path after a rewrite", `[{"handle":[{"handler":"rewrite","uri":"/x{uri}"}]},{"match":[{"path":["/dws/*"]}],"handle":[` + proxy + `]},{"handle":[` + notifyAPI + `]}]`, nil},
		{"covering path after a third-party handler", `[{"handle":[{"handler":"someone_elses"}]},{"match":[{"path":["/dws/*"]}],"handle":[` + proxy + `]},{"handle":[` + notifyAPI + `]}]`, nil},
		{"covering path after headers", `[{"handle":[{"handler":"headers"}]},{"match":[{"path":["/dws/*"]}],"handle":[` + proxy + `]},{"handle":[` + notifyAPI + `]}]`,
			[]Shadowed{{"routes[2].handle[0]", "routes[1].handle[0]", "reverse_proxy", true}}},
		{"covering handle sorted first", `[{"group":"g0","match":[{"path":["/dws/notify/*"]}],"handle":[{"handler":"subroute","routes":[{"handle":[` + proxy + `]}]}]},` +
			`{"group":"g0","match":[{"path":["/dws/*"]}],"handle":[{"handler":"subroute","routes":[{"handle":[` + notifyAPI + `,` + proxy + `]}]}]}]`,
			[]Shadowed{{"routes[1].handle[0].routes[0].handle[0]", "routes[0].handle[0].routes[0].handle[0]", "reverse_proxy", true}}},
		{"covering handle that verifies first", `[{"group":"g0","match":[{"path":["/dws/*"]}],"handle":[{"handler":"subroute","routes":[{"handle":[` + notifyAPI + `,` + proxy + `]}]}]},` +
			`{"group":"g0","handle":[{"handler":"subroute","routes":[{"handle":[` + notifyAPI + `,` + proxy + `]}]}]}]`, nil},
		{"covering route after a verifying route", `[{"handle":[` + notifyAPI + `]},{"match":[{"path":["/dws/*"]}],"handle":[` + proxy + `]},{"handle":[` + notifyAPI + `]}]`, nil},
		{"covering route of a group already matched", `[{"group":"g0","match":[{"path":["/health"]}],"handle":[{"handler":"vars"}]},{"group":"g0","match":[{"path":["/dws/*"]}],"handle":[` + proxy + `]},{"handle":[` + notifyAPI + `]}]`, nil},
		// metrics answers every request.
		{"metrics before notify", `[{"handle":[{"handler":"metrics"},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "metrics", false}}},
		{"first grouped route of its group", `[{"group":"g0","handle":[` + proxy + `]},{"group":"g1","handle":[` + notify + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "reverse_proxy", false}}},
		// A dws_notify that what another forwards may reach: it would
		// answer those notifications in place of the backend.
		{"two dws_notify in a route", `[{"handle":[` + notify + `,` + notify + `,` + proxy + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "dws_notify", false}}},
		{"three dws_notify in a route", `[{"handle":[` + notify + `,` + notify + `,` + notify + `,` + proxy + `]}]`,
			[]Shadowed{{"routes[0].handle[1]", "routes[0].handle[0]", "dws_notify", false}, {"routes[0].handle[2]", "routes[0].handle[1]", "dws_notify", false}}},
		{"two dws_notify routes", `[{"handle":[` + notifyAPI + `]},{"handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "dws_notify", false}}},
		{"dws_notify after a site's dws_notify in a subroute", `[{"handle":[{"handler":"subroute","routes":[{"handle":[` + notifyAPI + `]}]}]},{"handle":[` + notifyAPI + `,` + proxy + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0].routes[0].handle[0]", "dws_notify", false}}},
		{"dws_notify in a subroute after a dws_notify", `[{"handle":[` + notifyAPI + `,{"handler":"subroute","routes":[{"match":[{"path":["/dws/*"]}],"handle":[` + notifyAPI + `]}]},` + proxy + `]}]`,
			[]Shadowed{{"routes[0].handle[1].routes[0].handle[0]", "routes[0].handle[0]", "dws_notify", false}}},
		{"dws_notify after a route for the api paths", `[{"handle":[` + notifyAPI + `]},{"match":[{"path":["/dws/notify/*"]}],"handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]`,
			[]Shadowed{{"routes[1].handle[0]", "routes[0].handle[0]", "dws_notify", false}}},
		{"dws_notify behind a path matcher for the api path after a rewrite", `[{"handle":[{"handler":"rewrite","uri":"/x{uri}"}]},{"handle":[` + notifyAPI + `]},{"match":[{"path":["/dws/*"]}],"handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]`, nil},
		{"dws_notify after a route that may match and goes on", `[{"handle":[` + notifyAPI + `]},{"match":[{"header":{"X":["1"]}}],"handle":[{"handler":"headers"},{"handler":"vars"}]},{"handle":[` + notifyAPI + `,` + proxy + `]}]`,
			[]Shadowed{{"routes[2].handle[0]", "routes[0].handle[0]", "dws_notify", false}}},
		{"dws_notify in a handle_response entry that takes every response", `[{"handle":[` + notify + `,{"handler":"reverse_proxy","handle_response":[{"routes":[{"handle":[{"handler":"headers"}]}]}]},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[2]", "routes[0].handle[0]", "dws_notify", false}}},
		{"dws_notify after a responder for other paths", `[{"handle":[` + notifyAPI + `]},{"match":[{"path":["/x"]}],"handle":[{"handler":"static_response"}]},{"handle":[` + notifyAPI + `,` + proxy + `]}]`,
			[]Shadowed{{"routes[2].handle[0]", "routes[0].handle[0]", "dws_notify", false}}},
		{"dws_notify in handle_response routes", `[{"handle":[` + notify + `,{"handler":"reverse_proxy","handle_response":[{"routes":[{"handle":[` + notify + `]}]}]}]}]`,
			[]Shadowed{{"routes[0].handle[1].handle_response[0].routes[0].handle[0]", "routes[0].handle[0]", "dws_notify", false}}},
		// What the forwards of the first never reach, or may not reach:
		// the check refuses only what it is certain of, and leaves the
		// rest to the guard at run time.
		{"dws_notify after a proxy whose second handle_response entry never runs", `[{"handle":[` + notify + `,{"handler":"reverse_proxy","handle_response":[{"routes":[{"handle":[{"handler":"static_response"}]}]},{"routes":[{"handle":[{"handler":"headers"}]}]}]},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[2]", "routes[0].handle[1]", "reverse_proxy", false}}},
		{"dws_notify after a proxy whose matched handle_response goes on", `[{"handle":[` + notify + `,{"handler":"reverse_proxy","handle_response":[{"match":{"status_code":[2]},"routes":[{"handle":[{"handler":"headers"}]}]}]},` + notify + `]}]`, nil},
		{"dws_notify behind a header matcher", `[{"handle":[` + notifyAPI + `]},{"match":[{"header":{"Client-Id":["2"]}}],"handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]`, nil},
		{"dws_notify behind a path matcher after a rewrite", `[{"handle":[{"handler":"rewrite","uri":"/x{uri}"}]},{"handle":[` + notifyAPI + `]},{"match":[{"path":["/other"]}],"handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]`, nil},
		{"sibling dws_notify routes by Client-Id", `[{"match":[{"header":{"Client-Id":["1"]}}],"handle":[` + notifyAPI + `]},{"match":[{"header":{"Client-Id":["2"]}}],"handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]`, nil},
		{"sibling dws_notify routes by Client-Id in a subroute", `[{"handle":[{"handler":"subroute","routes":[{"match":[{"header":{"Client-Id":["1"]}}],"handle":[` + notifyAPI + `]},{"match":[{"header":{"Client-Id":["2"]}}],"handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]}]}]`, nil},
		{"sibling dws_notify routes by host", `[{"match":[{"host":["a.example.com"]}],"handle":[` + notifyAPI + `]},{"match":[{"host":["b.example.com"]}],"handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]`, nil},
		{"sibling dws_notify routes by path, serving any path", `[{"match":[{"path":["/a/*"]}],"handle":[` + notifyAnyPath + `]},{"match":[{"path":["/b/*"]}],"handle":[` + notifyAnyPath + `]},{"handle":[` + proxy + `]}]`, nil},
		{"dws_notify behind a POST and header matcher", `[{"handle":[` + notifyAPI + `]},{"match":[{"method":["POST"],"header":{"X":["1"]}}],"handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]`, nil},
		{"dws_notify after a handler that may answer", `[{"handle":[` + notifyAPI + `,{"handler":"authentication"},` + notifyAPI + `,` + proxy + `]}]`, nil},
		{"dws_notify after a route of a group that may have matched", `[{"group":"g0","match":[{"header":{"X":["1"]}}],"handle":[{"handler":"vars"}]},{"handle":[` + notifyAPI + `]},{"group":"g0","handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]`, nil},
		{"handle blocks each with dws_notify and a proxy", `[{"group":"g0","match":[{"header":{"Client-Id":["1"]}}],"handle":[{"handler":"subroute","routes":[{"handle":[` + notifyAPI + `,` + proxy + `]}]}]},` +
			`{"group":"g0","handle":[{"handler":"subroute","routes":[{"handle":[` + notifyAPI + `,` + proxy + `]}]}]}]`, nil},
		{"handle blocks each with dws_notify, the proxy after them", `[{"group":"g0","match":[{"header":{"Client-Id":["1"]}}],"handle":[{"handler":"subroute","routes":[{"handle":[` + notifyAPI + `]}]}]},` +
			`{"group":"g0","handle":[{"handler":"subroute","routes":[{"handle":[` + notifyAPI + `]}]}]},{"handle":[` + proxy + `]}]`, nil},
		{"dws_notify behind a path matcher for other paths", `[{"handle":[` + notifyAPI + `]},{"match":[{"path":["/other/*"]}],"handle":[` + notify + `]},{"handle":[` + proxy + `]}]`, nil},
		{"dws_notify behind a GET matcher", `[{"handle":[` + notifyAPI + `]},{"match":[{"method":["GET"]}],"handle":[` + notifyAPI + `]},{"handle":[` + proxy + `]}]`, nil},
		{"dws_notify after a proxy", `[{"handle":[` + notify + `,` + proxy + `,` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[2]", "routes[0].handle[1]", "reverse_proxy", false}}},
		{"dws_notify after a responder for the api paths", `[{"handle":[` + notifyAPI + `]},{"match":[{"path":["/dws/*"]}],"handle":[{"handler":"static_response"}]},{"handle":[` + notifyAPI + `,` + proxy + `]}]`, nil},
		{"dws_notify after a matched terminal route", `[{"match":[{"host":["a"]}],"handle":[` + notifyAPI + `],"terminal":true},{"handle":[` + notifyAPI + `,` + proxy + `]}]`, nil},
		{"dws_notify after handle_response routes that answer", `[{"handle":[` + notify + `,{"handler":"reverse_proxy","handle_response":[{"routes":[{"handle":[{"handler":"static_response"}]}]}]},` + notify + `]}]`,
			[]Shadowed{{"routes[0].handle[2]", "routes[0].handle[1]", "reverse_proxy", false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			servers, err := RoutesFromJSON([]byte(`{"servers":{"srv0":{"listen":[":8080"],"routes":` + tc.route + `}}}`))
			if err != nil {
				t.Fatal(err)
			}
			got := shadowedIn("routes", servers["srv0"]["routes"], nil)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			err = CheckRouteOrder(servers)
			var re *RouteError
			if (err != nil) != (tc.want != nil) || (err != nil && !errors.As(err, &re)) {
				t.Fatalf("CheckRouteOrder: %v", err)
			}
		})
	}
}

// TestRouteOrderErrorNamesAll checks that the error names the server, the
// positions and the handler, and says what to do; and that the error and
// named routes are walked too.
func TestRouteOrderErrorNamesAll(t *testing.T) {
	servers, err := RoutesFromJSON([]byte(`{"servers":{
		"ok":{"routes":[{"handle":[{"handler":"dws_notify"},{"handler":"reverse_proxy"}]}]},
		"srv1":{"routes":[{"handle":[{"handler":"reverse_proxy"},{"handler":"dws_notify"}]}],
			"errors":{"routes":[{"handle":[{"handler":"static_response"},{"handler":"dws_notify"}]}]},
			"named_routes":{"n":{"handle":[{"handler":"file_server"},{"handler":"dws_notify"}]}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckRouteOrder(servers)
	var re *RouteError
	if !errors.As(err, &re) || re.Server != "srv1" || len(re.Shadowed) != 3 {
		t.Fatalf("got %#v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"server srv1: the dws_notify handler at routes[0].handle[1] never runs: the reverse_proxy at routes[0].handle[0] answers every request before it (it would forward them unverified)",
		"the dws_notify handler at errors.routes[0].handle[1] never runs: the static_response at errors.routes[0].handle[0]",
		"the dws_notify handler at named_routes.n.handle[1] never runs: the file_server at named_routes.n.handle[0]",
		"put dws_notify first in its route",
		"use handle blocks or the order global option instead of route",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

// TestRouteOrderTwoNotifyError checks the error of a dws_notify that
// another's forwards reach: both positions, what goes wrong, what to do
// instead, and none of the advice for a handler that never runs; and
// that a named route walked where it is defined and where it is invoked
// reports it once.
func TestRouteOrderTwoNotifyError(t *testing.T) {
	servers, err := RoutesFromJSON([]byte(`{"servers":{"srv0":{
		"routes":[{"handle":[{"handler":"dws_notify"},{"handler":"invoke","name":"n"}]}],
		"named_routes":{"n":{"handle":[{"handler":"dws_notify"},{"handler":"dws_notify"},{"handler":"reverse_proxy"}]}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckRouteOrder(servers)
	var re *RouteError
	if !errors.As(err, &re) {
		t.Fatalf("got %v", err)
	}
	want := []Shadowed{
		{"named_routes.n.handle[1]", "named_routes.n.handle[0]", "dws_notify", false},
		{"named_routes.n.handle[0]", "routes[0].handle[0]", "dws_notify", false},
	}
	if !reflect.DeepEqual(re.Shadowed, want) {
		t.Fatalf("got %+v, want %+v", re.Shadowed, want)
	}
	msg := err.Error()
	for _, want := range []string{
		"server srv0: the dws_notify handler at named_routes.n.handle[1] comes after the dws_notify handler at named_routes.n.handle[0] in the chain that one forwards to: " +
			"it would take the notifications the first forwards and answer them itself instead of the backend, and the first would acknowledge them to DWS as delivered",
		"; use one dws_notify per chain: one handler serves several Client-Ids (list them in client_id; every dws_public_key verifies them all), " +
			"or give each dws_notify a handle block of its own, with a matcher that picks its notifications (its api paths, or header Client-Id <id>) and a reverse_proxy after it",
		"`caddy adapt` shows these positions",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "put dws_notify first") {
		t.Errorf("error %q gives the advice for a handler that never runs", msg)
	}
}

// TestRouteOrderInvoke walks the named route an invoke handler runs like
// a subroute.
func TestRouteOrderInvoke(t *testing.T) {
	for _, tc := range []struct {
		name, routes, named string
		want                string
	}{
		{"invoked route proxies", `[{"handle":[{"handler":"invoke","name":"n"},{"handler":"dws_notify"}]}]`, `{"handle":[{"handler":"reverse_proxy"}]}`,
			"the dws_notify handler at routes[0].handle[1] never runs: the reverse_proxy at named_routes.n.handle[0] answers every request before it"},
		{"invoked route proxies some paths", `[{"handle":[{"handler":"invoke","name":"n"},{"handler":"dws_notify"}]}]`, `{"match":[{"path":["/x"]}],"handle":[{"handler":"reverse_proxy"}]}`, ""},
		{"invoked route goes on", `[{"handle":[{"handler":"invoke","name":"n"},{"handler":"dws_notify"}]}]`, `{"handle":[{"handler":"headers"}]}`, ""},
		{"invoked route invokes itself", `[{"handle":[{"handler":"invoke","name":"n"},{"handler":"dws_notify"}]}]`, `{"handle":[{"handler":"invoke","name":"n"}]}`, ""},
		{"unknown name", `[{"handle":[{"handler":"invoke","name":"m"},{"handler":"dws_notify"}]}]`, `{"handle":[{"handler":"reverse_proxy"}]}`, ""},
		{"invoked route with a dws_notify after one", `[{"handle":[{"handler":"dws_notify"},{"handler":"invoke","name":"n"}]}]`, `{"handle":[{"handler":"dws_notify"},{"handler":"reverse_proxy"}]}`,
			"the dws_notify handler at named_routes.n.handle[0] comes after the dws_notify handler at routes[0].handle[0] in the chain that one forwards to"},
		{"dws_notify after an invoked route with one", `[{"handle":[{"handler":"invoke","name":"n"},{"handler":"dws_notify"},{"handler":"reverse_proxy"}]}]`, `{"handle":[{"handler":"dws_notify"}]}`,
			"the dws_notify handler at routes[0].handle[1] comes after the dws_notify handler at named_routes.n.handle[0] in the chain that one forwards to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers, err := RoutesFromJSON([]byte(`{"servers":{"srv0":{"routes":` + tc.routes + `,"named_routes":{"n":` + tc.named + `}}}}`))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckRouteOrder(servers)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPathPatternMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"*.php", "/index.php", true},
		{"*.PHP", "/index.php", true},
		{"*.php", "/index.html", false},
		{"/app/*", "/app/index.php", true},
		{"/app/*", "/index.php", false},
		{"*index*", "/index.php", true},
		{"/index.php", "/index.php", true},
		{"/i?dex.php", "/index.php", true},
		{"/other.php", "/index.php", false},
	} {
		if got := pathPatternMatches(tc.pattern, tc.path); got != tc.want {
			t.Errorf("pathPatternMatches(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}
