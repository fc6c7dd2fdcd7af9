// Package dwsnotify plugs the dws_notify gateway into a Caddy build. It is
// the package at the module's root, so the build line is the same as for any
// other Caddy plugin:
//
//	xcaddy build --with github.com/dwsnotify/dws_notify
//	xcaddy build --with github.com/dwsnotify/dws_notify=/path/to/checkout
//
// Importing it registers everything: from
// github.com/dwsnotify/dws_notify/caddymodule the http.handlers.dws_notify
// handler, the dws_notify Caddyfile directive and the admin.api.dws_notify
// endpoints; from github.com/dwsnotify/dws_notify/cli the `caddy
// dws-notify` commands.
package dwsnotify

import (
	// The handler, directive and admin endpoints, and the commands,
	// register themselves in the packages' init functions.
	_ "github.com/dwsnotify/dws_notify/caddymodule"
	_ "github.com/dwsnotify/dws_notify/cli"
)
