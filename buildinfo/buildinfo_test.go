package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestPluginVersion(t *testing.T) {
	const pseudo = "v0.0.0-20261206050443-67db36b6599d"
	for _, c := range []struct {
		name string
		bi   debug.BuildInfo
		want Build
	}{
		{"xcaddy with a version", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "caddy"},
			Deps: []*debug.Module{{Path: "github.com/caddyserver/caddy/v2", Version: "v2.11.9"}, {Path: modulePath, Version: pseudo, Replace: &debug.Module{Path: "/src", Version: develVersion}}}},
			Build{Version: pseudo, Revision: "67db36b6599d", GoVersion: "go1.26.8"}},
		{"xcaddy, uncommitted changes", debug.BuildInfo{Main: debug.Module{Path: "caddy"},
			Deps: []*debug.Module{{Path: modulePath, Version: pseudo + "-dirty", Replace: &debug.Module{Path: "/src"}}}},
			Build{Version: pseudo + "-dirty", Revision: "67db36b6599d-dirty"}},
		{"xcaddy without a version", debug.BuildInfo{Main: debug.Module{Path: "caddy"},
			Deps: []*debug.Module{{Path: modulePath, Version: zeroPseudoVersion, Replace: &debug.Module{Path: "/src", Version: develVersion}}}},
			Build{Version: develVersion}},
		{"a release", debug.BuildInfo{Main: debug.Module{Path: "caddy"}, Deps: []*debug.Module{{Path: modulePath, Version: "v1.2.0"}}},
			Build{Version: "v1.2.0"}},
		{"a pseudo-version after a tag", debug.BuildInfo{Main: debug.Module{Path: "caddy"}, Deps: []*debug.Module{{Path: modulePath, Version: "v1.2.1-0.20261206050443-67db36b6599d"}}},
			Build{Version: "v1.2.1-0.20261206050443-67db36b6599d", Revision: "67db36b6599d"}},
		{"replaced by a fork's version", debug.BuildInfo{Main: debug.Module{Path: "caddy"},
			Deps: []*debug.Module{{Path: modulePath, Version: "v1.2.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.2.0-fork.1"}}}},
			Build{Version: "v1.2.0-fork.1"}},
		{"main module with VCS stamps", debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: develVersion},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}},
			Build{Version: develVersion, Revision: "0123456789abcdef-dirty"}},
		{"not in the build", debug.BuildInfo{Main: debug.Module{Path: "caddy"}}, Build{Version: develVersion}},
	} {
		if got := From(&c.bi); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	for _, v := range []string{"v1.2.3", "v0.0.0-2026120605044-67db36b6599d", "v0.0.0-20261206050443-67db36b6599", "v0.0.0-20261206050443-67DB36B6599D", "x-20261206050443-67db36b6599d"} {
		if r := pseudoRevision(v); r != "" {
			t.Errorf("pseudoRevision(%q) = %q, want none", v, r)
		}
	}
}
