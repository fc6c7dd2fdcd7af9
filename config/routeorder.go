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
// unverified). Caddy accepts such a config; this check finds it.
//
// It works on a small model of the http app's routes that both the raw
// JSON (RoutesFromJSON) and the provisioned app (caddymodule) translate
// into, so the rules live here once.

// NotifyHandlerName is the module name of the dws_notify HTTP handler.
const NotifyHandlerName = "dws_notify"

// Route is one route of a Caddy route list, as far as the order check
// needs it.
type Route struct {
	// Matched is whether the route has matcher sets (so it runs only for
	// some requests).
	Matched bool
	// Group is the route's group: only the first matching route of a
	// group runs.
	Group string
	// Terminal is whether no route after this one runs once it matched.
	Terminal bool
	// Handlers are the route's handlers, in order.
	Handlers []RouteHandler
	// Paths are the patterns of the route's path matcher when that is
	// its only matcher.
	Paths []string
	// FallbackPath is set when the route matches every request and
	// rewrites its path to this one unless a file named by the request
	// exists: the route a php_fastcgi directive writes for its
	// try_files, whose last entry (index.php) is the fallback.
	FallbackPath string
}

// RouteHandler is one handler of a route.
type RouteHandler struct {
	// Name is the module name ("reverse_proxy", "dws_notify", "subroute").
	Name string
	// PassThru is file_server's pass_thru.
	PassThru bool
	// Routes are a subroute's routes.
	Routes []Route
}

// answers reports whether h answers every request it gets without ever
// calling the handler after it. Only Caddy's standard handlers that do so
// by their nature are listed; any other handler may call the next one, so
// a dws_notify after it is not flagged.
func (h RouteHandler) answers() bool {
	switch h.Name {
	case "static_response", "error", "reverse_proxy":
		return true
	case "file_server":
		return !h.PassThru
	}
	return false
}

// Shadowed is a dws_notify handler that never runs: By, an earlier
// handler (or a terminal route) that every request reaching the chain
// meets first, answers it. The positions are JSON paths inside the server
// ("routes[0].handle[0].routes[1].handle[1]").
type Shadowed struct {
	Notify string
	By     string
	ByName string
}

// ShadowedNotifies finds the dws_notify handlers of one server's route
// list (base names it: "routes", "errors.routes") that never run.
func ShadowedNotifies(base string, routes []Route) []Shadowed {
	var w routeWalker
	w.list(routes, base, nil, nil)
	return w.found
}

type routeWalker struct{ found []Shadowed }

// list walks a route list whose handlers after it never run if inherited
// is set (the list itself is shadowed). outer holds the groups of the
// routes enclosing the list and of the routes before them: a route of
// one of those groups may be skipped. It returns what makes the list
// answer every request without calling the handler after it, if anything
// does: the first route that runs whenever the list does and either
// holds an answering handler or is terminal.
func (w *routeWalker) list(routes []Route, base string, outer map[string]bool, inherited *Shadowed) (ends *Shadowed) {
	seen := maps.Clone(outer)
	if seen == nil {
		seen = map[string]bool{}
	}
	ahead := inherited
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
		matchesAll := !r.Matched || r.FallbackPath != "" ||
			(rewritten != "" && slices.ContainsFunc(r.Paths, func(p string) bool { return pathPatternMatches(p, rewritten) }))
		always := matchesAll && (r.Group == "" || !seen[r.Group])
		if r.Group != "" {
			seen[r.Group] = true
		}
		if always && r.FallbackPath != "" {
			next = r.FallbackPath
		}
		ans := w.route(r, path, ahead, seen)
		if !always || ends != nil {
			continue
		}
		switch {
		case ans != nil:
			ends = ans
		case r.Terminal:
			ends = &Shadowed{By: path, ByName: "terminal route"}
		}
		if ahead == nil {
			ahead = ends
		}
	}
	return ends
}

// route walks one route's handlers, reporting each dws_notify that ahead
// (or an answering handler before it in the route) pre-empts, and returns
// the route's first handler that answers every request, if any.
func (w *routeWalker) route(r Route, path string, ahead *Shadowed, groups map[string]bool) (first *Shadowed) {
	for k, h := range r.Handlers {
		hp := fmt.Sprintf("%s.handle[%d]", path, k)
		if h.Name == NotifyHandlerName && ahead != nil {
			w.found = append(w.found, Shadowed{Notify: hp, By: ahead.By, ByName: ahead.ByName})
		}
		var ans *Shadowed
		if h.Name == "subroute" {
			ans = w.list(h.Routes, hp+".routes", groups, ahead)
		} else if h.answers() {
			ans = &Shadowed{By: hp, ByName: h.Name}
		}
		if ans != nil && first == nil {
			first = ans
			if ahead == nil {
				ahead = ans
			}
		}
	}
	return first
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
	for i, s := range e.Shadowed {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "server %s: the dws_notify handler at %s never runs: the %s at %s answers every request before it",
			e.Server, s.Notify, s.ByName, s.By)
		if s.ByName == "reverse_proxy" {
			b.WriteString(" (it would forward them unverified)")
		}
	}
	b.WriteString("; put dws_notify first in its route (before reverse_proxy, respond, file_server, error), " +
		"or use handle blocks or the order global option instead of route (docs/configuration.md, \"Order in a route\"); " +
		"`caddy adapt` shows these positions")
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
		for _, base := range slices.Sorted(maps.Keys(lists)) {
			for _, sh := range ShadowedNotifies(base, lists[base]) {
				if strings.HasPrefix(base, "named_routes.") {
					// A named route is one route, not a list.
					sh.Notify = base + strings.TrimPrefix(sh.Notify, base+"[0]")
					sh.By = base + strings.TrimPrefix(sh.By, base+"[0]")
				}
				found = append(found, sh)
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
		r := Route{Matched: len(jr.Match) > 0, Group: jr.Group, Terminal: jr.Terminal}
		var rewriteURI string
		for _, raw := range jr.Handle {
			var h struct {
				Handler  string      `json:"handler"`
				PassThru bool        `json:"pass_thru"`
				Routes   []jsonRoute `json:"routes"`
				URI      string      `json:"uri"`
			}
			if err := json.Unmarshal(raw, &h); err != nil {
				return nil, err
			}
			if h.Handler == "rewrite" && len(jr.Handle) == 1 {
				rewriteURI = h.URI
			}
			rh := RouteHandler{Name: h.Handler, PassThru: h.PassThru}
			if h.Handler == "subroute" {
				var err error
				if rh.Routes, err = fromJSONRoutes(h.Routes); err != nil {
					return nil, err
				}
			}
			r.Handlers = append(r.Handlers, rh)
		}
		if len(jr.Match) == 1 {
			var set struct {
				Path []string `json:"path"`
				File *struct {
					TryFiles  []string `json:"try_files"`
					TryPolicy string   `json:"try_policy"`
				} `json:"file"`
			}
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(jr.Match[0], &keys); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(jr.Match[0], &set); err != nil {
				return nil, err
			}
			switch {
			case len(keys) == 1 && set.Path != nil:
				r.Paths = set.Path
			case len(keys) == 1 && set.File != nil:
				r.FallbackPath = FallbackRewritePath(set.File.TryFiles, set.File.TryPolicy, rewriteURI)
			}
		}
		out = append(out, r)
	}
	return out, nil
}
