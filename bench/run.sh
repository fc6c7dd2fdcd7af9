#!/usr/bin/env bash
# The gateway load harness: dws_notify against plain reverse_proxy, side by
# side on this machine. See BENCHMARKS.md ("gateway (load harness)") for the
# design and the figures.
#
#   bench/run.sh              build ./caddy with ./xcaddy.sh, then alternating
#                             rounds of a (plain reverse_proxy), b (dws_notify,
#                             everything on, signed answers) and c (b without
#                             answer signing); prints the medians, the
#                             b/a and b/c ratio lines and b-a (the gateway's
#                             CPU per notification beyond plain proxying),
#                             each with its goals: SPEC §7 (b/a >= 0.80,
#                             b-a <= 45 µs, b/c >= 0.95) and issue 17's step
#                             (b/a >= 0.65, b-a <= 70 µs)
#   bench/run.sh --long       build, then 1,000,000 notifications through b:
#                             cost per notification and RSS at 10k, 100k, 1M
#                             stored records
#   bench/run.sh --queued     build, then alternating rounds of c (synchronous,
#                             unsigned) and q (c with acknowledge on_receipt:
#                             S once queued), 1000 customers; prints S
#                             latency and throughput side by side
#   bench/run.sh --drain      build, then mode q: DRAIN_N (100000)
#                             notifications queued while the backend is
#                             down, then the time to deliver them once it
#                             is back (1000 customers)
#   bench/run.sh --profile    the rounds, then one profiled run each of a, b and c
#                             (CPU, heap and allocation profiles from Caddy's
#                             /debug/pprof, saved under bench/out/profile-*)
#   bench/run.sh --base REV   also mode o: b on a build of the commit REV (built
#                             from a temporary worktree with its own
#                             xcaddy.sh, cached in bench/out by commit, Caddy
#                             version and Go toolchain),
#                             in the same alternating rounds: the before and
#                             after of a change, side by side in one run
#   bench/run.sh --paced      also mode p: a (plain reverse_proxy) paced at the
#                             rate b reached in the same round, which splits
#                             b-a into b-p (what dws_notify adds at one rate)
#                             and p-a (the same proxying at b's lower rate)
#   bench/run.sh -- <flags>   more loadgen flags (loadgen bench -h, loadgen long -h)
#
# Environment: ROUNDS (5), DURATION (8s window per run), WARMUP (1s),
# CONCURRENCY (32), POOL (pre-signed notifications for the rounds, 100000),
# LONG_N (1000000), DRAIN_N (100000), SKIP_BUILD=1 to use an existing ./caddy, PIN=1 to run
# caddy on CPU 1 and the load generator and backend on CPU 0 (taskset; the
# same for a, b and c).
#
# Everything the harness writes goes to bench/out/ (gitignored): the
# pre-signed notifications (reused for 24 h), results as JSON and CSV,
# profiles. Each gateway run gets a fresh directory under $TMPDIR (its
# storage, XDG_DATA_HOME, XDG_CONFIG_HOME and caddy.log), removed afterwards.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
OUT="$ROOT/bench/out"
cd "$ROOT"

mode=bench
extra=()
base=
modes=a,b,c
while [ $# -gt 0 ]; do
	case "$1" in
	--base)
		[ $# -ge 2 ] || { echo "bench/run.sh: --base needs a commit" >&2; exit 2; }
		base=$2
		shift
		;;
	--paced) modes=$modes,p ;;
	--long) mode=long ;;
	--queued) mode=queued ;;
	--drain) mode=drain ;;
	--profile) extra+=(-profile) ;;
	--) shift; extra+=("$@"); break ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done

if [ -n "$base" ] && [ "$mode" != bench ]; then
	echo "bench/run.sh: --base compares b in the bench rounds; it does not go with --$mode" >&2
	exit 2
fi

say() { printf '==> %s\n' "$*" >&2; }
started=$SECONDS
mkdir -p "$OUT"

if [ "${SKIP_BUILD:-}" = 1 ]; then
	say "SKIP_BUILD=1: using the existing ./caddy"
else
	say "building ./caddy with ./xcaddy.sh"
	./xcaddy.sh >"$OUT/xcaddy.log" 2>&1 || { tail -n 30 "$OUT/xcaddy.log" >&2; exit 1; }
	say "built in $((SECONDS - started))s ($OUT/xcaddy.log)"
fi
# Run a private copy: another build of ./caddy during the runs must not
# change the binary under test.
cp -f ./caddy "$OUT/caddy"

if [ -n "$base" ]; then
	base_hash=$(git rev-parse --verify --short=12 "$base^{commit}") || { echo "bench/run.sh: --base $base is not a commit" >&2; exit 2; }
	# The cache is keyed by what makes the build: the commit, the Caddy
	# version asked for and the Go toolchain.
	base_key=$(printf '%s %s %s' "$base_hash" "${CADDY_VERSION:-}" "$(go version)" | sha256sum | cut -c1-12)
	base_bin="$OUT/caddy-base-$base_hash-$base_key"
	if [ -x "$base_bin" ]; then
		say "base build of $base_hash: $base_bin (cached)"
	else
		base_src=$(mktemp -d "${TMPDIR:-/tmp}/dws-bench-base.XXXXXX")
		# An interrupted or failed build leaves no worktree, no directory
		# and no half-copied binary behind.
		cleanup_base() {
			git worktree remove --force "$base_src/src" 2>/dev/null || true
			rm -rf "$base_src" "$base_bin.tmp"
		}
		trap cleanup_base EXIT
		say "building the base $base_hash in $base_src"
		git worktree add -q --detach "$base_src/src" "$base_hash"
		if ! (cd "$base_src/src" && ./xcaddy.sh) >"$OUT/xcaddy-base.log" 2>&1; then
			tail -n 30 "$OUT/xcaddy-base.log" >&2
			exit 1
		fi
		cp -f "$base_src/src/caddy" "$base_bin.tmp"
		mv -f "$base_bin.tmp" "$base_bin"
		cleanup_base
		trap - EXIT
	fi
	modes=$modes,o
	extra+=(-base-caddy "$base_bin")
fi

say "building the load generator"
go build -o "$OUT/loadgen" ./bench/loadgen

tmp_dir="${TMPDIR:-/tmp}"
say "machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr), $(go version | cut -d' ' -f3-4)"
say "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB total, " $7 " GiB available"}')"
say "run directories on: $(df -P "$tmp_dir" | awk 'NR==2 {print $1}') $(findmnt -no FSTYPE,OPTIONS -T "$tmp_dir" 2>/dev/null || true)"
say "caddy: $("$OUT/caddy" version)"
say "load: $(cut -d' ' -f1-3 /proc/loadavg)"

caddy_cpus=()
launcher=()
if [ "${PIN:-}" = 1 ]; then
	command -v taskset >/dev/null || { echo "PIN=1 needs taskset" >&2; exit 1; }
	caddy_cpus=(-gateway-cpus 1)
	launcher=(taskset -c 0)
	say "PIN=1: caddy on CPU 1; load generator and backend on CPU 0"
fi

common=(-caddy "$OUT/caddy" -out "$OUT" -tmp "$tmp_dir" -c "${CONCURRENCY:-32}" "${caddy_cpus[@]}")
if [ "$mode" = long ]; then
	"${launcher[@]}" "$OUT/loadgen" long "${common[@]}" -n "${LONG_N:-1000000}" "${extra[@]}"
elif [ "$mode" = queued ]; then
	"${launcher[@]}" "$OUT/loadgen" bench "${common[@]}" -modes c,q -customers 1000 \
		-rounds "${ROUNDS:-5}" -duration "${DURATION:-8s}" -warmup "${WARMUP:-1s}" -pool "${POOL:-100000}" "${extra[@]}"
elif [ "$mode" = drain ]; then
	"${launcher[@]}" "$OUT/loadgen" drain "${common[@]}" -customers 1000 -n "${DRAIN_N:-100000}" "${extra[@]}"
else
	"${launcher[@]}" "$OUT/loadgen" bench "${common[@]}" -modes "$modes" \
		-rounds "${ROUNDS:-5}" -duration "${DURATION:-8s}" -warmup "${WARMUP:-1s}" -pool "${POOL:-100000}" "${extra[@]}"
fi
say "bench/run.sh took $((SECONDS - started))s; load now $(cut -d' ' -f1-3 /proc/loadavg)"
