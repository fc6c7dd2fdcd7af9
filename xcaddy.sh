#!/usr/bin/env bash
# Builds ./caddy: Caddy (v2.11.9 unless CADDY_VERSION says otherwise) plus the
# dws_notify module taken from this working tree, using a pinned xcaddy.
#
#   ./xcaddy.sh                      # build ./caddy
#   CADDY_VERSION=v2.11.9 ./xcaddy.sh
#   DWS_GOPROXY='https://goproxy.example|off' ./xcaddy.sh   # force the GOPROXY used
#
# xcaddy is a pinned tool dependency of the small module in tools/ (see
# tools/go.mod), not of the plugin's own go.mod: that keeps xcaddy's
# dependencies out of every build that imports the plugin. `go tool xcaddy`
# builds it from the module cache at exactly the version tools/go.sum pins.
# The usual xcaddy variables (XCADDY_DEBUG, XCADDY_SKIP_CLEANUP,
# XCADDY_RACE_DETECTOR, XCADDY_GO_BUILD_FLAGS, ...) pass straight through.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
MODULE_PATH="github.com/dwsnotify/dws_notify"
# The package whose init registers the module and the directive.
PLUGIN_PACKAGE="$MODULE_PATH/caddymodule"
MODULE_ID="http.handlers.dws_notify"
CADDY_VERSION="${CADDY_VERSION:-v2.11.9}"
OUT="$ROOT/caddy"

say() { printf '==> %s\n' "$*" >&2; }
# redact hides credentials in proxy URLs (https://user:token@host/...).
redact() { sed -E 's#(://)[^/@]*@#\1***@#g' <<<"$1"; }
die() {
	printf 'xcaddy.sh: FAILED: %s\n' "$*" >&2
	exit 1
}
trap 'printf "xcaddy.sh: FAILED (exit %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR

command -v go >/dev/null 2>&1 || die "the go command is not on PATH (Go 1.26 or newer is needed)"
[ -f "$ROOT/go.mod" ] || die "$ROOT/go.mod not found: run this script from a checkout of $MODULE_PATH"
[ -f "$ROOT/tools/go.mod" ] || die "$ROOT/tools/go.mod not found: the pinned xcaddy lives there"
grep -q "^module $MODULE_PATH\$" "$ROOT/go.mod" || die "$ROOT/go.mod does not declare module $MODULE_PATH"

# What xcaddy is told, and why.
#
# --with github.com/dwsnotify/dws_notify/caddymodule
#     the package whose init() registers http.handlers.dws_notify and the
#     dws_notify directive; xcaddy blank-imports it in its generated main.go.
#     (The repository root package is not importable: its only file carries the
#     `tools` build tag, so `--with github.com/dwsnotify/dws_notify=<root>`
#     would fail with "build constraints exclude all Go files".)
# --replace github.com/dwsnotify/dws_notify=<this checkout>
#     a replace directive in xcaddy's throwaway go.mod, so the module is built
#     from this working tree, uncommitted edits included.
#
# GOPROXY: why the list ends in "|off".
#
# xcaddy then runs `go get caddy@<version>` and a bare `go get`, which has to
# find the module that provides the imported .../caddymodule package. The
# go command asks each GOPROXY entry in turn whether a module exists at
# github.com/dwsnotify/dws_notify/caddymodule (and, if it uses
# `--with <module>=<dir>`, for the module's version list). It settles on the
# local replacement only when that lookup ends in "does not exist": an HTTP
# 404/410 from a proxy, or the "off" pseudo-proxy. Any other failure from an
# entry followed by "," ends the lookup with an error; an entry followed by
# "|" passes on to the next entry after any error.
#
#  - Here the module proxy answers 403 (not 404) for paths it does not hold,
#    our own included, so with the default "https://proxy.golang.org,direct"
#    the build stops at "reading .../caddymodule/@v/list: 403 Forbidden"
#    (tried: that is exactly what happens). "direct" would anyway mean a git
#    fetch from the code host, which is neither reachable nor wanted here.
#  - With "<proxy>|off" the 403 falls through to "off", which answers "does
#    not exist", and the go command uses the replacement. Every other module
#    (Caddy and its dependencies) still comes from <proxy>. If <proxy> fails
#    for one of those, the error shown is still the proxy's own (the go
#    command prefers a real error over "off"'s not-found when reporting).
#  - On the open internet proxy.golang.org answers 404 for an unpublished
#    path; that already counts as "does not exist", "off" agrees, and the
#    replacement is used the same way. Once the module is published, the
#    proxy's answer names a real version, and the replace directive (which
#    has no version) still maps whatever version is selected to this checkout.
#
# So we keep the user's FIRST GOPROXY entry (their mirror or proxy.golang.org)
# and put "|off" after it. Later entries (usually ",direct") are dropped: they
# are never needed for Caddy's dependencies, which are all public modules, and
# "direct" would turn an unpublished path into a fetch from the code host.
# A GOPROXY of "off" stays "off" (offline builds from a filled module cache).
# DWS_GOPROXY, when set, is used verbatim instead.
if [ -n "${DWS_GOPROXY:-}" ]; then
	BUILD_GOPROXY="$DWS_GOPROXY"
	say "GOPROXY for the build: $(redact "$BUILD_GOPROXY") (from DWS_GOPROXY)"
else
	user_goproxy="$(go env GOPROXY)"
	first="${user_goproxy%%[,|]*}"
	case "$first" in
	"") first="https://proxy.golang.org" ;;
	esac
	if [ "$first" = "off" ]; then
		BUILD_GOPROXY="off"
	else
		BUILD_GOPROXY="$first|off"
	fi
	say "GOPROXY for the build: $(redact "$BUILD_GOPROXY") (from go env GOPROXY=$(redact "$user_goproxy"))"
fi
export GOPROXY="$BUILD_GOPROXY"
# A go.work file the user may have set up must not leak into xcaddy's
# temporary module or into tools/.
export GOWORK=off

say "go: $(go version)"
say "building xcaddy pinned by tools/go.mod"
xcaddy_version="$(go -C "$ROOT/tools" list -m -f '{{.Version}}' github.com/caddyserver/xcaddy)" ||
	die "cannot resolve the pinned xcaddy version from tools/go.mod"
say "xcaddy $xcaddy_version"

# Remove the previous binary first: a failed build must not leave a stale
# ./caddy behind that looks like a fresh one, and unlinking avoids "text file
# busy" when an old ./caddy is still running.
rm -f "$OUT"

say "building Caddy $CADDY_VERSION with $PLUGIN_PACKAGE ($MODULE_PATH => $ROOT)"
say "output: $OUT"
start=$SECONDS
go -C "$ROOT/tools" tool xcaddy build "$CADDY_VERSION" \
	--with "$PLUGIN_PACKAGE" \
	--replace "$MODULE_PATH=$ROOT" \
	--output "$OUT" ||
	die "xcaddy build failed (see the output above)"
say "build took $((SECONDS - start))s"

[ -x "$OUT" ] || die "xcaddy reported success but $OUT is missing or not executable"

say "$OUT version"
version_out="$("$OUT" version)" || die "$OUT version failed"
printf '%s\n' "$version_out"
# A release tag must show up as such; a branch or commit (CADDY_VERSION=master)
# prints a pseudo-version, so only tags are compared.
if [[ "$CADDY_VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]]; then
	case "$version_out" in
	"$CADDY_VERSION" | "$CADDY_VERSION "*) ;;
	*) die "$OUT version says '$version_out', expected $CADDY_VERSION" ;;
	esac
fi

say "checking that $OUT list-modules contains $MODULE_ID"
modules="$("$OUT" list-modules)" || die "$OUT list-modules failed"
if ! grep -qx "$MODULE_ID" <<<"$modules"; then
	die "$OUT list-modules does not contain $MODULE_ID"
fi
printf '%s\n' "$MODULE_ID"
say "OK: $OUT is Caddy $CADDY_VERSION with $MODULE_ID"
