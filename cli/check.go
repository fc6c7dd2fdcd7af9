package cli

import (
	"encoding/json"
	"fmt"
	"io"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/dwsnotify/dws_notify/config"
)

// checkOptions are the flags of `dws-notify check`.
type checkOptions struct {
	config  string
	adapter string
}

func newCheckCommand() *cobra.Command {
	o := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check --config FILE [--adapter NAME]",
		Short: "Check a config before deploying it: no dws_notify handler may be pre-empted by a handler before it",
		Long: `Adapts the config file as 'caddy run' and 'caddy reload' would (a
Caddyfile by its name or --adapter caddyfile; JSON as it is) and runs the
route-order check of the dws_notify app over its http app: a dws_notify
handler that a handler before it in its chain always pre-empts (say a
reverse_proxy above it in a route, which would forward every notification
unverified) never runs; and a dws_notify that another's forwards certainly
reach (no matcher on the way that may keep them out) would answer the
first's notifications in place of the backend (the first then
acknowledges what no backend got; a forward the check cannot prove
reaches one, as behind a header or host matcher, the gateway fails at
run time instead, and DWS resends it). The gateway
refuses such a config when it starts,
but only once Caddy runs it, and Caddy may have started the config's HTTP
servers by then; this command finds it before the config is deployed.

It prints "route order: ok (...)" with the number of dws_notify handlers
it checked, or the error the gateway would refuse the config with, and
exits 1 then (and when the file cannot be read or adapted).

It does not load the config's modules: run 'caddy validate' beside it,
which checks every option, key and store, but not the route order.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.OutOrStdout()) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "the config file to check (a Caddyfile, JSON, or any format an adapter reads)")
	f.StringVarP(&o.adapter, "adapter", "a", "", "name of the config adapter for --config (as for caddy run)")
	return cmd
}

func (o *checkOptions) run(w io.Writer) error {
	if err := required("config", o.config); err != nil {
		return err
	}
	// The same loading as caddy run and caddy reload: the adapter is
	// chosen from --adapter or the file's name, and its error names the
	// file and line.
	raw, _, _, err := caddycmd.LoadConfig(o.config, o.adapter)
	if err != nil {
		return err
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("%s: reading the adapted config: %w", o.config, err)
	}
	servers := map[string]map[string][]config.Route{}
	if httpApp := cfg.Apps["http"]; len(httpApp) > 0 {
		if servers, err = config.RoutesFromJSON(httpApp); err != nil {
			return fmt.Errorf("%s: %w", o.config, err)
		}
	}
	if err := config.CheckRouteOrder(servers); err != nil {
		return err
	}
	handlers, holding := 0, 0
	for _, lists := range servers {
		n := 0
		for _, routes := range lists {
			n += countNotify(routes)
		}
		if n > 0 {
			handlers += n
			holding++
		}
	}
	if handlers == 0 {
		fmt.Fprintln(w, "route order: ok (no dws_notify handler in the config)")
		return nil
	}
	fmt.Fprintf(w, "route order: ok (%s in %s)\n", count(handlers, "dws_notify handler", "dws_notify handlers"), count(holding, "server", "servers"))
	return nil
}

// countNotify counts the dws_notify handlers written in routes, into
// subroutes and handle_response routes (a named route is counted where
// it is defined, not where it is invoked).
func countNotify(routes []config.Route) int {
	n := 0
	for _, r := range routes {
		for _, h := range r.Handlers {
			if h.Name == config.NotifyHandlerName {
				n++
			}
			n += countNotify(h.Routes)
			for _, resp := range h.Responses {
				n += countNotify(resp.Routes)
			}
		}
	}
	return n
}
