package caddymodule

import (
	"errors"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/fileserver"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"

	"github.com/dwsnotify/dws_notify/config"
)

// checkRouteOrder refuses a config whose http app holds a dws_notify
// handler that never runs because a handler before it in its chain
// answers every request (config.CheckRouteOrder). It reads the
// provisioned http app: the start gate runs it at Start, when every
// handler is provisioned (the raw JSON is gone by then, so it reads the
// module values). Caddy provisions the http app with its handlers, and
// no module of this plugin runs after that while a config is only
// validated, so `caddy validate` cannot run it.
func checkRouteOrder(ctx caddy.Context) error {
	v, err := ctx.AppIfConfigured("http")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil
	}
	if err != nil {
		return err
	}
	app, ok := v.(*caddyhttp.App)
	if !ok {
		return nil
	}
	servers := make(map[string]map[string][]config.Route, len(app.Servers))
	for name, srv := range app.Servers {
		lists := map[string][]config.Route{"routes": routeModel(srv.Routes)}
		if srv.Errors != nil {
			lists["errors.routes"] = routeModel(srv.Errors.Routes)
		}
		for rn, r := range srv.NamedRoutes {
			if r != nil {
				lists["named_routes."+rn] = routeModel(caddyhttp.RouteList{*r})
			}
		}
		servers[name] = lists
	}
	return config.CheckRouteOrder(servers)
}

// routeModel translates provisioned routes into the check's model.
func routeModel(routes caddyhttp.RouteList) []config.Route {
	out := make([]config.Route, 0, len(routes))
	for _, r := range routes {
		m := config.Route{Matched: len(r.MatcherSets) > 0, Group: r.Group, Terminal: r.Terminal}
		if len(r.MatcherSets) == 1 && len(r.MatcherSets[0]) == 1 {
			switch mt := r.MatcherSets[0][0].(type) {
			case *caddyhttp.MatchPath:
				m.Paths = *mt
			case *fileserver.MatchFile:
				if len(r.Handlers) == 1 {
					if rw, ok := r.Handlers[0].(*rewrite.Rewrite); ok {
						m.FallbackPath = config.FallbackRewritePath(mt.TryFiles, mt.TryPolicy, rw.URI)
					}
				}
			}
		}
		for _, h := range r.Handlers {
			rh := config.RouteHandler{Name: caddy.GetModuleName(h)}
			switch h := h.(type) {
			case *caddyhttp.Subroute:
				rh.Routes = routeModel(h.Routes)
			case *fileserver.FileServer:
				rh.PassThru = h.PassThru
			}
			m.Handlers = append(m.Handlers, rh)
		}
		out = append(out, m)
	}
	return out
}
