#!/usr/bin/env bash
# redis-compare.sh runs redis-benchmark against a gantry peer and against
# redis-server side by side and prints the ratios gantry/redis of
# throughput (rps, higher is better for gantry) and of p99 latency (lower
# is better for gantry).
#
# It runs four configurations: persistence off, then appendfsync everysec
# on both; each without pipelining and with -P 16. Everything listens on
# 127.0.0.1 only and every run is bounded by -n.
#
# Usage: bench/redis-compare.sh            (from the repository root)
# Environment: N (requests per test, default 1000000), C (clients, 50),
#   TESTS (default set,get,incr,lpush,rpop,sadd,hset,spop,zadd),
#   GPORT/RPORT (ports, default 16379/16380), PIPELINES ("1 16"),
#   MODES ("off everysec").
# Needs: go, redis-server and redis-benchmark
#   (apt-get install -y redis-server redis-tools).
set -euo pipefail

N=${N:-1000000}
C=${C:-50}
TESTS=${TESTS:-set,get,incr,lpush,rpop,sadd,hset,spop,zadd}
GPORT=${GPORT:-16379}
RPORT=${RPORT:-16380}
PIPELINES=${PIPELINES:-"1 16"}
MODES=${MODES:-"off everysec"}

for bin in go redis-server redis-benchmark redis-cli; do
	command -v "$bin" >/dev/null || { echo "redis-compare: $bin not found (apt-get install -y redis-server redis-tools)" >&2; exit 1; }
done

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
gpid=""
rpid=""
cleanup() {
	[ -n "$gpid" ] && kill "$gpid" 2>/dev/null && wait "$gpid" 2>/dev/null || true
	[ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/gantry" ./cmd/gantry)

wait_port() {
	for _ in $(seq 1 100); do
		redis-cli -h 127.0.0.1 -p "$1" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "redis-compare: nothing answers on port $1" >&2
	exit 1
}

start_servers() { # $1: off | everysec
	rm -rf "$work/gdata" "$work/rdata"
	mkdir -p "$work/gdata" "$work/rdata"
	if [ "$1" = off ]; then
		"$work/gantry" peer --bind 127.0.0.1 --port "$GPORT" 2>"$work/gantry.log" &
		gpid=$!
		redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no \
			--dir "$work/rdata" >"$work/redis.log" 2>&1 &
		rpid=$!
	else
		"$work/gantry" peer --bind 127.0.0.1 --port "$GPORT" --data-dir "$work/gdata" \
			--appendfsync "$1" 2>"$work/gantry.log" &
		gpid=$!
		redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly yes \
			--appendfsync "$1" --dir "$work/rdata" >"$work/redis.log" 2>&1 &
		rpid=$!
	fi
	wait_port "$GPORT"
	wait_port "$RPORT"
}

stop_servers() {
	kill "$gpid" "$rpid" 2>/dev/null || true
	wait "$gpid" "$rpid" 2>/dev/null || true
	gpid=""
	rpid=""
}

# bench PORT P OUT: one redis-benchmark run in CSV
bench() {
	redis-cli -h 127.0.0.1 -p "$1" flushall >/dev/null
	redis-benchmark -h 127.0.0.1 -p "$1" -t "$TESTS" -n "$N" -c "$C" -P "$2" --csv >"$3"
}

results="$work/results"
: >"$results"
for mode in $MODES; do
	start_servers "$mode"
	first=g
	for p in $PIPELINES; do
		# alternate which server goes first so neither always runs on a
		# machine warmed up (or slowed down) by the other
		if [ "$first" = g ]; then
			bench "$GPORT" "$p" "$work/g.csv"
			bench "$RPORT" "$p" "$work/r.csv"
			first=r
		else
			bench "$RPORT" "$p" "$work/r.csv"
			bench "$GPORT" "$p" "$work/g.csv"
			first=g
		fi
		# CSV: "test","rps","avg","min","p50","p95","p99","max"
		join -t, <(tail -n +2 "$work/g.csv" | tr -d '"' | cut -d, -f1,2,7 | sort) \
			<(tail -n +2 "$work/r.csv" | tr -d '"' | cut -d, -f1,2,7 | sort) |
			sed "s/^/$mode,$p,/" >>"$results"
	done
	stop_servers
done

echo
echo "gantry vs redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'): -n $N -c $C, 127.0.0.1"
printf '%-9s %-3s %-6s %11s %11s %7s %9s %9s %7s\n' persist P test gantry_rps redis_rps rps_x gantry_p99 redis_p99 p99_x
# fields: mode, P, test, gantry rps, gantry p99, redis rps, redis p99
awk -F, '{
	rx = ($6 > 0) ? $4 / $6 : 0
	px = ($7 > 0) ? $5 / $7 : 0
	printf "%-9s %-3s %-6s %11.0f %11.0f %6.2fx %9.3f %9.3f %6.2fx\n", $1, $2, $3, $4, $6, rx, $5, $7, px
}' "$results"
echo "(rps_x = gantry/redis throughput, higher is better; p99_x = gantry/redis p99 latency in ms, lower is better)"
