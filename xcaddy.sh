#!/usr/bin/env bash
# Builds ./caddy: Caddy (the version go.mod requires unless CADDY_VERSION says
# otherwise) plus the dws_notify module taken from this working tree, using a
# pinned xcaddy. The build line is the one every Caddy plugin uses (and the
# Dockerfile's):
#
#   xcaddy build <version> --with github.com/dwsnotify/dws_notify[@<module version>]=<this checkout>
#
# (the module version, computed from git, is what `caddy list-modules
# --versions` then shows; see module_version below).
#
#   ./xcaddy.sh                      # build ./caddy
#   CADDY_VERSION=v2.11.9 ./xcaddy.sh
#   DWS_GOPROXY='https://goproxy.example|off' ./xcaddy.sh   # force the GOPROXY used
#   DWS_NOTIFY_VERSION=v1.2.0 ./xcaddy.sh                  # force the module version recorded
#
# A CADDY_VERSION older than the Caddy this module requires (go.mod) is
# refused before anything is built: Go's minimum version selection would
# quietly build the newer Caddy instead. A failed run leaves no ./caddy.
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
MODULE_ID="http.handlers.dws_notify"
OUT="$ROOT/caddy"

say() { printf '==> %s\n' "$*" >&2; }
# redact hides credentials in proxy URLs (https://user:token@host/...).
redact() { sed -E 's#(://)[^/@]*@#\1***@#g' <<<"$1"; }
# die reports a failure and removes ./caddy: a failed run leaves none.
die() {
	printf 'xcaddy.sh: FAILED: %s\n' "$*" >&2
	rm -f "$OUT"
	exit 1
}
trap 'printf "xcaddy.sh: FAILED (exit %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&2; rm -f "$OUT"' ERR

command -v go >/dev/null 2>&1 || die "the go command is not on PATH (Go 1.26 or newer is needed)"
[ -f "$ROOT/go.mod" ] || die "$ROOT/go.mod not found: run this script from a checkout of $MODULE_PATH"
[ -f "$ROOT/tools/go.mod" ] || die "$ROOT/tools/go.mod not found: the pinned xcaddy lives there"
grep -q "^module $MODULE_PATH\$" "$ROOT/go.mod" || die "$ROOT/go.mod does not declare module $MODULE_PATH"

# The previous ./caddy goes first: after a failed run (die removes what a
# failed build left) there is no ./caddy, so a stale binary never passes for
# the one just asked for; unlinking also avoids "text file busy" while an
# old ./caddy still runs.
rm -f "$OUT" || die "cannot remove the previous $OUT"

floor="$(awk '$1 == "github.com/caddyserver/caddy/v2" { print $2; exit }' "$ROOT/go.mod")"
[ -n "$floor" ] || die "$ROOT/go.mod does not require github.com/caddyserver/caddy/v2"
CADDY_VERSION="${CADDY_VERSION:-$floor}"

# Refuse a Caddy older than go.mod's before anything is built: xcaddy would
# resolve the module's requirement and build go.mod's Caddy (which `caddy
# version` then shows), so the request could only fail after a full build.
# Branches and commits (CADDY_VERSION=master) are not compared.

# semver_older A B: true when the release tag A (vX.Y.Z[-pre]) is older than
# the release tag B. A pre-release is older than its release.
semver_older() {
	local a="${1#v}" b="${2#v}" a_pre="" b_pre="" i
	if [[ $a == *-* ]]; then a_pre="${a#*-}"; a="${a%%-*}"; fi
	if [[ $b == *-* ]]; then b_pre="${b#*-}"; b="${b%%-*}"; fi
	local -a x y
	IFS=. read -r -a x <<<"$a"
	IFS=. read -r -a y <<<"$b"
	for i in 0 1 2; do
		if ((10#${x[i]:-0} < 10#${y[i]:-0})); then return 0; fi
		if ((10#${x[i]:-0} > 10#${y[i]:-0})); then return 1; fi
	done
	[ -n "$a_pre" ] && [ -z "$b_pre" ]
}

if [[ "$CADDY_VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
	if semver_older "$CADDY_VERSION" "$floor"; then
		die "CADDY_VERSION=$CADDY_VERSION is older than Caddy $floor, which this module requires (go.mod); xcaddy would build $floor instead. Use CADDY_VERSION=$floor or newer. Nothing was built."
	fi
fi

# What xcaddy is told, and why.
#
# <version>
#     the Caddy release (CADDY_VERSION, default go.mod's).
# --with github.com/dwsnotify/dws_notify@<module version>=<this checkout>
#     the module's root package (dwsnotify.go), which imports caddymodule,
#     whose init() registers http.handlers.dws_notify, the dws_notify
#     directive, the admin endpoints and the commands; xcaddy blank-imports
#     it in its generated main.go and writes a replace directive into its
#     throwaway go.mod, so the module is built from this working tree,
#     uncommitted edits included. This is the standard plugin line, the one
#     the Dockerfile and the README give, with the module version named
#     (module_version, below).
# --output ./caddy
#
# GOPROXY: why the list ends in "|off".
#
# xcaddy runs `go get github.com/dwsnotify/dws_notify caddy@<version>`,
# which asks each GOPROXY entry in turn for the module's version list even
# though a replace directive names the checkout. The go command settles on
# the local replacement only when that lookup ends in "does not exist": an
# HTTP 404/410 from a proxy, or the "off" pseudo-proxy. Any other failure
# from an entry followed by "," ends the lookup with an error; an entry
# followed by "|" passes on to the next entry after any error.
#
#  - Here the module proxy answers 403 (not 404) for paths it does not hold,
#    our own included, so with the default "https://proxy.golang.org,direct"
#    the build stops at "reading .../dws_notify/@v/list: 403 Forbidden"
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
#    proxy's answer names a real version, and the replace directive still
#    maps the version asked for (or, without one, whatever version is
#    selected) to this checkout.
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

# The module version the binary records.
#
# `--with <module>=<dir>` makes xcaddy write `replace <module> => <dir>` into
# its throwaway go.mod; the go command then requires the module at the
# placeholder v0.0.0-00010101000000-000000000000, which is what the binary's
# build information, and so `caddy list-modules --versions`, shows: nothing
# about which code was built. The go command stamps VCS information only
# for the main module (xcaddy's generated one, in a temporary directory),
# never for a dependency, so the commit is lost too. What we can change is
# the version on the --with line: `--with <module>@<version>=<dir>` makes
# the replace apply to that version, which becomes the required one and is
# recorded as the module's version (a replaced version is never looked up
# anywhere). So the version is computed from this checkout, as the go
# command would name the same commit if it were fetched from a proxy:
#   - HEAD tagged vX.Y.Z and no uncommitted changes: vX.Y.Z;
#   - else a pseudo-version: v0.0.0-<commit time, UTC>-<12-digit hash>, or
#     vX.Y.(Z+1)-0.<time>-<hash> after the newest release tag vX.Y.Z;
#   - uncommitted changes (tracked or untracked files): "-dirty" appended
#     (valid semver; the go command accepts it for a replaced version).
# What it cannot say: which uncommitted changes. Without git (a tarball,
# a Docker build context without .git) no version is given and the build
# shows the placeholder; the module reports "(devel)" then.
# DWS_NOTIFY_VERSION overrides the computed version (a release pipeline).
module_version() {
	if [ -n "${DWS_NOTIFY_VERSION:-}" ]; then
		printf '%s\n' "$DWS_NOTIFY_VERSION"
		return
	fi
	command -v git >/dev/null 2>&1 || return 0
	git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1 || return 0
	local rev stamp dirty="" tag base
	rev="$(git -C "$ROOT" rev-parse --short=12 HEAD)" || return 0
	stamp="$(TZ=UTC git -C "$ROOT" show -s --format=%cd --date=format-local:%Y%m%d%H%M%S HEAD)" || return 0
	if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then
		dirty="-dirty"
	fi
	tag="$(git -C "$ROOT" describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null || true)"
	if [ -z "$dirty" ] && [[ $tag =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
		printf '%s\n' "$tag"
		return
	fi
	base="$(git -C "$ROOT" describe --tags --abbrev=0 --match 'v[0-9]*.[0-9]*.[0-9]*' HEAD 2>/dev/null || true)"
	if [[ $base =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
		printf 'v%s.%s.%s-0.%s-%s%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "$((BASH_REMATCH[3] + 1))" "$stamp" "$rev" "$dirty"
		return
	fi
	printf 'v0.0.0-%s-%s%s\n' "$stamp" "$rev" "$dirty"
}
module_version="$(module_version)"
with="$MODULE_PATH=$ROOT"
if [ -n "$module_version" ]; then
	with="$MODULE_PATH@$module_version=$ROOT"
	say "module version: $module_version"
else
	say "module version: none (no git checkout): the build records the placeholder version"
fi

say "building Caddy $CADDY_VERSION (go.mod requires $floor or newer) with $MODULE_PATH => $ROOT"
say "output: $OUT"
start=$SECONDS
say "xcaddy build $CADDY_VERSION --with $with --output $OUT"
go -C "$ROOT/tools" tool xcaddy build "$CADDY_VERSION" \
	--with "$with" \
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
if [ -n "$module_version" ]; then
	say "checking that $OUT list-modules --versions shows $MODULE_ID $module_version"
	versions="$("$OUT" list-modules --versions)" || die "$OUT list-modules --versions failed"
	grep -qxF "$MODULE_ID $module_version" <<<"$versions" ||
		die "$OUT list-modules --versions does not show $MODULE_ID $module_version: $(grep -F "$MODULE_ID" <<<"$versions")"
	printf '%s %s\n' "$MODULE_ID" "$module_version"
fi
say "OK: $OUT is Caddy $CADDY_VERSION with $MODULE_ID"
