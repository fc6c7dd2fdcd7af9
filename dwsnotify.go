// Package dwsnotify plugs the dws_notify gateway into a Caddy build. It is
// the package at the module's root, so the build line is the same as for any
// other Caddy plugin:
//
//	xcaddy build --with github.com/dwsnotify/dws_notify
//	xcaddy build --with github.com/dwsnotify/dws_notify=/path/to/checkout
//
// Importing it registers everything in
// github.com/dwsnotify/dws_notify/caddymodule: the http.handlers.dws_notify
// handler, the dws_notify Caddyfile directive, the admin.api.dws_notify
// endpoints and the `caddy dws-notify` commands.
package dwsnotify

import (
	// The handler, directive, admin endpoints and commands register
	// themselves in the package's init functions.
	_ "github.com/dwsnotify/dws_notify/caddymodule"
)
