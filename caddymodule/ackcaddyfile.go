package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dwsnotify/dws_notify/config"
)

// parseAcknowledge parses the acknowledge subdirective of dws_notify; the
// dispenser is on the word "acknowledge":
//
//	acknowledge on_delivery
//	acknowledge on_receipt {
//		key <material> [<id>]     (repeatable: the first listed encrypts, all decrypt)
//		order_secret <material>
//		max_age <duration>
//		backoff <first> <longest>
//		max_queued <n>
//	}
//
// It records the line of every setting in lines, by its JSON path
// ("acknowledge.keys.1"). The rules are config.Handler.Check's; the parser
// refuses only what cannot become a JSON field (an argument count, a
// value that is not a number or a duration, an unknown option or mode, an
// option given twice) and a zero the JSON config would read as the
// default: a duration of 0 or less (config.PositiveRule's text) and
// max_queued 0.
func parseAcknowledge(d *caddyfile.Dispenser, lines map[string]int) (*config.Acknowledge, error) {
	a := new(config.Acknowledge)
	lines["acknowledge"] = d.Line()
	if !d.NextArg() {
		return nil, d.Errf("acknowledge needs a mode: %s or %s", config.AckOnDelivery, config.AckOnReceipt)
	}
	a.Mode = d.Val()
	lines["acknowledge.mode"] = d.Line()
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	switch a.Mode {
	case config.AckOnDelivery:
		if line := d.Line(); d.NextBlock(d.Nesting()) {
			return nil, errAt(d.File(), line, "acknowledge on_delivery takes no options block")
		}
		return a, nil
	case config.AckOnReceipt:
	default:
		return nil, errUnknown(d, "acknowledge: unknown mode", a.Mode, []string{config.AckOnDelivery, config.AckOnReceipt})
	}
	seen := map[string]int{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name, line := d.Val(), d.Line()
		if name != "key" {
			if line, dup := seen[name]; dup {
				return nil, d.Errf("acknowledge: %s is already set at line %d", name, line)
			}
			seen[name] = d.Line()
		}
		args := d.RemainingArgs()
		switch name {
		case "key":
			if len(args) < 1 || len(args) > 2 {
				return nil, d.Err("acknowledge: key takes the key material and an optional key id")
			}
			k := config.InboxKey{Key: args[0]}
			if len(args) == 2 {
				k.ID = args[1]
			}
			lines["acknowledge.keys."+strconv.Itoa(len(a.Keys))] = d.Line()
			a.Keys = append(a.Keys, k)
		case "order_secret":
			if len(args) != 1 {
				return nil, d.ArgErr()
			}
			a.OrderSecret = args[0]
			lines["acknowledge.order_secret"] = d.Line()
		case "max_age":
			if len(args) != 1 {
				return nil, d.ArgErr()
			}
			dur, err := parsePositiveDuration(d, "acknowledge: max_age", args[0])
			if err != nil {
				return nil, err
			}
			a.MaxAge = config.Duration(dur)
			lines["acknowledge.max_age"] = d.Line()
		case "backoff":
			if len(args) != 2 {
				return nil, d.Err("acknowledge: backoff takes the first and the longest pause, e.g. backoff 1s 15m")
			}
			first, err := parsePositiveDuration(d, "acknowledge: backoff", args[0])
			if err != nil {
				return nil, err
			}
			longest, err := parsePositiveDuration(d, "acknowledge: backoff", args[1])
			if err != nil {
				return nil, err
			}
			a.FirstBackoff, a.MaxBackoff = config.Duration(first), config.Duration(longest)
			lines["acknowledge.first_backoff"], lines["acknowledge.max_backoff"] = d.Line(), d.Line()
		case "max_queued":
			if len(args) != 1 {
				return nil, d.ArgErr()
			}
			n, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || n < 1 {
				return nil, d.Errf("acknowledge: max_queued %q must be a positive number", args[0])
			}
			a.MaxQueued = n
			lines["acknowledge.max_queued"] = d.Line()
		default:
			return nil, errUnknown(d, "acknowledge: unknown option", name, []string{"key", "order_secret", "max_age", "backoff", "max_queued"})
		}
		if err := noBlock(d, "acknowledge: "+name, line); err != nil {
			return nil, err
		}
	}
	return a, nil
}
