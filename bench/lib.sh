# lib.sh: shell helpers shared by sending.sh, kannel.sh and side-by-side.sh.
# Sourced, not run. Every process a script starts is registered with
# bench_track and stopped by its PID when the script exits, however it exits.

BENCH_PIDS=""
BENCH_CLEAN_DIRS=""

bench_track() { BENCH_PIDS="$BENCH_PIDS $1"; }

# bench_stop PID...: SIGTERM, up to 10 s to exit, then SIGKILL.
bench_stop() {
	local p i
	for p in "$@"; do
		[ -n "$p" ] && kill -0 "$p" 2>/dev/null || continue
		kill -TERM "$p" 2>/dev/null || true
		for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	local keep=""
	for i in $BENCH_PIDS; do
		case " $* " in *" $i "*) ;; *) keep="$keep $i" ;; esac
	done
	BENCH_PIDS=$keep
}

bench_cleanup() {
	# shellcheck disable=SC2086
	bench_stop $BENCH_PIDS
	# shellcheck disable=SC2086
	[ -n "$BENCH_CLEAN_DIRS" ] && rm -rf $BENCH_CLEAN_DIRS
	return 0
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_cpu_ticks PID: utime+stime of every thread, in clock ticks (USER_HZ).
bench_cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# bench_hwm_kib PID: peak resident set size (VmHWM) in KiB.
bench_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# bench_wait WHAT SECONDS CMD...: run CMD every 0.1 s until it succeeds;
# fail at once if the process $BENCH_WAIT_PID (when set) has exited.
bench_wait() {
	local what=$1 secs=$2 i
	shift 2
	for i in $(seq $((secs * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		if [ -n "${BENCH_WAIT_PID:-}" ] && ! kill -0 "$BENCH_WAIT_PID" 2>/dev/null; then
			echo "process $BENCH_WAIT_PID exited while waiting for $what" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "timed out after ${secs}s waiting for $what" >&2
	return 1
}

# bench_build: the campaignd binary and the Go helpers, built from this
# worktree into $BENCH_BIN (a temporary directory unless set and already built).
bench_build() {
	if [ -n "${BENCH_BIN:-}" ] && [ -x "$BENCH_BIN/campaignd" ] && [ -x "$BENCH_BIN/dlr-recv" ]; then
		return 0
	fi
	if [ -z "${BENCH_BIN:-}" ]; then
		BENCH_BIN=$(mktemp -d /tmp/campaignd-bench-bin.XXXXXX)
		BENCH_CLEAN_DIRS="$BENCH_CLEAN_DIRS $BENCH_BIN"
	fi
	mkdir -p "$BENCH_BIN"
	echo "building campaignd and the bench helpers into $BENCH_BIN" >&2
	go build -o "$BENCH_BIN/campaignd" ./cmd/campaignd
	go build -o "$BENCH_BIN/" ./bench/cmd/settle-watch ./bench/cmd/kannel-load ./bench/cmd/dlr-recv
}

# bench_sim WORKDIR: start a fresh SMSC simulator (its own process) on a free
# port; sets SIM_PID and SIM_ADDR.
bench_sim() {
	local work=$1
	"$BENCH_BIN/campaignd" smsc-sim -listen "127.0.0.1:$(bench_free_port)" -delivered-percent 100 \
		-receipt-delay "${RECEIPT_DELAY:-50ms}" >"$work/sim.out" 2>"$work/sim.log" &
	SIM_PID=$!
	bench_track "$SIM_PID"
	bench_wait "the simulator" 20 grep -q 'listening on' "$work/sim.out"
	SIM_ADDR=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$work/sim.out")
}

# bench_summary FILE: medians per system of the successful RESULT lines in
# FILE (check=ok; "runs" shows successful/all), and the ratio of campaignd to
# each Kannel variant measured in the same file.
bench_summary() {
	awk '
	function median(s,   a, n, i, j, x) {
		n = split(substr(s, 2), a, " ")
		for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; j--) a[j+1] = a[j]; a[j+1] = x }
		return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	/^RESULT / {
		sys = ""; delete f
		for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		sys = f["system"]; if (!(sys in runs)) order[++ns] = sys
		runs[sys]++; n[sys] = f["n"]
		if (f["check"] != "ok") next # a failed run (timeout, lost message) is counted, not averaged
		okruns[sys]++
		for (k in f) if (f[k] ~ /^[0-9.]+$/) v[sys, k] = v[sys, k] " " f[k]
	}
	END {
		if (ns == 0) { print "no RESULT lines"; exit 1 }
		printf "%-16s %4s %7s %9s %8s %9s %7s %8s %8s %9s %9s\n", "system", "runs", "n", "msg/s", "cpu_s", "msg/cpu-s", "us/msg", "hwm_MiB", "sim_cpu", "load_cpu", "recv_cpu"
		for (i = 1; i <= ns; i++) {
			s = order[i]
			if (okruns[s] == 0) { printf "%-16s %4s %7s (no successful run)\n", s, "0/" runs[s], n[s]; continue }
		printf "%-16s %4s %7s %9.0f %8.2f %9.0f %7.1f %8.0f %8.2f %9s %9s\n", s, (okruns[s] + 0) "/" runs[s], n[s],
				median(v[s, "msg_s"]), median(v[s, "cpu_s"]), median(v[s, "msg_per_cpu_s"]), median(v[s, "us_per_msg"]),
				median(v[s, "hwm_mib"]), median(v[s, "sim_cpu_s"]),
				((s, "load_cpu_s") in v) ? sprintf("%.2f", median(v[s, "load_cpu_s"])) : "-",
				((s, "recv_cpu_s") in v) ? sprintf("%.2f", median(v[s, "recv_cpu_s"])) : "-"
			med[s, "msg_s"] = median(v[s, "msg_s"]); med[s, "per"] = median(v[s, "msg_per_cpu_s"]); med[s, "hwm"] = median(v[s, "hwm_mib"])
		}
		if (("campaignd" in runs)) for (i = 1; i <= ns; i++) {
			s = order[i]; if (s == "campaignd" || med[s, "msg_s"] == 0) continue
			printf "campaignd / %s (medians): %.2fx msg/s, %.2fx msg per CPU-second, %.2fx peak RSS\n", s,
				med["campaignd", "msg_s"] / med[s, "msg_s"], med["campaignd", "per"] / med[s, "per"], med["campaignd", "hwm"] / med[s, "hwm"]
		}
	}' "$1"
}
