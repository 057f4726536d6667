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
# It also prints each server's CPU time per request (user + system, all
# its threads, from /proc/PID/stat over the run): on a machine shared with
# other work, or where the client and the server take turns on the same
# cores, throughput swings by more than the servers differ, while the CPU a
# server spends per request moves much less.
#
# Usage: bench/redis-compare.sh            (from the repository root)
# Environment: N (requests per test, default 1000000), C (clients, 50),
#   TESTS (default set,get,incr,lpush,rpop,sadd,hset,spop,zadd,evalsha,publish,xadd;
#   evalsha runs a cached script that INCRs a random key, publish publishes
#   to a channel one redis-cli client subscribes to, xadd appends an entry
#   with an auto-generated ID and one field to a single stream),
#   GPORT/RPORT (ports, default 16379/16380), PIPELINES ("1 16"),
#   PIPE_KEYS (keys loaded with redis-cli --pipe first, default 1000000; 0
#   skips it), MODES ("off everysec"), REPEAT (runs per test, default 1; the table
#   shows the best rps and the best p99 of the runs of each server),
#   TLS (1: both servers serve a TLS port with client certificates, made
#   with gantry tls, and redis-benchmark connects to it with --tls; the
#   redis-server must be built with TLS, as Debian's is),
#   PIN (1: each server runs on CPU SERVER_CPU and redis-benchmark on
#   CLIENT_CPU, with taskset, so the scheduler cannot put the client and
#   the server on one core; default 0; SERVER_CPU defaults to 1, CLIENT_CPU
#   to 0), GANTRY (a gantry binary to run instead of one built from this
#   tree), CONTROL (1: a second redis-server, on CPORT (default RPORT+2),
#   runs every test too, interleaved with the other two, and the table adds
#   ctl_x, its throughput over the first redis-server's: an A/A control
#   that shows how far two identical servers differ on this machine in this
#   run, the band inside which rps_x says nothing; default 0).
#   The table's med_x is the median over the REPEAT rounds of the ratio
#   gantry/redis within one round (the runs of a round are back to back,
#   so load from elsewhere hits both alike); ctl_med the same for the control.
# Needs: go, redis-server and redis-benchmark
#   (apt-get install -y redis-server redis-tools).
set -euo pipefail

N=${N:-1000000}
C=${C:-50}
TESTS=${TESTS:-set,get,incr,lpush,rpop,sadd,hset,spop,zadd,evalsha,publish,xadd}
GPORT=${GPORT:-16379}
RPORT=${RPORT:-16380}
PIPELINES=${PIPELINES:-"1 16"}
MODES=${MODES:-"off everysec"}
REPEAT=${REPEAT:-1}
PIPE_KEYS=${PIPE_KEYS:-1000000}
TLS=${TLS:-0}
PIN=${PIN:-0}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
CONTROL=${CONTROL:-0}
CPORT=${CPORT:-$((RPORT + 2))}

. "$(dirname "$0")/lib.sh"
bench_setup redis-compare

spin=()
cpin=()
if [ "$PIN" = 1 ]; then
	need taskset
	spin=(taskset -c "$SERVER_CPU")
	cpin=(taskset -c "$CLIENT_CPU")
fi

need go redis-server redis-benchmark redis-cli
build_gantry
gpid=""
rpid=""
cpid=""

# TLS: a CA, a server and a client certificate; the benchmarked ports are
# then the TLS ports (the plain ones stay for redis-cli's setup commands)
gtls=()
rtls=()
ctls=()
btls=()
GBPORT=$GPORT
RBPORT=$RPORT
if [ "$TLS" = 1 ]; then
	(cd "$work" && ./gantry tls ca create >/dev/null && ./gantry tls cert create --server >/dev/null &&
		./gantry tls cert create --client >/dev/null)
	ca=$work/gantry-agent-ca.pem
	GBPORT=$((GPORT + 1000))
	RBPORT=$((RPORT + 1000))
	CBPORT=$((CPORT + 1000))
	gtls=(--tls-port "$GBPORT" --tls-cert-file "$work/global-server-gantry.pem"
		--tls-key-file "$work/global-server-gantry-key.pem" --tls-ca-cert-file "$ca")
	rtls=(--tls-port "$RBPORT" --tls-cert-file "$work/global-server-gantry.pem"
		--tls-key-file "$work/global-server-gantry-key.pem" --tls-ca-cert-file "$ca")
	ctls=(--tls-port "$CBPORT" --tls-cert-file "$work/global-server-gantry.pem"
		--tls-key-file "$work/global-server-gantry-key.pem" --tls-ca-cert-file "$ca")
	btls=(--tls --cacert "$ca" --cert "$work/global-client-gantry.pem" --key "$work/global-client-gantry-key.pem")
fi

start_servers() { # $1: off | everysec
	rm -rf "$work/gdata" "$work/rdata" "$work/cdata"
	mkdir -p "$work/gdata" "$work/rdata" "$work/cdata"
	if [ "$1" = off ]; then
		"${spin[@]}" "$work/gantry" peer --bind 127.0.0.1 --port "$GPORT" "${gtls[@]}" 2>"$work/gantry.log" &
		gpid=$!
	else
		"${spin[@]}" "$work/gantry" peer --bind 127.0.0.1 --port "$GPORT" --data-dir "$work/gdata" \
			--appendfsync "$1" "${gtls[@]}" 2>"$work/gantry.log" &
		gpid=$!
	fi
	start_redis "$1" "$RPORT" "$work/rdata" "${rtls[@]}"
	rpid=$started
	pids+=("$gpid" "$rpid")
	wait_port "$GPORT"
	wait_port "$RPORT"
	if [ "$CONTROL" = 1 ]; then
		start_redis "$1" "$CPORT" "$work/cdata" "${ctls[@]}"
		cpid=$started
		pids+=("$cpid")
		wait_port "$CPORT"
	fi
}

# start_redis MODE PORT DIR [TLS ARGS...]: a redis-server in the background
# (a child of this shell, so stop_servers can wait for it); its PID in started
start_redis() {
	local mode=$1 port=$2 dir=$3 aof=(--appendonly no)
	shift 3
	[ "$mode" = off ] || aof=(--appendonly yes --appendfsync "$mode")
	"${spin[@]}" redis-server --bind 127.0.0.1 --port "$port" --save "" "${aof[@]}" \
		--dir "$dir" "$@" >"$dir.log" 2>&1 &
	started=$!
}

stop_servers() {
	kill "$gpid" "$rpid" $cpid 2>/dev/null || true
	wait "$gpid" "$rpid" $cpid 2>/dev/null || true
	forget "$gpid" "$rpid" $cpid
	gpid=""
	rpid=""
	cpid=""
}

# the script of the evalsha test
SCRIPT="return redis.call('incr', KEYS[1])"

# cpu_ticks PID: the user and system CPU time of a process, all its
# threads, in clock ticks
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)

# bench PORT P TEST: one redis-benchmark run; prints "rps,p99,cpu" (cpu:
# the server's CPU microseconds per request over the run)
bench() {
	redis-cli -h 127.0.0.1 -p "$1" flushall >/dev/null
	local port=$1
	if [ "$TLS" = 1 ]; then # the TLS port beside the plain one
		port=$(( $1 == GPORT ? GBPORT : $1 == CPORT ? CBPORT : RBPORT ))
	fi
	local cmd=(-t "$3")
	case "$3" in
	evalsha)
		cmd=(-r 100000 evalsha "$(redis-cli -h 127.0.0.1 -p "$1" script load "$SCRIPT")" 1 "key:__rand_int__")
		;;
	publish)
		# one subscriber, so every message is delivered (bounded: the
		# subscriber ends with the test)
		"${cpin[@]}" redis-cli -h 127.0.0.1 -p "$1" subscribe bench >/dev/null &
		subpid=$!
		pids+=("$subpid")
		sleep 0.2
		cmd=(publish bench "message-of-some-bytes")
		;;
	xadd)
		cmd=(xadd bench-stream '*' field "value-of-some-bytes")
		;;
	esac
	local pid=$rpid
	[ "$1" = "$GPORT" ] && pid=$gpid
	[ "$1" = "$CPORT" ] && pid=$cpid
	local t0 out t1 ccpu
	t0=$(cpu_ticks "$pid")
	# the client's user and system seconds, from bash's time
	{
		TIMEFORMAT='%3U %3S'
		time "${cpin[@]}" redis-benchmark -h 127.0.0.1 -p "$port" "${btls[@]}" -n "$N" -c "$C" -P "$2" --csv "${cmd[@]}" >"$work/bench.csv"
	} 2>"$work/bench.time"
	t1=$(cpu_ticks "$pid")
	# CSV: "test","rps","avg","min","p50","p95","p99","max"
	out=$(tail -n 1 "$work/bench.csv" | tr -d '"' | cut -d, -f2,7)
	ccpu=$(tail -n 1 "$work/bench.time" | awk -v n="$N" '{ printf "%.3f", ($1 + $2) * 1e6 / n }')
	echo "$out,$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$N" 'BEGIN { printf "%.3f", d / hz * 1e6 / n }'),$ccpu"
	if [ "$3" = publish ]; then
		kill "$subpid" 2>/dev/null || true
		wait "$subpid" 2>/dev/null || true
		forget "$subpid"
	fi
}

# best RUNS: the highest rps, the lowest p99 and the lowest CPU per
# request of several runs ("rps,p99,cpu,client_cpu" lines on stdin), to
# see through a machine shared with other work; the client's CPU per
# request is that of the run with the highest rps
best() {
	awk -F, 'NR == 1 || $1 > r { r = $1; k = $4 } NR == 1 || $2 < p { p = $2 } NR == 1 || $3 < c { c = $3 }
		END { printf "%s,%s,%s,%s", r, p, c, k }'
}

# paired_median A B: the median over rounds of A's rps / B's rps in the
# same round (line i of each file is round i)
paired_median() {
	paste -d, "$1" "$2" | awk -F, '$5 > 0 { print $1 / $5 }' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print 0; exit }
			printf "%.4f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# mass insertion: PIPE_KEYS SETs through redis-cli --pipe into each server
if [ "$PIPE_KEYS" -gt 0 ]; then
	awk -v n="$PIPE_KEYS" 'BEGIN { for (i = 0; i < n; i++) { k = "key:" i; v = i ""
		printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' >"$work/pipe.resp"
	start_servers off
	srvs=(gantry:$GPORT redis:$RPORT)
	[ "$CONTROL" = 1 ] && srvs+=(control:$CPORT)
	for srv in "${srvs[@]}"; do
		port=${srv#*:}
		t0=$(date +%s.%N)
		out=$(redis-cli -h 127.0.0.1 -p "$port" --pipe <"$work/pipe.resp" | tail -n 1)
		t1=$(date +%s.%N)
		keys=$(redis-cli -h 127.0.0.1 -p "$port" dbsize)
		echo "redis-cli --pipe $PIPE_KEYS keys into ${srv%%:*}: $(echo "$t1 - $t0" | bc) s, $out, dbsize $keys"
	done
	stop_servers
	rm -f "$work/pipe.resp"
fi

results="$work/results"
: >"$results"
turn=0
for mode in $MODES; do
	start_servers "$mode"
	for p in $PIPELINES; do
		for t in ${TESTS//,/ }; do
			: >"$work/g.runs"
			: >"$work/r.runs"
			: >"$work/c.runs"
			for _ in $(seq 1 "$REPEAT"); do
				# interleave the servers test by test and rotate which goes
				# first, so load from elsewhere hits them alike
				order=(g r)
				[ "$CONTROL" = 1 ] && order+=(c)
				k=$((turn % ${#order[@]}))
				order=("${order[@]:k}" "${order[@]:0:k}")
				for s in "${order[@]}"; do
					case $s in
					g) bench "$GPORT" "$p" "$t" >>"$work/g.runs" ;;
					r) bench "$RPORT" "$p" "$t" >>"$work/r.runs" ;;
					c) bench "$CPORT" "$p" "$t" >>"$work/c.runs" ;;
					esac
				done
				turn=$((turn + 1))
			done
			ctl="0,0,0,0,0"
			if [ "$CONTROL" = 1 ]; then
				ctl="$(best <"$work/c.runs"),$(paired_median "$work/c.runs" "$work/r.runs")"
			fi
			echo "$mode,$p,$(echo "$t" | tr a-z A-Z),$(best <"$work/g.runs"),$(best <"$work/r.runs"),$(paired_median "$work/g.runs" "$work/r.runs"),$ctl" >>"$results"
		done
	done
	stop_servers
done

echo
echo "gantry vs redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'): -n $N -c $C, best of $REPEAT, 127.0.0.1, TLS=$TLS, PIN=$PIN"
printf '%-9s %-3s %-6s %11s %11s %7s %7s %9s %9s %7s %8s %8s %7s %7s %7s' persist P test gantry_rps redis_rps rps_x med_x gantry_p99 redis_p99 p99_x g_cpu r_cpu cpu_x gc_use rc_use
[ "$CONTROL" = 1 ] && printf ' %7s %7s' ctl_x ctl_med
echo
# fields: mode, P, test, gantry rps, gantry p99, gantry cpu, gantry's client cpu,
# redis rps, redis p99, redis cpu, redis's client cpu, median paired ratio,
# control rps, p99, cpu, client cpu, control's median paired ratio
awk -F, -v control="$CONTROL" '{
	rx = ($8 > 0) ? $4 / $8 : 0
	px = ($9 > 0) ? $5 / $9 : 0
	cx = ($10 > 0) ? $6 / $10 : 0
	printf "%-9s %-3s %-6s %11.0f %11.0f %6.2fx %6.2fx %9.3f %9.3f %6.2fx %8.3f %8.3f %6.2fx %6.0f%% %6.0f%%", $1, $2, $3, $4, $8, rx, $12, $5, $9, px, $6, $10, cx, $7 * $4 / 1e4, $11 * $8 / 1e4
	if (control == 1)
		printf " %6.2fx %6.2fx", ($8 > 0) ? $13 / $8 : 0, $17
	printf "\n"
}' "$results"
echo "(rps_x = gantry/redis throughput, best run against best run, higher is better;"
echo " med_x = the median over the rounds of gantry/redis in one round;"
[ "$CONTROL" = 1 ] && echo " ctl_x, ctl_med = the same two for a second redis-server against the first: the noise band;"
echo " p99_x = gantry/redis p99 latency in ms, lower is better;"
echo " g_cpu, r_cpu = the server's CPU microseconds per request, cpu_x = gantry/redis, lower is better;"
echo " gc_use, rc_use = the CPU redis-benchmark used in the best run against gantry and against redis-server,"
echo " in % of one core: near 100 % the client, not the server, sets the throughput)"
