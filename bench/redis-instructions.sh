#!/usr/bin/env bash
# redis-instructions.sh counts the user-space instructions a gantry peer
# and redis-server execute per request of redis-benchmark's tests, under
# valgrind's callgrind: a measure the load of a shared machine does not
# move (bench/redis-compare.sh's throughput does, by +-20 % per test).
#
# For each test and server: start the server under callgrind (the peer
# with GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off: valgrind 3.19 stops on
# Go's preemption signals, and on RDTSCP, which Go's runtime reads when
# one of its locks is contended), send a warm-up of 20,000 requests,
# zero the counters, run redis-benchmark -n N -c 50 -P P, dump, and print
# the instructions of that run divided by N. Kernel time (the read and
# write system calls) is not counted.
#
# Usage: bench/redis-instructions.sh            (from the repository root)
# Environment: TESTS (default get,incr,lpush,hset,zadd,publish,xadd; the
#   names of redis-benchmark -t, and publish, xadd and evalsha (a cached
#   script that INCRs a random key) as in redis-compare.sh, and xrange (10
#   entries from the middle of a stream of 20,000)), N (requests,
#   default 200000), P (pipeline, default 16), PORT (default 16390),
#   SERVERS ("gantry redis"), GANTRY (a gantry binary to count instead of
#   one built from this tree, built with symbols).
# Needs: go, valgrind, redis-server, redis-benchmark, redis-cli.
set -euo pipefail

TESTS=${TESTS:-get,incr,lpush,hset,zadd,publish,xadd}
N=${N:-200000}
P=${P:-16}
PORT=${PORT:-16390}
SERVERS=${SERVERS:-"gantry redis"}

. "$(dirname "$0")/lib.sh"
bench_setup redis-instructions
need go valgrind callgrind_control redis-server redis-benchmark redis-cli
build_gantry
vpid=""
subpid=""

# count SERVER TEST: prints the instructions per request
count() {
	local out=$work/cg.$1.$2
	mkdir -p "$work/data"
	if [ "$1" = gantry ]; then
		GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=callgrind --callgrind-out-file="$out.%p" \
			"$work/gantry" peer --bind 127.0.0.1 --port "$PORT" 2>"$out.log" &
	else
		valgrind --tool=callgrind --callgrind-out-file="$out.%p" redis-server --bind 127.0.0.1 \
			--port "$PORT" --save "" --appendonly no --dir "$work/data" >"$out.log" 2>&1 &
	fi
	vpid=$!
	pids+=("$vpid")
	local up=0
	for _ in $(seq 1 300); do
		if ! kill -0 "$vpid" 2>/dev/null; then
			break
		fi
		if redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then
			up=1
			break
		fi
		sleep 0.2
	done
	[ "$up" = 1 ] || die "$1 does not answer on port $PORT"
	redis-cli -h 127.0.0.1 -p "$PORT" flushall >/dev/null
	local cmd=(-t "$2")
	case "$2" in
	evalsha)
		cmd=(-r 100000 evalsha "$(redis-cli -h 127.0.0.1 -p "$PORT" script load "return redis.call('incr', KEYS[1])")" 1 "key:__rand_int__")
		;;
	publish)
		redis-cli -h 127.0.0.1 -p "$PORT" subscribe bench >/dev/null &
		subpid=$!
		pids+=("$subpid")
		sleep 0.5
		cmd=(publish bench "message-of-some-bytes")
		;;
	xadd)
		cmd=(xadd bench-stream '*' field "value-of-some-bytes")
		;;
	xrange)
		# 10 entries from the middle of a stream of 20,000: a seek inside
		# a node (chunk) and 10 entries decoded
		redis-benchmark -h 127.0.0.1 -p "$PORT" -n 20000 -c 50 -P 16 -q \
			xadd bench-stream '*' field "value-of-some-bytes" >/dev/null
		local mid
		mid=$(redis-cli -h 127.0.0.1 -p "$PORT" --raw xrange bench-stream - + COUNT 10000 | sed -n 29998p)
		cmd=(xrange bench-stream "$mid" + COUNT 10)
		;;
	esac
	case "$2" in
	rpop | lpop) # pop from a full list, not an empty one
		redis-benchmark -h 127.0.0.1 -p "$PORT" -n $((N + 20000)) -c 50 -P 16 -q -t lpush >/dev/null
		;;
	esac
	redis-benchmark -h 127.0.0.1 -p "$PORT" -n 20000 -c 50 -P "$P" -q "${cmd[@]}" >/dev/null
	callgrind_control -z "$vpid" >/dev/null 2>&1
	redis-benchmark -h 127.0.0.1 -p "$PORT" -n "$N" -c 50 -P "$P" -q "${cmd[@]}" >/dev/null
	callgrind_control -d "$vpid" >/dev/null 2>&1
	sleep 1
	local f
	f=$(ls -t "$out".* | grep -v '\.log$' | head -n 1)
	awk -v n="$N" '/^(summary|totals):/ { printf "%.0f", $2 / n; exit }' "$f"
	if [ -n "$subpid" ]; then
		kill "$subpid" 2>/dev/null || true
		wait "$subpid" 2>/dev/null || true
		forget "$subpid"
		subpid=""
	fi
	kill "$vpid" 2>/dev/null || true
	wait "$vpid" 2>/dev/null || true
	forget "$vpid"
	vpid=""
	rm -rf "$work/data" "$out".*
}

echo "instructions per request (callgrind), redis-benchmark -n $N -c 50 -P $P"
printf '%-8s' test
for srv in $SERVERS; do printf ' %10s' "$srv"; done
echo
for t in ${TESTS//,/ }; do
	printf '%-8s' "$(echo "$t" | tr a-z A-Z)"
	for srv in $SERVERS; do printf ' %10s' "$(count "$srv" "$t")"; done
	echo
done
