package config

import (
	"fmt"
	"path/filepath"
)

// BadgerDir resolves the directory of the Badger store of h, which passed
// Check: storage or store.dir (backend badger), their {env.*} and {file.*}
// placeholders resolved with lookup, cleaned. It is "" when neither is set
// (the default directory) and with backend redis. A placeholder that
// resolves to nothing, a relative result, and storage and store.dir
// resolving to two directories are *FieldError; the errors name the
// setting as written and the placeholder.
func (h *Handler) BadgerDir(lookup Lookup) (string, error) {
	if h.Store != nil && h.Store.Backend != BackendBadger {
		return "", nil
	}
	storage, err := resolveDir("storage", "storage", h.Storage, lookup)
	if err != nil {
		return "", err
	}
	var dir string
	if h.Store != nil {
		if dir, err = resolveDir("store.dir", "store dir", h.Store.Dir, lookup); err != nil {
			return "", err
		}
	}
	switch {
	case storage == "":
		return dir, nil
	case dir != "" && dir != storage:
		return "", errDirsDiffer(h.Storage, h.Store.Dir, fmt.Sprintf(" (%s and %s)", storage, dir))
	}
	return storage, nil
}

// resolveDir resolves one directory setting (field is its JSON path, name
// how its errors call it): "" stays "".
func resolveDir(field, name, configured string, lookup Lookup) (string, error) {
	if configured == "" {
		return "", nil
	}
	dir, err := ResolvePlaceholders(configured, lookup)
	if err != nil {
		return "", errField(field, "%s: %w", name, err)
	}
	if !filepath.IsAbs(dir) {
		if dir == configured { // Check refuses it; BadgerDir may run without
			return "", errField(field, "%s %s is a relative path: %s", name, configured, RelativeDirRule)
		}
		return "", errField(field, "%s %s is %q, a relative path: %s", name, configured, dir, RelativeDirRule)
	}
	return filepath.Clean(dir), nil
}
