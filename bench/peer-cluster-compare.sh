#!/usr/bin/env bash
# peer-cluster-compare.sh runs redis-benchmark --cluster against a
# 3-primary gantry peer cluster and a 3-primary Redis Cluster side by side
# (both made with redis-cli --cluster create, persistence off, loopback
# only) and prints the throughput ratio gantry/redis per test.
#
# Usage: bench/peer-cluster-compare.sh     (from the repository root)
# Environment: N (requests per test, default 300000), C (clients, 50),
#   TESTS (default set,get,incr,lpush,hset), P (pipeline, default 1),
#   REPEAT (runs per test and cluster, best kept, default 3; the two
#   clusters alternate test by test so neither always runs on a busier
#   machine),
#   GBASE/RBASE (first client port of each cluster, default 17101/17201;
#   the gossip ports are +10000), GANTRY (a gantry binary to run
#   instead of one built from this tree).
# Needs: go, redis-server, redis-cli, redis-benchmark
#   (apt-get install -y redis-server redis-tools).
set -euo pipefail

N=${N:-300000}
C=${C:-50}
TESTS=${TESTS:-set,get,incr,lpush,hset}
P=${P:-1}
REPEAT=${REPEAT:-3}
GBASE=${GBASE:-17101}
RBASE=${RBASE:-17201}

. "$(dirname "$0")/lib.sh"
bench_setup peer-cluster-compare
need go redis-server redis-benchmark redis-cli
build_gantry

gaddrs=()
raddrs=()
for i in 0 1 2; do
	gp=$((GBASE + i))
	rp=$((RBASE + i))
	mkdir -p "$work/g$i" "$work/r$i"
	"$work/gantry" peer --cluster --bind 127.0.0.1 --port "$gp" 2>"$work/g$i.log" &
	pids+=($!)
	redis-server --bind 127.0.0.1 --port "$rp" --cluster-enabled yes --cluster-config-file "$work/r$i/nodes.conf" \
		--save "" --appendonly no --dir "$work/r$i" >"$work/r$i.log" 2>&1 &
	pids+=($!)
	gaddrs+=("127.0.0.1:$gp")
	raddrs+=("127.0.0.1:$rp")
done
for a in "${gaddrs[@]}" "${raddrs[@]}"; do wait_port "${a##*:}"; done
redis-cli --cluster create "${gaddrs[@]}" --cluster-replicas 0 --cluster-yes >"$work/gcreate.log"
redis-cli --cluster create "${raddrs[@]}" --cluster-replicas 0 --cluster-yes >"$work/rcreate.log"
for a in "${gaddrs[0]}" "${raddrs[0]}"; do
	for _ in $(seq 1 100); do
		redis-cli -h 127.0.0.1 -p "${a##*:}" cluster info | grep -q cluster_state:ok && break
		sleep 0.1
	done
done

# one test on one cluster: prints "TEST,rps"
bench1() { # PORT TEST
	redis-benchmark --cluster -h 127.0.0.1 -p "$1" -t "$2" -n "$N" -c "$C" -P "$P" --csv 2>/dev/null |
		grep -E '^"[A-Z_ ()0-9-]+","[0-9.]+"' | tr -d '"' | cut -d, -f1,2
}

# the machine may be shared: run the two clusters test by test, alternating
# which goes first, REPEAT times, and keep each one's best
: >"$work/rows"
first=g
for test in ${TESTS//,/ }; do
	gbest=0
	rbest=0
	name=""
	for _ in $(seq 1 "$REPEAT"); do
		if [ "$first" = g ]; then
			g=$(bench1 "$GBASE" "$test"); r=$(bench1 "$RBASE" "$test"); first=r
		else
			r=$(bench1 "$RBASE" "$test"); g=$(bench1 "$GBASE" "$test"); first=g
		fi
		name=${g%%,*}
		gbest=$(awk -v a="$gbest" -v b="${g##*,}" 'BEGIN { print (b > a) ? b : a }')
		rbest=$(awk -v a="$rbest" -v b="${r##*,}" 'BEGIN { print (b > a) ? b : a }')
	done
	echo "$name,$gbest,$rbest" >>"$work/rows"
done

echo
echo "3-primary gantry vs 3-primary Redis Cluster $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'): redis-benchmark --cluster -n $N -c $C -P $P, best of $REPEAT, 127.0.0.1, $(nproc) CPUs"
printf '%-7s %11s %11s %7s\n' test gantry_rps redis_rps rps_x
awk -F, '{ printf "%-7s %11.0f %11.0f %6.2fx\n", $1, $2, $3, ($3 > 0) ? $2 / $3 : 0 }' "$work/rows"
echo "(rps_x = gantry/redis throughput, higher is better)"
