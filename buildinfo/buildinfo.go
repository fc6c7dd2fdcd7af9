// Package buildinfo says which build of the dws_notify plugin runs, from
// the binary's build information: for the provision log line and the
// caddy_dws_notify_build_info gauge.
package buildinfo

import (
	"runtime/debug"
	"strings"
	"sync"
)

// modulePath is the Go module this package belongs to.
const modulePath = "github.com/dwsnotify/dws_notify"

// zeroPseudoVersion is the version the go command gives a module that is
// only known through a directory replacement (xcaddy's --with
// <module>=<dir> without a version): it says nothing about the build.
const zeroPseudoVersion = "v0.0.0-00010101000000-000000000000"

// develVersion is reported when the build carries no version of the
// module, as the go command does for a main module built from a checkout.
const develVersion = "(devel)"

// Build is which build of the plugin runs.
type Build struct {
	// Version is the module version the binary was built with: a release
	// tag, or a pseudo-version that names the commit
	// (v0.0.0-<commit time>-<12 hex digits>, ./xcaddy.sh writes one for a
	// checkout, with -dirty appended when it had uncommitted changes), or
	// "(devel)" when the build says nothing (a directory replacement
	// without a version, as in the Dockerfile).
	Version string
	// Revision is the commit, when the build says which: the hash in a
	// pseudo-version, or the vcs.revision the go command stamps into a
	// main module built from this repository. Empty when unknown.
	Revision string
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// Plugin reads the binary's build information, once.
var Plugin = sync.OnceValue(func() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{Version: develVersion}
	}
	return From(bi)
})

// From finds this module in a binary's build information: a
// dependency of the Caddy build (the usual case: xcaddy's generated main
// module imports it), or the main module itself (tests, and programs of
// this repository).
func From(bi *debug.BuildInfo) Build {
	v := Build{Version: develVersion, GoVersion: bi.GoVersion}
	if bi.Main.Path == modulePath {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if v.Revision != "" && modified {
			v.Revision += "-dirty"
		}
		if v.Revision == "" {
			v.Revision = pseudoRevision(v.Version)
		}
		return v
	}
	for _, dep := range bi.Deps {
		if dep.Path != modulePath {
			continue
		}
		version := dep.Version
		if dep.Replace != nil && dep.Replace.Version != "" && dep.Replace.Version != develVersion {
			// Replaced by another module version (a fork, say): that
			// is what was built. A directory replacement (xcaddy's
			// --with <module>=<dir>) has the version "(devel)" and
			// leaves the required version as the module's.
			version = dep.Replace.Version
		}
		if version != "" && version != zeroPseudoVersion {
			v.Version = version
			v.Revision = pseudoRevision(version)
		}
		return v
	}
	return v
}

// pseudoRevision returns the commit hash a pseudo-version ends with
// (…-<14-digit time>-<12 hex digits>, optionally followed by the -dirty
// that ./xcaddy.sh adds), with the -dirty kept, or "" for any other
// version.
func pseudoRevision(version string) string {
	rest, dirty := strings.CutSuffix(version, "-dirty")
	i := strings.LastIndexByte(rest, '-')
	if !strings.HasPrefix(rest, "v") || i < 16 {
		return ""
	}
	hash, stamp := rest[i+1:], rest[i-14:i]
	if len(hash) != 12 || !allOf(hash, "0123456789abcdef") || !allOf(stamp, "0123456789") || (rest[i-15] != '-' && rest[i-15] != '.') {
		return ""
	}
	if dirty {
		hash += "-dirty"
	}
	return hash
}

func allOf(s, set string) bool {
	for i := range len(s) {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}
