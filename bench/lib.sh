# lib.sh holds the set-up the bench scripts share; they source it
# (`. "$(dirname "$0")/lib.sh"`), it is not run on its own.
#
# bench_setup NAME sets root (the repository) and work (a temporary
# directory), and on exit kills every process whose PID is in the array
# pids, waits for them and removes work. NAME prefixes error messages.

bench_setup() {
	bench_name=$1
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	work=$(mktemp -d)
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}

# die MESSAGE...: the message on stderr, prefixed with the script's name,
# and exit 1
die() {
	echo "$bench_name: $*" >&2
	exit 1
}

# need BINARY...: every binary is on PATH, or the script stops saying which
# is missing and how to install it
need() {
	local bin hint
	for bin in "$@"; do
		command -v "$bin" >/dev/null && continue
		case "$bin" in
		redis-*) hint=" (apt-get install -y redis-server redis-tools)" ;;
		valgrind | callgrind_control) hint=" (apt-get install -y valgrind)" ;;
		taskset) hint=" (apt-get install -y util-linux)" ;;
		*) hint="" ;;
		esac
		die "$bin not found$hint"
	done
}

# build_gantry: $work/gantry is the binary named by GANTRY, or one built
# from this tree (with symbols: make build strips them)
build_gantry() {
	if [ -n "${GANTRY:-}" ]; then
		cp "$GANTRY" "$work/gantry"
	else
		(cd "$root" && go build -o "$work/gantry" ./cmd/gantry)
	fi
}

# wait_port PORT: PORT on 127.0.0.1 answers PING within 10 s, or the
# script stops
wait_port() {
	local _
	for _ in $(seq 1 100); do
		redis-cli -h 127.0.0.1 -p "$1" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "nothing answers on port $1"
}

# forget PID...: drop PIDs from pids once the script has stopped them
forget() {
	local keep=() p q drop
	for p in "${pids[@]}"; do
		drop=0
		for q in "$@"; do [ "$p" = "$q" ] && drop=1; done
		[ "$drop" = 1 ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}
