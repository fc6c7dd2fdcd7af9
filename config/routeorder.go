package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// The route-order check: a dws_notify handler that some handler before it
// in the same chain always pre-empts never runs, so requests meant for it
// reach whatever answers them instead (with reverse_proxy: the backend,
// unverified). Nor may a dws_notify come after another in the chain the
// first forwards to: it would answer the forwarded notifications in place
// of the backend (Shadowed with ByName dws_notify). Caddy accepts such
// configs; this check finds them.
//
// The two rules differ in what they refuse. A handler that never runs is
// refused when a handler before it answers every request (or every one
// it verifies). A dws_notify behind another is refused only when a
// forward of the first certainly reaches it: every route on the way takes
// the forward for certain (no matcher, or a matcher set of only path and
// method matchers that takes a POST to each of the first's api paths),
// every handler on the way calls the next one, and no handler before may
// have rewritten the path. What the check cannot prove (a header or host
// matcher, a handler that may answer, a rewrite) it leaves to the guard
// at run time (caddymodule/onechain.go), which answers such a forward
// with 500 and has the first dws_notify count a backend failure.
//
// It works on a small model of the http app's routes that both the raw
// JSON (RoutesFromJSON) and the provisioned app (caddymodule) translate
// into, so the rules live here once.

// NotifyHandlerName is the module name of the dws_notify HTTP handler.
const NotifyHandlerName = "dws_notify"

// Route is one route of a Caddy route list, as far as the order check
// needs it.
type Route struct {
	// Match are the route's matcher sets: the route runs for a request
	// one of them matches. None: it runs for every request.
	Match []MatcherSet
	// Group is the route's group: only the first matching route of a
	// group runs.
	Group string
	// Terminal is whether no route after this one runs once it matched.
	Terminal bool
	// Handlers are the route's handlers, in order.
	Handlers []RouteHandler
	// FallbackPath is set when the route matches every request and
	// rewrites its path to this one unless a file named by the request
	// exists: the route a php_fastcgi directive writes for its
	// try_files, whose last entry (index.php) is the fallback.
	FallbackPath string
}

// MatcherSet is one matcher set of a route: it matches a request that
// all of its matchers match.
type MatcherSet struct {
	// Path are the patterns of its path matcher; nil if it has none.
	Path []string
	// Method are the methods of its method matcher; nil if it has none.
	Method []string
	// Other is whether it has any other matcher (which the check does
	// not read, so it may match any request or none).
	Other bool
}

// RouteHandler is one handler of a route.
type RouteHandler struct {
	// Name is the module name ("reverse_proxy", "dws_notify", "subroute").
	Name string
	// PassThru is file_server's pass_thru.
	PassThru bool
	// Routes are a subroute's routes.
	Routes []Route
	// Responses are a reverse_proxy's handle_response entries.
	Responses []ResponseHandler
	// Invoke is the named route an invoke handler runs.
	Invoke string
	// APIPaths are a dws_notify handler's api paths, "" for an api
	// served at any path; nil if not known.
	APIPaths []string
}

// ResponseHandler is one handle_response entry of a reverse_proxy. Caddy
// runs the first entry whose matcher takes the backend's response; when
// none does, the proxy writes the response.
type ResponseHandler struct {
	// Match is whether the entry has a matcher: without one it takes
	// every response.
	Match bool
	// StatusCode is whether the entry sets a status code: the proxy then
	// writes the response with it, and the routes do not run.
	StatusCode bool
	// Routes are the entry's routes, which Caddy runs with the handler
	// after the proxy as their next: unless they answer, the chain goes
	// on after the proxy.
	Routes []Route
}

// allPaths reports whether a path matcher with these patterns matches
// every request path.
func allPaths(patterns []string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return p == "*" || p == "/*" })
}

// matchesAll reports whether the set matches every request: no matcher
// at all, or only a path matcher with a pattern for every path.
func (m MatcherSet) matchesAll() bool {
	return !m.Other && m.Method == nil && (m.Path == nil || allPaths(m.Path))
}

// takesNotifications reports whether the set matches every request a
// dws_notify handler serving apiPaths verifies (a POST to one of the
// paths, as it reached Caddy): it has only path and method matchers, the
// methods include POST, and a pattern matches every api path. A path
// counts only if no handler before may have rewritten it (rewritten):
// dws_notify matches the original path, the path matcher the current one.
func (m MatcherSet) takesNotifications(apiPaths []string, rewritten bool) bool {
	if m.Other || (m.Method != nil && !slices.Contains(m.Method, "POST")) {
		return false
	}
	if m.Path == nil || allPaths(m.Path) {
		return true
	}
	if rewritten || len(apiPaths) == 0 {
		return false
	}
	for _, p := range apiPaths {
		if p == "" || !slices.ContainsFunc(m.Path, func(pattern string) bool {
			return !strings.ContainsAny(pattern, "{%") && pathPatternMatches(pattern, p)
		}) {
			return false
		}
	}
	return true
}

// matchesAll reports whether the route runs for every request that
// reaches it (group aside).
func (r Route) matchesAll() bool {
	return len(r.Match) == 0 || slices.ContainsFunc(r.Match, MatcherSet.matchesAll)
}

// onlyPaths returns the patterns of the route's path matcher when that is
// its only matcher.
func (r Route) onlyPaths() []string {
	if len(r.Match) == 1 && !r.Match[0].Other && r.Match[0].Method == nil {
		return r.Match[0].Path
	}
	return nil
}

// answers reports whether h answers every request it gets without ever
// calling the handler after it, by itself. Only Caddy's standard handlers
// that do so by their nature are listed; any other handler may call the
// next one, so a dws_notify after it is not flagged. A reverse_proxy with
// handle_response entries is walked instead (routeWalker.proxy).
func (h RouteHandler) answers() bool {
	switch h.Name {
	case "static_response", "error", "metrics", "copy_response":
		return true
	case "reverse_proxy":
		return len(h.Responses) == 0
	case "file_server":
		return !h.PassThru
	}
	return false
}

// passesOn reports whether h calls the handler after it for every
// request, whatever the request (a standard handler that never answers
// by itself); a subroute does when each of its routes does.
func (h RouteHandler) passesOn() bool {
	switch h.Name {
	case "headers", "encode", "vars", "map", "request_body", "log_append", "tracing", "push",
		"templates", "rewrite", "copy_response_headers":
		return true
	case "subroute":
		return !slices.ContainsFunc(h.Routes, func(r Route) bool { return !r.passesOn() })
	}
	return false
}

// passesOn reports whether every request the route runs for goes on to
// what comes after it.
func (r Route) passesOn() bool {
	return !r.Terminal && !slices.ContainsFunc(r.Handlers, func(h RouteHandler) bool { return !h.passesOn() })
}

// keepsPath reports whether h is a standard handler that never changes
// the request's path (and does not run routes of its own).
func keepsPath(name string) bool {
	switch name {
	case NotifyHandlerName, "static_response", "error", "metrics", "reverse_proxy", "file_server",
		"headers", "encode", "vars", "map", "request_body", "authentication", "log_append",
		"templates", "tracing", "push", "copy_response", "copy_response_headers":
		return true
	}
	return false
}

// Shadowed is a dws_notify handler that never runs: By, an earlier
// handler (or a terminal route) that every request reaching the chain
// meets first, answers it. The positions are JSON paths inside the server
// ("routes[0].handle[0].routes[1].handle[1]").
//
// ByName is NotifyHandlerName for a dws_notify handler that is the next
// of another one, at By, instead of never running: what By forwards
// certainly reaches it, and it would answer that itself, in place of the backend,
// with a DWS envelope the first takes for the backend's answer (a
// notification acknowledged that no backend got). A dws_notify answers
// every request it gets, so only what it forwards goes on in its chain.
type Shadowed struct {
	Notify string
	By     string
	ByName string
	// ForAPIs is set when By answers not every request but every one the
	// dws_notify handler verifies: a matcher of its route (or of a route
	// around it) takes every POST to the handler's api paths.
	ForAPIs bool
}

// blocker is what answers the requests of a chain before a handler: By
// answers every request that each of covers matches (every request if
// there are none).
type blocker struct {
	by     Shadowed
	covers []coverSet
	// afterNotify is set when a dws_notify handler came before By in the
	// walk: the requests it answers for its matchers may have been
	// verified, so it does not count for a dws_notify after it unless it
	// answers every request.
	afterNotify bool
}

// coverSet is a matcher set a blocker needs, and whether a handler before
// it may have rewritten the path.
type coverSet struct {
	set       MatcherSet
	rewritten bool
}

// blocks reports whether b answers every notification a dws_notify handler
// serving apiPaths would verify.
func (b blocker) blocks(apiPaths []string) bool {
	if len(b.covers) > 0 && b.afterNotify {
		return false
	}
	for _, c := range b.covers {
		if !c.set.takesNotifications(apiPaths, c.rewritten) {
			return false
		}
	}
	return true
}

// shadowedIn finds the dws_notify handlers of one server's route list
// (base names it: "routes", "errors.routes") that never run; named are
// the server's named routes (by name), which invoke handlers run.
func shadowedIn(base string, routes []Route, named map[string][]Route) []Shadowed {
	w := routeWalker{named: named, invoking: map[string]bool{}, groups: map[string]bool{}}
	w.list(routes, base, nil, nil)
	return w.found
}

type routeWalker struct {
	found    []Shadowed
	named    map[string][]Route
	invoking map[string]bool
	// quiet is set while walking a named route for an invoke: its
	// dws_notify handlers are reported where the route is listed.
	quiet int
	// rewritten is set once the walk passed a handler that may change
	// the request's path, sawNotify once it passed a dws_notify handler.
	// The walk is in the config's order, so nothing that runs before a
	// handler comes after it in the walk.
	rewritten, sawNotify bool
	// fwd are the dws_notify handlers walked so far whose forwards
	// certainly reach the handler walked next.
	fwd []*forwarder
	// groups are the groups of every route walked so far: a route of one
	// of them may be skipped.
	groups map[string]bool
	// namedBase is the named route an invoke has the walk in ("" when
	// none): the positions of the forwarders and of the handlers they
	// reach are written as CheckRouteOrder writes a named route's.
	namedBase string
}

// forwarder is a dws_notify handler of the walk, for the handlers after
// it that what it forwards (a POST to one of its api paths) certainly
// reaches.
type forwarder struct {
	at       string
	apiPaths []string
	// groups are the groups of the routes the forwarded request matched
	// on its way to the handler: a later route of one of them is skipped.
	groups map[string]bool
}

// entry is what the check knows of whether a forward runs a route.
type entry int

const (
	entryUnknown entry = iota // it may or may not
	entryCertain              // it does
	entryNever                // it does not
)

// enters tells whether a request f forwarded runs route r. It does for
// certain when r is of no group a route before may have matched (the
// walk's groups before r), and r has no matcher or a matcher set that
// certainly takes a POST to each of f's api paths (MatcherSet.
// takesNotifications). It does not when f matched a route of r's group,
// or every matcher set of r refuses the forward by its method or path.
func (f *forwarder) enters(r Route, groupSeen, rewritten bool) entry {
	if r.Group != "" && f.groups[r.Group] {
		return entryNever
	}
	if len(r.Match) > 0 && !slices.ContainsFunc(r.Match, func(m MatcherSet) bool { return !m.refusesForward(f.apiPaths, rewritten) }) {
		return entryNever
	}
	if groupSeen {
		return entryUnknown
	}
	if len(r.Match) == 0 || slices.ContainsFunc(r.Match, func(m MatcherSet) bool { return m.takesNotifications(f.apiPaths, rewritten) }) {
		return entryCertain
	}
	return entryUnknown
}

// refusesForward reports whether the set never matches a POST to one of
// apiPaths: its method matcher lacks POST, or its path matcher matches
// none of the paths (which are all known, and no handler before may have
// rewritten the path). Its other matchers do not matter: all of a set's
// matchers must match.
func (m MatcherSet) refusesForward(apiPaths []string, rewritten bool) bool {
	if m.Method != nil && !slices.Contains(m.Method, "POST") {
		return true
	}
	if m.Path == nil || allPaths(m.Path) || rewritten || len(apiPaths) == 0 || slices.Contains(apiPaths, "") {
		return false
	}
	return !slices.ContainsFunc(apiPaths, func(p string) bool {
		return slices.ContainsFunc(m.Path, func(pattern string) bool {
			return strings.ContainsAny(pattern, "{%") || pathPatternMatches(pattern, p)
		})
	})
}

// pos is the position p of the walk as the report writes it.
func (w *routeWalker) pos(p string) string {
	if w.namedBase != "" {
		return namedRoutePath(w.namedBase, p)
	}
	return p
}

// list walks a route list that the blockers in ahead already pre-empt
// (for the requests they cover). outer holds the groups of the routes
// enclosing the list and of the routes before them: a route of one of
// those groups may be skipped. It returns what makes the list answer a
// request without calling the handler after it: routes that run
// whenever the list does (for the requests their matchers cover) and
// either hold an answering handler or are terminal.
func (w *routeWalker) list(routes []Route, base string, outer map[string]bool, ahead []blocker) (ends []blocker) {
	seen := maps.Clone(outer)
	if seen == nil {
		seen = map[string]bool{}
	}
	// rewritten is the path every request reaching this route has when
	// the route before it is a fallback rewrite (php_fastcgi's: the
	// notify paths are no files under the site root). Only the next route
	// is trusted with it: a later one may rewrite the path again.
	rewritten, next := "", ""
	for i, r := range routes {
		rewritten, next = next, ""
		path := fmt.Sprintf("%s[%d]", base, i)
		// A route may be skipped if it has matchers (unless they match
		// every request, or every rewritten path), or if a route of its
		// group may have matched before it.
		matchesAll := r.matchesAll() || r.FallbackPath != "" ||
			(rewritten != "" && slices.ContainsFunc(r.onlyPaths(), func(p string) bool { return pathPatternMatches(p, rewritten) }))
		reached := r.Group == "" || !seen[r.Group]
		if r.Group != "" {
			seen[r.Group] = true
		}
		if reached && matchesAll && r.FallbackPath != "" {
			next = r.FallbackPath
		}
		// The matcher sets the route's blockers need, each on its own.
		var alts [][]coverSet
		if matchesAll {
			alts = [][]coverSet{nil}
		} else {
			for _, m := range r.Match {
				alts = append(alts, []coverSet{{set: m, rewritten: w.rewritten}})
			}
		}
		// The forwarders that certainly run this route walk it; those
		// that certainly skip it wait for the next one, as do those that
		// may run it when it passes every request on. The others may stop
		// in it: what they reach after it is not certain.
		groupSeen := r.Group != "" && w.groups[r.Group]
		if r.Group != "" {
			w.groups[r.Group] = true
		}
		var held, pass []*forwarder
		for _, f := range w.fwd {
			switch f.enters(r, groupSeen, w.rewritten) {
			case entryCertain:
				pass = append(pass, f)
			case entryNever:
				held = append(held, f)
			default:
				if r.passesOn() {
					held = append(held, f)
				}
			}
		}
		w.fwd = pass
		got := w.route(r, path, ahead, seen)
		// What comes out of the route matched it (or was made in it).
		for _, f := range w.fwd {
			if r.Group != "" {
				f.groups[r.Group] = true
			}
		}
		if r.Terminal {
			// Caddy runs nothing after a terminal route that matched.
			w.fwd = nil
		}
		w.fwd = append(held, w.fwd...)
		if r.Terminal {
			got = append(got, blocker{by: Shadowed{By: path, ByName: "terminal route"}, afterNotify: w.sawNotify})
		}
		if !reached {
			continue
		}
		var mine []blocker
		for _, alt := range alts {
			for _, b := range got {
				mine = append(mine, blocker{by: b.by, covers: slices.Concat(alt, b.covers), afterNotify: b.afterNotify})
			}
		}
		ends = append(ends, mine...)
		ahead = slices.Concat(ahead, mine)
	}
	return ends
}

// route walks one route's handlers, reporting each dws_notify that the
// blockers in ahead (or an answering handler before it in the route)
// pre-empt, and returns what in the route answers requests.
func (w *routeWalker) route(r Route, path string, ahead []blocker, groups map[string]bool) (ends []blocker) {
	for k, h := range r.Handlers {
		hp := fmt.Sprintf("%s.handle[%d]", path, k)
		if h.Name == NotifyHandlerName {
			shadowed := false
			if w.quiet == 0 {
				if i := slices.IndexFunc(ahead, func(b blocker) bool { return b.blocks(h.APIPaths) }); i >= 0 {
					sh := ahead[i].by
					sh.Notify, sh.ForAPIs = hp, len(ahead[i].covers) > 0
					w.found = append(w.found, sh)
					shadowed = true
				}
			}
			// Reported even inside an invoked named route: what comes
			// before the invoke forwards into it.
			if n := len(w.fwd); n > 0 && !shadowed {
				w.found = append(w.found, Shadowed{Notify: w.pos(hp), By: w.fwd[n-1].at, ByName: NotifyHandlerName})
			}
			w.sawNotify = true
			// It answers every request it gets (a forwarded one with 500,
			// caddymodule/onechain.go): only its own forwards go on.
			w.fwd = []*forwarder{{at: w.pos(hp), apiPaths: h.APIPaths, groups: map[string]bool{}}}
		}
		var got []blocker
		switch {
		case h.Name == "subroute":
			got = w.list(h.Routes, hp+".routes", groups, ahead)
		case h.Name == "invoke":
			got = w.invoke(h.Invoke, groups)
		case h.Name == "reverse_proxy" && len(h.Responses) > 0:
			if w.proxyAnswers(h, hp, groups, ahead) {
				got = []blocker{{by: Shadowed{By: hp, ByName: h.Name}, afterNotify: w.sawNotify}}
				w.fwd = nil
			}
		case h.answers():
			got = []blocker{{by: Shadowed{By: hp, ByName: h.Name}, afterNotify: w.sawNotify}}
			// It answers every forward that reaches it.
			w.fwd = nil
		case h.Name != NotifyHandlerName && !h.passesOn():
			// It may answer: what comes after it is not certainly reached.
			w.fwd = nil
		}
		if !keepsPath(h.Name) && h.Name != "subroute" && h.Name != "invoke" {
			w.rewritten = true
		}
		ends = append(ends, got...)
		ahead = slices.Concat(ahead, got)
	}
	return ends
}

// proxyAnswers walks the handle_response routes of a reverse_proxy and
// reports whether it answers every request: each entry that may run
// either sets a status code or has routes that answer every request they
// get. (When no entry takes the backend's response, the proxy writes it;
// no entry after one without a matcher ever runs.)
//
// A forward that reaches the proxy certainly runs an entry's routes only
// when that is the first entry and has no matcher (Caddy runs the first
// entry that takes the response); it goes on after the proxy only out of
// those routes. The forwards of a dws_notify inside an entry's routes go
// on after the proxy if they come out of them.
func (w *routeWalker) proxyAnswers(h RouteHandler, hp string, groups map[string]bool, ahead []blocker) bool {
	answers := true
	before, after := w.fwd, []*forwarder{}
	for i, rh := range h.Responses {
		if !rh.StatusCode {
			w.fwd = nil
			if i == 0 && !rh.Match {
				w.fwd = slices.Clone(before)
			}
			got := w.list(rh.Routes, fmt.Sprintf("%s.handle_response[%d].routes", hp, i), groups, ahead)
			if !slices.ContainsFunc(got, func(b blocker) bool { return len(b.covers) == 0 }) {
				answers = false
			}
			for _, f := range w.fwd {
				if !slices.Contains(after, f) {
					after = append(after, f)
				}
			}
		}
		if !rh.Match {
			// It takes every response: no entry after it ever runs.
			break
		}
	}
	w.fwd = after
	return answers
}

// invoke returns what answers requests in the named route an invoke
// handler runs, walked like a subroute of one route (a name that is not
// there, or that invokes itself, answers nothing here).
func (w *routeWalker) invoke(name string, groups map[string]bool) []blocker {
	routes, ok := w.named[name]
	if !ok || w.invoking[name] {
		return nil
	}
	w.invoking[name] = true
	w.quiet++
	base := "named_routes." + name
	outerBase := w.namedBase
	w.namedBase = base
	got := w.list(routes, base, groups, nil)
	w.namedBase = outerBase
	w.quiet--
	delete(w.invoking, name)
	for i := range got {
		got[i].by.By = namedRoutePath(base, got[i].by.By)
	}
	return got
}

// namedRoutePath writes a position inside the named route at base
// without the list index the walk gave it: a named route is one route,
// not a list (named_routes.n[0].handle[1] is named_routes.n.handle[1]).
// A position elsewhere (or already written so) is returned as it is.
func namedRoutePath(base, p string) string {
	if rest, ok := strings.CutPrefix(p, base+"[0]"); ok {
		return base + rest
	}
	return p
}

// pathPatternMatches reports whether a pattern of Caddy's path matcher
// matches p: a leading or trailing * is a suffix or prefix match, both
// a substring match, other patterns a glob or an exact path; case does
// not matter.
func pathPatternMatches(pattern, p string) bool {
	pattern, p = strings.ToLower(pattern), strings.ToLower(p)
	switch {
	case len(pattern) > 1 && strings.HasPrefix(pattern, "*") && strings.HasSuffix(pattern, "*"):
		return strings.Contains(p, pattern[1:len(pattern)-1])
	case strings.HasPrefix(pattern, "*") && !strings.Contains(pattern[1:], "*"):
		return strings.HasSuffix(p, pattern[1:])
	case strings.HasSuffix(pattern, "*") && !strings.Contains(pattern[:len(pattern)-1], "*"):
		return strings.HasPrefix(p, pattern[:len(pattern)-1])
	}
	ok, err := path.Match(pattern, p)
	return err == nil && ok
}

// FallbackRewritePath is the path a route rewrites every request to when
// its one matcher is a file matcher with the try_policy
// first_exist_fallback and its one handler a rewrite to the file it found
// (what php_fastcgi writes): the last try_files entry, if that holds no
// placeholder; "" for any other route.
func FallbackRewritePath(tryFiles []string, tryPolicy, rewriteURI string) string {
	if tryPolicy != "first_exist_fallback" || len(tryFiles) == 0 || rewriteURI != "{http.matchers.file.relative}" {
		return ""
	}
	last := tryFiles[len(tryFiles)-1]
	if last == "" || strings.ContainsAny(last, "{}*?[") {
		return ""
	}
	return "/" + strings.TrimPrefix(last, "/")
}

// RouteError is a server whose route list holds dws_notify handlers
// that never run.
type RouteError struct {
	Server   string
	Shadowed []Shadowed
}

func (e *RouteError) Error() string {
	var b strings.Builder
	shadowed, chained := false, false
	for i, s := range e.Shadowed {
		if i > 0 {
			b.WriteString("; ")
		}
		if s.ByName == NotifyHandlerName {
			chained = true
			fmt.Fprintf(&b, "server %s: the dws_notify handler at %s comes after the dws_notify handler at %s in the chain that one forwards to: "+
				"it would take the notifications the first forwards and answer them itself instead of the backend, and the first would acknowledge them to DWS as delivered",
				e.Server, s.Notify, s.By)
			continue
		}
		shadowed = true
		what := "every request"
		if s.ForAPIs {
			what = "every request for its api paths"
		}
		fmt.Fprintf(&b, "server %s: the dws_notify handler at %s never runs: the %s at %s answers %s before it",
			e.Server, s.Notify, s.ByName, s.By, what)
		if s.ByName == "reverse_proxy" {
			b.WriteString(" (it would forward them unverified)")
		}
	}
	if shadowed {
		b.WriteString("; put dws_notify first in its route (before reverse_proxy, respond, file_server, error), " +
			"or use handle blocks or the order global option instead of route (docs/configuration.md, \"Order in a route\")")
	}
	if chained {
		b.WriteString("; use one dws_notify per chain: one handler serves several Client-Ids (list them in client_id; every dws_public_key verifies them all), " +
			"or give each dws_notify a handle block of its own, with a matcher that picks its notifications (its api paths, or header Client-Id <id>) " +
			"and a reverse_proxy after it (docs/configuration.md, \"One dws_notify per chain\")")
	}
	b.WriteString("; `caddy adapt` shows these positions")
	return b.String()
}

// CheckRouteOrder returns a *RouteError for the first server (by name)
// that holds a dws_notify handler which never runs, nil if none does.
// servers maps the server name to its route lists, keyed by their JSON
// path ("routes", "errors.routes", "named_routes.x": a named route as
// a list of one).
func CheckRouteOrder(servers map[string]map[string][]Route) error {
	for _, name := range slices.Sorted(maps.Keys(servers)) {
		var found []Shadowed
		lists := servers[name]
		named := map[string][]Route{}
		for base, routes := range lists {
			if rn, ok := strings.CutPrefix(base, "named_routes."); ok {
				named[rn] = routes
			}
		}
		for _, base := range slices.Sorted(maps.Keys(lists)) {
			for _, sh := range shadowedIn(base, lists[base], named) {
				if strings.HasPrefix(base, "named_routes.") {
					sh.Notify = namedRoutePath(base, sh.Notify)
					sh.By = namedRoutePath(base, sh.By)
				}
				// A named route is walked where it is defined and where it
				// is invoked: what both find is reported once.
				if !slices.Contains(found, sh) {
					found = append(found, sh)
				}
			}
		}
		if len(found) > 0 {
			return &RouteError{Server: name, Shadowed: found}
		}
	}
	return nil
}

// RoutesFromJSON reads the route lists of every server of an http app's
// JSON config ({"servers": {...}}) into the model CheckRouteOrder takes.
func RoutesFromJSON(httpApp json.RawMessage) (map[string]map[string][]Route, error) {
	var app struct {
		Servers map[string]struct {
			Routes []jsonRoute `json:"routes"`
			Errors *struct {
				Routes []jsonRoute `json:"routes"`
			} `json:"errors"`
			NamedRoutes map[string]jsonRoute `json:"named_routes"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(httpApp, &app); err != nil {
		return nil, fmt.Errorf("reading the http app: %w", err)
	}
	out := make(map[string]map[string][]Route, len(app.Servers))
	for name, srv := range app.Servers {
		lists := map[string][]Route{}
		var err error
		if lists["routes"], err = fromJSONRoutes(srv.Routes); err != nil {
			return nil, fmt.Errorf("server %s: %w", name, err)
		}
		if srv.Errors != nil {
			if lists["errors.routes"], err = fromJSONRoutes(srv.Errors.Routes); err != nil {
				return nil, fmt.Errorf("server %s: errors: %w", name, err)
			}
		}
		for rn, r := range srv.NamedRoutes {
			if lists["named_routes."+rn], err = fromJSONRoutes([]jsonRoute{r}); err != nil {
				return nil, fmt.Errorf("server %s: named route %s: %w", name, rn, err)
			}
		}
		out[name] = lists
	}
	return out, nil
}

type jsonRoute struct {
	Group    string            `json:"group"`
	Match    []json.RawMessage `json:"match"`
	Handle   []json.RawMessage `json:"handle"`
	Terminal bool              `json:"terminal"`
}

func fromJSONRoutes(in []jsonRoute) ([]Route, error) {
	out := make([]Route, 0, len(in))
	for _, jr := range in {
		r := Route{Group: jr.Group, Terminal: jr.Terminal}
		var rewriteURI string
		for _, raw := range jr.Handle {
			var h struct {
				Handler        string      `json:"handler"`
				PassThru       bool        `json:"pass_thru"`
				Routes         []jsonRoute `json:"routes"`
				URI            string      `json:"uri"`
				Name           string      `json:"name"`
				HandleResponse []struct {
					Match      json.RawMessage `json:"match"`
					StatusCode json.RawMessage `json:"status_code"`
					Routes     []jsonRoute     `json:"routes"`
				} `json:"handle_response"`
				API []struct {
					Path string `json:"path"`
				} `json:"api"`
			}
			if err := json.Unmarshal(raw, &h); err != nil {
				return nil, err
			}
			if h.Handler == "rewrite" && len(jr.Handle) == 1 {
				rewriteURI = h.URI
			}
			rh := RouteHandler{Name: h.Handler, PassThru: h.PassThru}
			var err error
			switch h.Handler {
			case "subroute":
				if rh.Routes, err = fromJSONRoutes(h.Routes); err != nil {
					return nil, err
				}
			case "invoke":
				rh.Invoke = h.Name
			case "reverse_proxy":
				for _, hr := range h.HandleResponse {
					status := string(hr.StatusCode)
					match := string(hr.Match)
					resp := ResponseHandler{
						Match:      match != "" && match != "null",
						StatusCode: status != "" && status != `""` && status != "null",
					}
					if resp.Routes, err = fromJSONRoutes(hr.Routes); err != nil {
						return nil, err
					}
					rh.Responses = append(rh.Responses, resp)
				}
			case NotifyHandlerName:
				for _, a := range h.API {
					rh.APIPaths = append(rh.APIPaths, a.Path)
				}
			}
			r.Handlers = append(r.Handlers, rh)
		}
		var keys map[string]json.RawMessage // of the last matcher set read
		for _, raw := range jr.Match {
			keys = nil
			if err := json.Unmarshal(raw, &keys); err != nil {
				return nil, err
			}
			var set MatcherSet
			for k, v := range keys {
				var list []string
				switch {
				case k == "path" && json.Unmarshal(v, &list) == nil && list != nil:
					set.Path = list
				case k == "method" && json.Unmarshal(v, &list) == nil && list != nil:
					// Caddy's method matcher upper-cases its methods when
					// it is provisioned (the provisioned model has them so).
					for i := range list {
						list[i] = strings.ToUpper(list[i])
					}
					set.Method = list
				default:
					set.Other = true
				}
			}
			r.Match = append(r.Match, set)
		}
		if len(jr.Match) == 1 {
			var set struct {
				File *struct {
					TryFiles  []string `json:"try_files"`
					TryPolicy string   `json:"try_policy"`
				} `json:"file"`
			}
			if err := json.Unmarshal(jr.Match[0], &set); err != nil {
				return nil, err
			}
			if len(keys) == 1 && set.File != nil {
				r.FallbackPath = FallbackRewritePath(set.File.TryFiles, set.File.TryPolicy, rewriteURI)
			}
		}
		out = append(out, r)
	}
	return out, nil
}
