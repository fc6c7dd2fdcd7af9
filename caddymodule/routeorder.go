package caddymodule

import (
	"errors"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/fileserver"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"

	"github.com/dwsnotify/dws_notify/config"
)

// checkRouteOrder refuses a config whose http app holds a dws_notify
// handler that never runs because a handler before it in its chain
// answers every request, or one that what another dws_notify forwards
// certainly reaches (config.CheckRouteOrder). It reads the
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
		m := config.Route{Group: r.Group, Terminal: r.Terminal}
		for _, set := range r.MatcherSets {
			m.Match = append(m.Match, matcherSetModel(set))
		}
		if len(r.MatcherSets) == 1 && len(r.MatcherSets[0]) == 1 {
			if mt, ok := r.MatcherSets[0][0].(*fileserver.MatchFile); ok && len(r.Handlers) == 1 {
				if rw, ok := r.Handlers[0].(*rewrite.Rewrite); ok {
					m.FallbackPath = config.FallbackRewritePath(mt.TryFiles, mt.TryPolicy, rw.URI)
				}
			}
		}
		for _, h := range r.Handlers {
			rh := config.RouteHandler{Name: caddy.GetModuleName(h)}
			switch h := h.(type) {
			case *caddyhttp.Subroute:
				rh.Routes = routeModel(h.Routes)
			case *caddyhttp.Invoke:
				rh.Invoke = h.Name
			case *reverseproxy.Handler:
				for _, hr := range h.HandleResponse {
					rh.Responses = append(rh.Responses, config.ResponseHandler{
						Match:      hr.Match != nil,
						StatusCode: hr.StatusCode.String() != "",
						Routes:     routeModel(hr.Routes),
					})
				}
			case *fileserver.FileServer:
				rh.PassThru = h.PassThru
			case *Handler:
				for _, a := range h.API {
					rh.APIPaths = append(rh.APIPaths, a.Path)
				}
			}
			m.Handlers = append(m.Handlers, rh)
		}
		out = append(out, m)
	}
	return out
}

// matcherSetModel reads the path and method matchers of a provisioned
// matcher set; any other matcher makes it Other.
func matcherSetModel(set caddyhttp.MatcherSet) config.MatcherSet {
	var m config.MatcherSet
	for _, mt := range set {
		switch mt := mt.(type) {
		case *caddyhttp.MatchPath:
			m.Path = append([]string{}, *mt...)
		case *caddyhttp.MatchMethod:
			m.Method = append([]string{}, *mt...)
		default:
			m.Other = true
		}
	}
	return m
}
