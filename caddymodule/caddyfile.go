package caddymodule

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/dwsnotify/dws_notify/config"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("dws_notify", parseCaddyfile)
	// Before basic_auth: after request_body and the URI rewriters, ahead of
	// encode, handle, route and reverse_proxy, so a plain site block works.
	httpcaddyfile.RegisterDirectiveOrder("dws_notify", httpcaddyfile.Before, "basic_auth")
}

// subdirectives are the dws_notify directive's, for the error about an
// unknown one (errUnknown): every case of UnmarshalCaddyfile's switch, and
// nothing else (TestParsedSubdirectivesAreListed and
// TestKnownSubdirectivesAreParsed check both ways; DEVELOPERS.md, "Adding a
// handler setting").
var subdirectives = []string{"client_id", "dws_public_key", "merchant_private_key", "api", "storage", "store",
	"retention", "request_time_tolerance", "max_body_size", "forward_timeout", "body_timeout",
	"business_reject_status", "result_message_field", "acknowledge", "strict", "forward_signature"}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	dws_notify [<matcher>] {
//		client_id <id>...
//		dws_public_key <key> [<key_version>]
//		merchant_private_key <key> [<key_version>]
//		api <name> [<path>]
//		storage <dir>
//		store badger [<dir>]
//		store redis <url> | sentinel <master_name> <host:port>... | cluster <host:port>... {
//			... (see StoreConfig.UnmarshalCaddyfile)
//		}
//		retention <duration>
//		request_time_tolerance <duration>|off
//		max_body_size <size>
//		forward_timeout <duration>
//		body_timeout <duration>
//		business_reject_status <code>...
//		result_message_field resultMsg|resultMessage|both
//		acknowledge on_delivery | on_receipt {
//			... (see parseAcknowledge)
//		}
//		strict
//		forward_signature
//	}
//
// client_id, dws_public_key and api are required; client_id, dws_public_key,
// api and business_reject_status may be repeated. <key> is the key material
// itself (bare Base64 DER or PEM) or a {file./path} / {env.NAME}
// placeholder resolved at provision time. api <name> is one of the notify
// APIs notification.Names gives (DWS and Antom). Every error names its line.
//
// The rules about the settings are config.Handler.Check's, the same the
// JSON config goes through at provisioning, run once the directive is
// read; a broken rule is reported with the same message, at the line of
// the setting it names (or of the directive). The parser refuses only what
// cannot become a JSON field or what the Caddyfile cannot mean: a wrong
// number of arguments, a value that is not a number, size or duration, a
// setting given twice, an unknown name, and a zero the JSON config would
// read as the default (max_body_size 0, a duration of 0 or less; in store
// redis, pool_size and wait_replicas 0; in acknowledge, max_queued 0).
// Where config states the same rule, the parser's error uses its text
// (config.MaxBodySizeRule, config.PositiveRule, config.KeyVersionRule).
//
// The store is the embedded Badger database by default; storage <dir> is
// the short form of store badger <dir> (both may be given if they name the
// same directory). store redis shares the dedupe among every gateway that
// names the same Redis deployment (one server by URL, a Sentinel-managed
// primary, or a Cluster), database and prefix; every value of its settings
// may be a {env.*} / {file.*} placeholder, resolved at provision time.
// Errors never quote a password, a key or a URL's user information.
func (m *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	file := d.File()
	// lines holds the line of every setting parsed, by its JSON path
	// ("client_id.1", "store.tls.key"); "" is the directive's.
	lines := map[string]int{"": d.Line()}
	once := func(name string) error {
		if line, dup := lines[name]; dup {
			return d.Errf("%s is already set at line %d", name, line)
		}
		lines[name] = d.Line()
		return nil
	}
	item := func(list string, n int) { lines[fmt.Sprintf("%s.%d", list, n)] = d.Line() }

	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name, line := d.Val(), d.Line()
		switch name {
		case "client_id":
			ids := d.RemainingArgs()
			if len(ids) == 0 {
				return d.ArgErr()
			}
			for _, id := range ids {
				item(name, len(m.ClientID))
				m.ClientID = append(m.ClientID, id)
			}

		case "dws_public_key", "merchant_private_key":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("%s takes the key and an optional key version", name)
			}
			kc := config.Key{Key: args[0]}
			if len(args) == 2 {
				v, err := strconv.Atoi(args[1])
				if err != nil {
					return d.Errf("%s: key version %s is not a number: %s", name, shownToken(args[1]), config.KeyVersionRule)
				}
				kc.KeyVersion = &v
			}
			if name == "merchant_private_key" {
				if err := once(name); err != nil {
					return err
				}
				m.MerchantPrivateKey = &kc
			} else {
				item(name, len(m.DWSPublicKey))
				m.DWSPublicKey = append(m.DWSPublicKey, kc)
			}

		case "api":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("api takes the API name and an optional path")
			}
			a := config.API{Name: args[0]}
			if len(args) == 2 {
				a.Path = args[1]
			}
			item(name, len(m.API))
			m.API = append(m.API, a)

		case "storage":
			if err := once(name); err != nil {
				return err
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			// An empty directory is most likely an empty variable
			// pasted in, not a wish for the default.
			if d.Val() == "" {
				return d.Err("storage must not be empty: give the store's directory as an absolute path, or leave storage out for the default")
			}
			m.Storage = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}

		case "store":
			if err := once(name); err != nil {
				return err
			}
			sc := new(StoreConfig)
			if err := sc.UnmarshalCaddyfile(d); err != nil {
				return err
			}
			for field, line := range sc.lines {
				lines[strings.TrimSuffix("store."+field, ".")] = line
			}
			m.Store = &sc.Store

		case "retention", "forward_timeout", "body_timeout":
			if err := once(name); err != nil {
				return err
			}
			dur, err := durationArg(d, name)
			if err != nil {
				return err
			}
			switch name {
			case "retention":
				m.Retention = config.Duration(dur)
			case "forward_timeout":
				m.ForwardTimeout = config.Duration(dur)
			default:
				m.BodyTimeout = config.Duration(dur)
			}

		case "request_time_tolerance", "result_message_field":
			if err := once(name); err != nil {
				return err
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			if name == "request_time_tolerance" {
				m.RequestTimeTolerance = d.Val()
			} else {
				m.ResultMessageField = d.Val()
			}
			if d.NextArg() {
				return d.ArgErr()
			}

		case "max_body_size":
			if err := once(name); err != nil {
				return err
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			size, err := humanize.ParseBytes(d.Val())
			if err != nil {
				return d.Errf("max_body_size: %q is not a size: %v", d.Val(), err)
			}
			// 0 would mean the default in the JSON config: the Caddyfile
			// has no way to say it.
			if size == 0 || size > math.MaxInt64 {
				return d.Err(config.MaxBodySizeRule)
			}
			m.MaxBodySize = int64(size)
			if d.NextArg() {
				return d.ArgErr()
			}

		case "business_reject_status":
			codes := d.RemainingArgs()
			if len(codes) == 0 {
				return d.ArgErr()
			}
			if m.BusinessRejectStatus == nil {
				m.BusinessRejectStatus = []int{}
			}
			for _, c := range codes {
				s, err := strconv.Atoi(c)
				if err != nil {
					return d.Errf("business_reject_status: %q is not a status code", c)
				}
				item(name, len(m.BusinessRejectStatus))
				m.BusinessRejectStatus = append(m.BusinessRejectStatus, s)
			}

		case "acknowledge":
			if err := once(name); err != nil {
				return err
			}
			a, err := parseAcknowledge(d, lines)
			if err != nil {
				return err
			}
			m.Acknowledge = a

		case "strict", "forward_signature":
			if err := once(name); err != nil {
				return err
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if name == "strict" {
				m.Strict = true
			} else {
				m.ForwardSignature = true
			}

		default:
			return errUnknown(d, "unknown subdirective", name, subdirectives)
		}
		if err := noBlock(d, name, line); err != nil {
			return err
		}
	}

	if err := m.Check(); err != nil {
		var fields []string
		if fe := (*config.FieldError)(nil); errors.As(err, &fe) {
			fields = fe.Fields
		}
		return errAt(file, lineOf(lines, fields), "dws_notify: %w", err)
	}
	return nil
}

// lineOf is the line of the first of fields the directive set (a field
// the directive did not set, such as "store.tls.cert" for store redis
// cluster ... { tls }, counts as its nearest parent that it set), or the
// directive's line.
func lineOf(lines map[string]int, fields []string) int {
	for _, f := range fields {
		for {
			if line, ok := lines[f]; ok {
				return line
			}
			i := strings.LastIndexByte(f, '.')
			if i < 0 {
				break
			}
			f = f[:i]
		}
	}
	return lines[""]
}

// errAt formats an error for a line of the Caddyfile the way the
// dispenser's own errors are formatted; a %w operand stays its cause.
func errAt(file string, line int, format string, args ...any) error {
	return fmt.Errorf("%w, at %s:%d", fmt.Errorf(format, args...), file, line)
}

// noBlock refuses a block opened after a setting that takes none, once
// its arguments are read (what names the setting: "retention", "store
// redis prefix"; line is its line). The arguments end at a '{' on their
// line, which the block loop would otherwise read as the next setting's
// name. An empty block ({ } or {} on the line) is refused too. A setting
// whose parser reads a block of its own has consumed it by then.
func noBlock(d *caddyfile.Dispenser, what string, line int) error {
	before := d.Token()
	if d.NextBlock(d.Nesting()) {
		return errAt(d.File(), line, "%s takes no block", what)
	}
	// NextBlock consumes an empty block and stops on its '}'.
	if after := d.Token(); after.Text == "}" && !after.Quoted() &&
		(after.Line != before.Line || after.File != before.File || after.Text != before.Text || before.Quoted()) {
		return errAt(d.File(), line, "%s takes no block", what)
	}
	return nil
}

// durationArg reads the one argument of a duration setting. 0 would mean
// the default in the JSON config, so the Caddyfile wants it positive.
func durationArg(d *caddyfile.Dispenser, name string) (time.Duration, error) {
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := parsePositiveDuration(d, name, d.Val())
	if err != nil {
		return 0, err
	}
	if d.NextArg() {
		return 0, d.ArgErr()
	}
	return dur, nil
}

// parsePositiveDuration reads the duration s of the setting name, at the
// dispenser's line.
func parsePositiveDuration(d *caddyfile.Dispenser, name, s string) (time.Duration, error) {
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return 0, d.Errf("%s: %q is not a duration", name, s)
	}
	if dur <= 0 {
		return 0, d.Err(config.PositiveRule(name))
	}
	return dur, nil
}
