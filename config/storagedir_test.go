package config

import (
	"errors"
	"strings"
	"testing"
)

// The Badger directory (storage, store.dir): absolute when written
// literally (Check), placeholders resolved at provisioning (BadgerDir).

func TestCheckRefusesARelativeBadgerDir(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(*Handler)
		fields []string
		msg    string
	}{
		{"storage", func(h *Handler) { h.Storage = "data/dws" }, []string{"storage"},
			"storage data/dws is a relative path"},
		{"storage dot", func(h *Handler) { h.Storage = "." }, []string{"storage"}, "storage . is a relative path"},
		{"storage home", func(h *Handler) { h.Storage = "~/dws" }, []string{"storage"}, "storage ~/dws is a relative path"},
		{"store.dir", func(h *Handler) { h.Store = &Store{Backend: BackendBadger, Dir: "dws"} }, []string{"store.dir"},
			"store: dir dws is a relative path"},
		{"storage relative, store.dir absolute", func(h *Handler) {
			h.Storage, h.Store = "dws", &Store{Backend: BackendBadger, Dir: "/var/lib/dws"}
		}, []string{"storage"}, "storage dws is a relative path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := minimal()
			c.mutate(&h)
			var fe *FieldError
			if err := h.Check(); !errors.As(err, &fe) {
				t.Fatalf("Check = %v, want a *FieldError", err)
			}
			if strings.Join(fe.Fields, ",") != strings.Join(c.fields, ",") || !strings.HasPrefix(fe.Msg, c.msg) {
				t.Fatalf("fields %q, %q; want %q, %q...", fe.Fields, fe.Msg, c.fields, c.msg)
			}
		})
	}
	// A placeholder is checked once resolved; storage and store.dir are
	// compared then too.
	for _, mutate := range []func(*Handler){
		func(h *Handler) { h.Storage = "{env.DWS_DIR}" },
		func(h *Handler) { h.Storage = "/var/lib/{env.DWS_ENV}/dws" },
		func(h *Handler) { h.Store = &Store{Backend: BackendBadger, Dir: "{file./etc/dws/dir}"} },
		func(h *Handler) {
			h.Storage, h.Store = "{env.DWS_DIR}", &Store{Backend: BackendBadger, Dir: "/var/lib/dws"}
		},
		func(h *Handler) {
			h.Storage, h.Store = "/var/lib/dws", &Store{Backend: BackendBadger, Dir: "/var/lib/dws/"}
		},
	} {
		h := minimal()
		mutate(&h)
		if err := h.Check(); err != nil {
			t.Errorf("storage %q, store %+v: %v", h.Storage, h.Store, err)
		}
	}
}

func TestBadgerDirResolvesPlaceholders(t *testing.T) {
	values := map[string]string{
		"env.DWS_DIR":       "/srv/dws",
		"env.DWS_DIR_SLASH": "/srv/dws/",
		"env.DWS_ENV":       "prod",
		"env.DWS_OTHER":     "/srv/other",
		"env.DWS_REL":       "dws",
		"env.DWS_EMPTY":     "",
		"file./etc/dws/dir": "/var/lib/dws",
	}
	lookup := func(name string) (string, bool) {
		v, ok := values[name]
		return v, ok
	}
	badger := func(dir string) *Store { return &Store{Backend: BackendBadger, Dir: dir} }
	for _, c := range []struct {
		storage string
		store   *Store
		want    string
	}{
		{"", nil, ""},
		{"", badger(""), ""},
		{"/var/lib/dws", nil, "/var/lib/dws"},
		{"/var/lib/dws/", nil, "/var/lib/dws"},
		{"{env.DWS_DIR}", nil, "/srv/dws"},
		{"/var/lib/{env.DWS_ENV}/dws", nil, "/var/lib/prod/dws"},
		{"", badger("{file./etc/dws/dir}"), "/var/lib/dws"},
		{"{env.DWS_DIR}", badger("/srv/dws"), "/srv/dws"},
		{"{env.DWS_DIR_SLASH}", badger("{env.DWS_DIR}"), "/srv/dws"},
		{"", &Store{Backend: BackendRedis, URL: "redis://r"}, ""},
	} {
		h := minimal()
		h.Storage, h.Store = c.storage, c.store
		if err := h.Check(); err != nil {
			t.Fatalf("storage %q, store %+v: Check: %v", c.storage, c.store, err)
		}
		got, err := h.BadgerDir(lookup)
		if err != nil || got != c.want {
			t.Errorf("storage %q, store %+v: BadgerDir = %q, %v; want %q", c.storage, c.store, got, err, c.want)
		}
	}
	for _, c := range []struct {
		storage string
		store   *Store
		fields  []string
		msg     string
	}{
		{"{env.DWS_UNSET}", nil, []string{"storage"},
			"storage: placeholder {env.DWS_UNSET} resolves to nothing (is the file readable, or the environment variable set?)"},
		{"{env.DWS_EMPTY}", nil, []string{"storage"}, "storage: placeholder {env.DWS_EMPTY} resolves to nothing"},
		{"", badger("{file./nonexistent/dir}"), []string{"store.dir"}, "store dir: placeholder {file./nonexistent/dir} resolves to nothing"},
		{"{env.DWS_REL}", nil, []string{"storage"},
			`storage {env.DWS_REL} is "dws", a relative path`},
		{"", badger("{env.DWS_REL}/x"), []string{"store.dir"}, `store dir {env.DWS_REL}/x is "dws/x", a relative path`},
		{"{env.DWS_DIR}", badger("{env.DWS_OTHER}"), []string{"storage", "store.dir"},
			"storage {env.DWS_DIR} and store.dir {env.DWS_OTHER} name different directories (/srv/dws and /srv/other)"},
	} {
		h := minimal()
		h.Storage, h.Store = c.storage, c.store
		if err := h.Check(); err != nil {
			t.Fatalf("storage %q, store %+v: Check: %v", c.storage, c.store, err)
		}
		got, err := h.BadgerDir(lookup)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("storage %q, store %+v: BadgerDir = %q, %v; want a *FieldError", c.storage, c.store, got, err)
			continue
		}
		if strings.Join(fe.Fields, ",") != strings.Join(c.fields, ",") || !strings.HasPrefix(fe.Msg, c.msg) {
			t.Errorf("storage %q, store %+v: fields %q, %q; want %q, %q...", c.storage, c.store, fe.Fields, fe.Msg, c.fields, c.msg)
		}
	}
}
