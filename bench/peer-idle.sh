#!/usr/bin/env bash
# peer-idle.sh measures what an idle peer cluster costs, and how fast it
# agrees that a killed primary failed.
#
# It starts NODES gantry peers as `gantry bench --machine-cpus` starts its
# machines (one process each, loopback, --run-tasks with the mock driver,
# no data dir), forms a cluster of NODES primaries with `gantry cluster
# create`, lets it settle, then reads every peer's CPU time (utime + stime
# of /proc/PID/stat) over WINDOW seconds and prints the cluster's CPU
# seconds per second. With PPROF=FILE it saves a CPU profile of the first
# peer over the window (`go tool pprof -top FILE`), with PERF=FILE a
# `perf record -g` of every peer (`perf report -i FILE`). With KILL=1 it then
# kills the last peer (SIGKILL) and polls every other peer's CLUSTER NODES
# (redis-cli, every 20 ms) until each shows it `fail`, and prints the time
# from the kill to the first and to the last of them.
#
# Usage: bench/peer-idle.sh               (from the repository root)
# Environment: NODES (default 12), WINDOW (seconds, default 20), SETTLE
#   (seconds after forming, default 5), GANTRY (a gantry binary; default
#   built from this tree), BASE (first client port, default 18101; the
#   gossip ports are +1000 and the HTTP ports +2000), PPROF, PERF, KILL.
# Needs: go, redis-cli (apt-get install -y redis-tools).
set -euo pipefail

NODES=${NODES:-12}
WINDOW=${WINDOW:-20}
SETTLE=${SETTLE:-5}
BASE=${BASE:-18101}
KILL=${KILL:-0}
PPROF=${PPROF:-}
PERF=${PERF:-}

. "$(dirname "$0")/lib.sh"
bench_setup peer-idle
need redis-cli
[ "$NODES" -ge 3 ] || die "NODES must be at least 3"
build_gantry
gantry=$work/gantry

addrs=()
for i in $(seq 0 $((NODES - 1))); do
	port=$((BASE + i))
	args=(peer --cluster --bind 127.0.0.1 --port "$port" --cluster-port $((port + 1000))
		--http-addr 127.0.0.1:$((port + 2000)) --run-tasks --drivers mock --leave-on-signal none
		--cpu 4000 --memory-mb 8000)
	if [ "$i" = 0 ] && [ -n "$PPROF" ]; then
		args+=(--pprof 127.0.0.1:$((BASE - 1)))
	fi
	TMPDIR=$work "$gantry" "${args[@]}" >"$work/peer-$i.log" 2>&1 &
	pids+=($!)
	addrs+=(127.0.0.1:$port)
done
for a in "${addrs[@]}"; do
	for _ in $(seq 1 200); do
		redis-cli -h 127.0.0.1 -p "${a##*:}" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
done
"$gantry" cluster create "${addrs[@]}" >"$work/create.log" 2>&1 || { cat "$work/create.log" >&2; exit 1; }
sleep "$SETTLE"

cpu() { # the peers' CPU time in clock ticks
	local t=0 f
	for p in "${pids[@]}"; do
		read -ra f <"/proc/$p/stat"
		t=$((t + f[13] + f[14]))
	done
	echo "$t"
}
switches() { # the peers' context switches, every thread: their wake-ups
	local n=0 p f k v
	for p in "${pids[@]}"; do
		for f in /proc/"$p"/task/*/status; do
			while read -r k v; do
				case $k in voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) n=$((n + v)) ;; esac
			done <"$f" 2>/dev/null || true
		done
	done
	echo "$n"
}
hz=$(getconf CLK_TCK)
if [ -n "$PPROF" ]; then
	curl -sf -o "$PPROF" "http://127.0.0.1:$((BASE - 1))/debug/pprof/profile?seconds=$WINDOW" &
	prof=$!
fi
s0=$(switches)
c0=$(cpu)
t0=$(date +%s.%N)
if [ -n "$PERF" ]; then
	perf record -q -g -o "$PERF" -p "$(IFS=,; echo "${pids[*]}")" -- sleep "$WINDOW" >/dev/null 2>&1
else
	sleep "$WINDOW"
fi
c1=$(cpu)
t1=$(date +%s.%N)
s1=$(switches)
[ -n "$PPROF" ] && wait "$prof"
awk -v n="$NODES" -v c="$((c1 - c0))" -v sw="$((s1 - s0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
	s = c / hz / (t1 - t0)
	printf "idle cluster of %d peers: %.3f CPU-s per s (%.1f%% of a core; %.2f%% per peer), %.0f context switches per s per peer, over %.1fs, load average %s\n", n, s, 100 * s, 100 * s / n, sw / n / (t1 - t0), t1 - t0, load
}'

if [ "$KILL" = 1 ]; then
	last=$((NODES - 1))
	victim=$(redis-cli -p "${addrs[$last]##*:}" cluster myid)
	watchers=()
	for i in $(seq 0 $((last - 1))); do
		(stdbuf -oL redis-cli -p "${addrs[$i]##*:}" -r 1500 -i 0.02 cluster nodes 2>/dev/null |
			while read -r id _ flags _; do
				if [ "$id" = "$victim" ] && [[ ",$flags," == *,fail,* ]]; then
					echo "$EPOCHREALTIME" >"$work/fail-$i"
					break
				fi
			done) &
		watchers+=($!)
	done
	sleep 0.5
	k=$EPOCHREALTIME
	kill -9 "${pids[$last]}"
	for w in "${watchers[@]}"; do wait "$w" 2>/dev/null || true; done
	awk -v k="$k" -v n="$last" 'BEGIN { lo = -1; hi = -1; seen = 0 }
		{ d = $1 - k; if (lo < 0 || d < lo) lo = d; if (d > hi) hi = d; seen++ }
		END { if (seen == 0) { print "kill: no peer marked the killed primary fail within 30s"; exit }
		      printf "kill -> FAIL: first peer %.3fs, last %.3fs (%d of %d peers)\n", lo, hi, seen, n }' "$work"/fail-* 2>/dev/null ||
		echo "kill: no peer marked the killed primary fail within 30s"
fi
