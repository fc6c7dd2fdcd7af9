#!/usr/bin/env bash
# Checks the systemd drop-in with `systemd-analyze verify`, the way systemd
# loads it: Caddy's official unit (testdata/caddy.service) with the drop-in
# in caddy.service.d/, in a scratch root that holds a copy of this host's
# system units and every program the unit and the drop-in run. Any output
# of systemd-analyze (an unknown key, a value it cannot parse, a missing or
# non-executable program) fails the check: systemd only warns about those
# and ignores the line, so its exit status alone proves nothing.
#
#   deploy/systemd/verify.sh [--caddy BIN] [DROPIN]
#
# --caddy BIN: the program installed as /usr/bin/caddy in the scratch root
# (default: this host's /bin/true, a stand-in). DROPIN: the drop-in to check
# (default: caddy.service.d/dws-notify.conf next to this script).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
caddy_bin=/bin/true
if [ "${1:-}" = "--caddy" ]; then
	caddy_bin="$2"
	shift 2
fi
dropin="${1:-$here/caddy.service.d/dws-notify.conf}"
unit="$here/testdata/caddy.service"

die() {
	printf 'verify.sh: FAILED: %s\n' "$*" >&2
	exit 1
}

command -v systemd-analyze >/dev/null 2>&1 || die "systemd-analyze is not installed (Debian: apt-get install systemd)"
[ -f "$dropin" ] || die "no drop-in at $dropin"
[ -x "$caddy_bin" ] || die "$caddy_bin is not an executable"
units=""
for d in /usr/lib/systemd/system /lib/systemd/system; do
	if [ -f "$d/multi-user.target" ]; then
		units="$d"
		break
	fi
done
[ -n "$units" ] || die "this host has no system units (multi-user.target) to verify against"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system/caddy.service.d" "$root/usr/bin"
cp -a "$units" "$root/usr/lib/systemd/system"
cp "$unit" "$root/etc/systemd/system/caddy.service"
cp "$dropin" "$root/etc/systemd/system/caddy.service.d/dws-notify.conf"
cp "$caddy_bin" "$root/usr/bin/caddy"

# Every other program an Exec*= line names, from this host.
progs="$(sed -nE 's/^Exec[A-Za-z]*=[-+!@:]*(\/[^ ]+).*/\1/p' "$unit" "$dropin" | sort -u)"
for p in $progs; do
	[ "$p" = /usr/bin/caddy ] && continue
	[ -x "$p" ] || die "$p (named by an Exec line) is not an executable on this host"
	mkdir -p "$root$(dirname "$p")"
	cp "$p" "$root$p"
done

echo "+ systemd-analyze verify --root=<scratch root> --man=no caddy.service   (drop-in: $dropin)"
rc=0
out="$(systemd-analyze verify --root="$root" --man=no caddy.service 2>&1)" || rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
	printf '%s\n' "$out" >&2
	die "systemd-analyze verify (exit $rc) found problems in caddy.service with $(basename "$dropin")"
fi
echo "OK: caddy.service with $(basename "$dropin") verifies cleanly"
