package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// projectImports is every project package's imports of the project, as
// docs/architecture.md ("Dependency direction") and DEVELOPERS.md draw
// them. A new edge is a change of the design: make it here and in both
// documents together.
var projectImports = map[string][]string{
	".":                                {"caddymodule", "cli"},
	"adminapi":                         nil,
	"adminview":                        {"adminapi", "idempotency", "idempotency/guard", "notification"},
	"bench/loadgen":                    {"inbox", "signature"},
	"buildinfo":                        nil,
	"caddymodule":                      {"adminapi", "adminview", "config", "dwshttp", "dwsmetrics", "followlog", "idempotency", "idempotency/guard", "idempotency/redisstore", "inbox", "notification", "notifylog", "signature"},
	"cli":                              {"adminapi", "config", "idempotency", "inbox", "notification", "signature"},
	"config":                           {"idempotency", "idempotency/redisstore", "inbox", "notification", "signature"},
	"dwshttp":                          {"notification", "signature"},
	"dwsmetrics":                       {"buildinfo", "idempotency", "idempotency/guard", "inbox", "notification", "signature"},
	"e2e":                              nil,
	"e2e/reloadstudy":                  nil,
	"followlog":                        nil,
	"idempotency":                      nil,
	"idempotency/guard":                {"idempotency"},
	"idempotency/redisstore":           {"idempotency"},
	"idempotency/redisstore/redistest": nil,
	"idempotency/storetest":            {"idempotency"},
	"inbox":                            {"idempotency"},
	"internal/cputime":                 nil,
	"notification":                     nil,
	"notifylog":                        {"buildinfo", "config", "dwshttp", "dwsmetrics", "notification"},
	"signature":                        nil,
}

// importsCaddy are the only packages that may import Caddy, directly or
// through another package, tests included.
var importsCaddy = []string{".", "caddymodule", "cli", "e2e"}

// TestDependencyDirection checks the packages' imports against the design:
// the pure cores never reach Caddy, even through their tests, and no
// package imports another the documents do not draw.
func TestDependencyDirection(t *testing.T) {
	root := repoRoot(t)
	const module = "github.com/dwsnotify/dws_notify"
	rel := func(p string) string {
		if p == module {
			return "."
		}
		return strings.TrimPrefix(p, module+"/")
	}
	list := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}", "./...")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		path, imports, _ := strings.Cut(line, "|")
		pkg := rel(path)
		seen[pkg] = true
		want, known := projectImports[pkg]
		if !known {
			t.Errorf("package %s is not in projectImports: add it, and to docs/architecture.md and DEVELOPERS.md", pkg)
			continue
		}
		var got []string
		for imp := range strings.FieldsSeq(imports) {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				got = append(got, rel(imp))
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s imports %q of the project; the design draws %q", pkg, got, want)
		}
	}
	for pkg := range projectImports {
		if !seen[pkg] {
			t.Errorf("projectImports names %s, which is no package any more", pkg)
		}
	}

	// Caddy, through any path, tests included.
	for pkg := range projectImports {
		if slices.Contains(importsCaddy, pkg) {
			continue
		}
		deps := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", "./"+strings.TrimPrefix(pkg, "."))
		deps.Dir = root
		out, err := deps.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for d := range strings.FieldsSeq(string(out)) {
			if strings.HasPrefix(d, "github.com/caddyserver/caddy") {
				t.Errorf("%s reaches Caddy (%s), with its tests; only %q may", pkg, d, importsCaddy)
				break
			}
		}
	}
}
