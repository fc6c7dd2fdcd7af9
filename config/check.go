package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/signature"
)

// FieldError is a rule of the settings that they break. Fields are the
// JSON paths of the settings the rule is about, the one to change first
// first ("client_id.1", "dws_public_key.0", "store.tls.cert": list items
// by their index from 0); none when it is about the settings as a whole
// (a required setting that is missing). Msg says what is wrong and, where
// it helps, what to do; it never quotes a password or key material.
// Unwrap returns the error it was made from, if any (a key's
// *signature.KeyError).
type FieldError struct {
	Fields []string
	Msg    string
	cause  error
}

func (e *FieldError) Error() string { return e.Msg }

func (e *FieldError) Unwrap() error { return e.cause }

// errField is a *FieldError about one field ("" for none); a %w operand
// becomes its cause.
func errField(field, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	e := &FieldError{Msg: err.Error(), cause: errors.Unwrap(err)}
	if field != "" {
		e.Fields = []string{field}
	}
	return e
}

// Check checks every rule of the settings that needs neither a placeholder
// resolved nor a file read: required settings, each setting's own range or
// form, the rules between settings (retention against the Request-Time
// tolerance and the claim lease; storage against store), key material
// given literally (a placeholder's is parsed once resolved, at
// provisioning) and the store's settings. It returns the first rule broken,
// as a *FieldError, or nil. It only reads h.
func (h *Handler) Check() error {
	for _, check := range []func() error{h.checkClients, h.checkKeys, h.checkAPIs, h.checkTimes, h.checkLimits, h.checkStore, h.checkAcknowledge} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) checkClients() error {
	if len(h.ClientID) == 0 {
		return errField("", "client_id is required")
	}
	for i, id := range h.ClientID {
		field := fmt.Sprintf("client_id.%d", i)
		if id == "" {
			return errField(field, "client_id must not be empty")
		}
		if slices.Contains(h.ClientID[:i], id) {
			return errField(field, "client_id %s is listed twice", id)
		}
	}
	return nil
}

func (h *Handler) checkKeys() error {
	if len(h.DWSPublicKey) == 0 {
		return errField("", "dws_public_key is required")
	}
	for i, k := range h.DWSPublicKey {
		field := fmt.Sprintf("dws_public_key.%d", i)
		if err := k.check(false); err != nil {
			return errField(field, "dws_public_key #%d: %w", i+1, err)
		}
		for _, prev := range h.DWSPublicKey[:i] {
			if prev.Version() == k.Version() {
				return errField(field, "dws_public_key version %d is configured twice", k.Version())
			}
		}
	}
	if k := h.MerchantPrivateKey; k != nil {
		if err := k.check(true); err != nil {
			return errField("merchant_private_key", "merchant_private_key: %w", err)
		}
	}
	return nil
}

// check checks a key: material present, a version in range
// (KeyVersionRule), and material given literally parsed (a placeholder's is parsed once
// resolved).
func (k Key) check(private bool) error {
	switch {
	case strings.TrimSpace(k.Key) == "":
		return errors.New("key is empty")
	case k.Version() < 0 || k.Version() > signature.MaxKeyVersion:
		return fmt.Errorf("%s, not %d", KeyVersionRule, k.Version())
	case HasPlaceholder(k.Key):
		return nil
	}
	return ParseKey(k.Key, private)
}

func (h *Handler) checkAPIs() error {
	if len(h.API) == 0 {
		return errField("", "at least one api is required")
	}
	for i, a := range h.API {
		field := fmt.Sprintf("api.%d", i)
		if _, ok := notification.Lookup(a.Name); !ok {
			return errField(field, "unknown api %q (known: %s)", a.Name, strings.Join(notification.Names(), ", "))
		}
		switch {
		case a.Path == "" && len(h.API) > 1:
			return errField(field, "api %s needs a path when more than one api is configured", a.Name)
		case a.Path != "" && !strings.HasPrefix(a.Path, "/"):
			return errField(field, "api %s: path %q must start with /", a.Name, a.Path)
		case strings.ContainsAny(a.Path, "?#"):
			return errField(field, "api %s: path %q must not contain a query or fragment", a.Name, a.Path)
		}
		for _, prev := range h.API[:i] {
			if prev.Name == a.Name {
				return errField(field, "api %s is configured twice", a.Name)
			}
			if a.Path != "" && prev.Path == a.Path {
				return errField(field, "path %s is used by api %s too", a.Path, prev.Name)
			}
		}
	}
	return nil
}

func (h *Handler) checkTimes() error {
	retention := h.retention()
	if retention <= 0 {
		return errField("retention", "%s", PositiveRule("retention"))
	}
	tolerance, err := ParseTolerance(h.RequestTimeTolerance)
	if err != nil {
		return errField("request_time_tolerance", "request_time_tolerance: %v", err)
	}
	if tolerance > 0 && retention < 2*tolerance {
		return &FieldError{Fields: []string{"retention", "request_time_tolerance"}, Msg: fmt.Sprintf(
			"retention %s is shorter than twice request_time_tolerance %s: Request-Time is accepted that far in the past and in the future, so a notification dated ahead of the gateway's clock stays fresh for up to %s after it first arrives, and a replay after its record expired would be forwarded again; make retention at least %s",
			retention, tolerance, 2*tolerance, 2*tolerance)}
	}
	forward := orDefault(h.ForwardTimeout, DefaultForwardTimeout)
	if forward <= 0 {
		return errField("forward_timeout", "%s", PositiveRule("forward_timeout"))
	}
	if orDefault(h.BodyTimeout, DefaultBodyTimeout) <= 0 {
		return errField("body_timeout", "%s", PositiveRule("body_timeout"))
	}
	// The store refuses a claim whose record would not outlive its lease,
	// so every notification would be answered U.
	if lease := LeaseFor(forward); retention < lease {
		return &FieldError{Fields: []string{"retention", "forward_timeout"}, Msg: fmt.Sprintf(
			"retention %s is shorter than the claim lease %s (2 × forward_timeout %s + 5s): a record must outlive the forward it guards; make retention at least %s or forward_timeout shorter",
			retention, lease, forward, lease)}
	}
	return nil
}

func (h *Handler) checkLimits() error {
	if h.MaxBodySize < 0 || h.MaxBodySize > MaxMaxBodySize {
		return errField("max_body_size", "%s", MaxBodySizeRule)
	}
	for i, s := range h.BusinessRejectStatus {
		field := fmt.Sprintf("business_reject_status.%d", i)
		if s < 400 || s > 599 {
			return errField(field, "business_reject_status: %d is not an HTTP error status (400-599)", s)
		}
		if slices.Contains(h.BusinessRejectStatus[:i], s) {
			return errField(field, "business_reject_status %d is listed twice", s)
		}
	}
	if _, err := ParseMessageField(h.ResultMessageField); err != nil {
		return errField("result_message_field", "%v", err)
	}
	return nil
}

// PositiveRule is the rule of a setting that must be positive, as its
// error says it ("retention must be positive"). The Caddyfile's parsers
// (caddymodule) refuse a duration of 0 or less with it too: the Caddyfile
// cannot leave a setting at 0, which the JSON config reads as the default.
func PositiveRule(name string) string { return name + " must be positive" }

// KeyVersionRule is the rule about a key's version (dws_public_key,
// merchant_private_key), as its error says it: the range a notification's
// keyVersion is read in (signature.MaxKeyVersion). The Caddyfile's parser
// says it too about a version that is not a number.
var KeyVersionRule = fmt.Sprintf("key version must be between 0 and %d", signature.MaxKeyVersion)

// MaxBodySizeRule is the rule about max_body_size, as its error says it
// (and the Caddyfile's parser, which refuses 0 with it).
var MaxBodySizeRule = fmt.Sprintf("max_body_size must be between 1 byte and %d MiB", MaxMaxBodySize>>20)

// checkStore checks the store settings, and storage against them: storage
// is the short form of store badger <dir>. A directory written literally
// must be absolute (RelativeDirRule); one with a placeholder is checked,
// and compared with the other, once resolved (BadgerDir).
func (h *Handler) checkStore() error {
	if h.Storage != "" && !HasPlaceholder(h.Storage) && !filepath.IsAbs(h.Storage) {
		return errField("storage", "storage %s is a relative path: %s", h.Storage, RelativeDirRule)
	}
	c := h.Store
	if c == nil {
		return nil
	}
	if err := c.check(); err != nil {
		var fe *FieldError
		if !errors.As(err, &fe) {
			return &FieldError{Fields: []string{"store"}, Msg: "store: " + err.Error()}
		}
		fields := []string{"store"}
		if len(fe.Fields) > 0 {
			fields = []string{"store." + fe.Fields[0]}
		}
		return &FieldError{Fields: fields, Msg: "store: " + fe.Msg, cause: fe.cause}
	}
	switch {
	case h.Storage == "":
	case c.Backend == BackendRedis:
		return errField("storage", "storage %s is the directory of the Badger store, but store.backend is redis: remove storage", h.Storage)
	case c.Dir != "" && !HasPlaceholder(c.Dir) && !HasPlaceholder(h.Storage) && filepath.Clean(c.Dir) != filepath.Clean(h.Storage):
		return errDirsDiffer(h.Storage, c.Dir, "")
	}
	return nil
}

// RelativeDirRule says why the Badger directory must be absolute.
const RelativeDirRule = "give the store's directory as an absolute path (a relative one follows the working directory, / under systemd, " +
	"so a start from elsewhere would open another, empty store and forward resends again)"

// errDirsDiffer is the error about storage and store.dir naming two
// directories; resolved, when not empty, says which ones they resolved to.
func errDirsDiffer(storage, dir, resolved string) error {
	return &FieldError{Fields: []string{"storage", "store.dir"}, Msg: fmt.Sprintf(
		"storage %s and store.dir %s name different directories%s: storage is the short form of store badger <dir>; give one", storage, dir, resolved)}
}

// HasPlaceholder reports whether s may hold a placeholder, resolved only
// at provisioning: such a value is checked then.
func HasPlaceholder(s string) bool { return strings.Contains(s, "{") }
