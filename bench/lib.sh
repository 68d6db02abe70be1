# lib.sh: shell helpers shared by sending.sh, kannel.sh and side-by-side.sh.
# Sourced, not run. Every process a script starts is registered with
# bench_track and stopped by its PID when the script exits, however it exits.

# Sourced once: a script that sources two others keeps one set of PIDs,
# directories and PostgreSQL server to clean up.
[ -n "${BENCH_LIB_LOADED:-}" ] && return 0
BENCH_LIB_LOADED=1
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
	bench_pg_teardown
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
	/^RESULT / && !/-ingest / {
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
		printf "%-18s %4s %7s %9s %8s %9s %7s %8s %8s %9s %9s %9s %5s\n", "system", "runs", "n", "msg/s", "cpu_s", "msg/cpu-s", "us/msg", "hwm_MiB", "sim_cpu", "load_cpu", "recv_cpu", "pg_us/msg", "load"
		for (i = 1; i <= ns; i++) {
			s = order[i]
			if (okruns[s] == 0) { printf "%-18s %4s %7s (no successful run)\n", s, "0/" runs[s], n[s]; continue }
		printf "%-18s %4s %7s %9.0f %8.2f %9.0f %7.1f %8.0f %8.2f %9s %9s %9s %5s\n", s, (okruns[s] + 0) "/" runs[s], n[s],
				median(v[s, "msg_s"]), median(v[s, "cpu_s"]), median(v[s, "msg_per_cpu_s"]), median(v[s, "us_per_msg"]),
				median(v[s, "hwm_mib"]), median(v[s, "sim_cpu_s"]),
				((s, "load_cpu_s") in v) ? sprintf("%.2f", median(v[s, "load_cpu_s"])) : "-",
				((s, "recv_cpu_s") in v) ? sprintf("%.2f", median(v[s, "recv_cpu_s"])) : "-",
				((s, "pg_us_per_msg") in v) ? sprintf("%.1f", median(v[s, "pg_us_per_msg"])) : "-",
				((s, "load") in v) ? sprintf("%.1f", median(v[s, "load"])) : "-"
			med[s, "msg_s"] = median(v[s, "msg_s"]); med[s, "per"] = median(v[s, "msg_per_cpu_s"]); med[s, "hwm"] = median(v[s, "hwm_mib"])
		}
		if (("campaignd" in runs)) for (i = 1; i <= ns; i++) {
			s = order[i]; if (s == "campaignd" || med[s, "msg_s"] == 0) continue
			printf "campaignd / %s (medians): %.2fx msg/s, %.2fx msg per CPU-second, %.2fx peak RSS\n", s,
				med["campaignd", "msg_s"] / med[s, "msg_s"], med["campaignd", "per"] / med[s, "per"], med["campaignd", "hwm"] / med[s, "hwm"]
		}
	}' "$1"
}

# --- Store engine: ENGINE=badger (default) or postgres -----------------------
# With ENGINE=postgres, DSN names a PostgreSQL server to use (a URL,
# postgres://user[:password]@host:port/db?...; each run gets a fresh database
# on it, created with psql). Without DSN the script starts a throwaway server
# from Debian's binaries (initdb + pg_ctl in a temporary directory on a free
# port, as the postgres user when root, as internal/testenv/postgres.go does),
# stopped when the script exits. PostgreSQL's defaults are kept: fsync on,
# synchronous_commit on, full_page_writes on; only the listen address, the
# port and max_connections are set. PG_PID (its postmaster) is set when the
# server is local, so the PostgreSQL processes' CPU can be read from /proc.
ENGINE=${ENGINE:-badger}
DSN=${DSN:-}
PG_PID=${PG_PID:-}
BENCH_PG_DIR=""
BENCH_PG_N=0

# bench_pg_bin: the directory holding initdb, pg_ctl and psql.
bench_pg_bin() {
	if [ -n "${CAMPAIGND_PG_BIN:-}" ]; then echo "$CAMPAIGND_PG_BIN"; return; fi
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n | tail -1)
	if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
	command -v pg_ctl >/dev/null && dirname "$(command -v pg_ctl)" && return
	echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2
	return 1
}

# bench_pg_as CMD...: run CMD as the postgres user when root.
bench_pg_as() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# bench_pg_setup: when ENGINE=postgres and no DSN, start the throwaway server.
bench_pg_setup() {
	case "$ENGINE" in
	badger) return 0 ;;
	postgres) ;;
	*) echo "ENGINE must be badger or postgres, not $ENGINE" >&2; return 1 ;;
	esac
	PG_BIN=$(bench_pg_bin)
	[ -z "$DSN" ] || return 0
	BENCH_PG_DIR=$(mktemp -d /tmp/campaignd-bench-pg.XXXXXX)
	chmod 755 "$BENCH_PG_DIR"
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$BENCH_PG_DIR"
	bench_pg_as "$PG_BIN/initdb" -D "$BENCH_PG_DIR/data" -U postgres -A trust -E UTF8 --no-locale >"$BENCH_PG_DIR/initdb.log" 2>&1 ||
		{ cat "$BENCH_PG_DIR/initdb.log" >&2; return 1; }
	local port
	port=$(bench_free_port)
	printf "\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = ''\nmax_connections = 200\n" "$port" \
		>>"$BENCH_PG_DIR/data/postgresql.conf"
	# PG_STATS=1: record every statement (pg_stat_statements); the script
	# prints the top ones by total time when it exits.
	[ "${PG_STATS:-0}" = 1 ] && echo "shared_preload_libraries = 'pg_stat_statements'" >>"$BENCH_PG_DIR/data/postgresql.conf"
	bench_pg_as "$PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/data" -l "$BENCH_PG_DIR/postgres.log" -w -t 60 start >/dev/null ||
		{ cat "$BENCH_PG_DIR/postgres.log" >&2; return 1; }
	PG_PID=$(head -1 "$BENCH_PG_DIR/data/postmaster.pid")
	DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	if [ "${PG_STATS:-0}" = 1 ]; then
		"$PG_BIN/psql" -q "$DSN" -c "CREATE EXTENSION pg_stat_statements" >/dev/null
	fi
	echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') started in $BENCH_PG_DIR (pid $PG_PID, port $port)" >&2
}

# bench_pg_teardown: stop the throwaway server (fast shutdown, then its PID).
bench_pg_teardown() {
	[ -n "$BENCH_PG_DIR" ] || return 0
	if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
		[ "${PG_STATS:-0}" = 1 ] && "$PG_BIN/psql" -P pager=off "$DSN" -c "SELECT calls, round(total_exec_time) AS total_ms,
			round((total_exec_time / calls)::numeric, 3) AS mean_ms, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
			FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15" >&2
		bench_pg_as "$PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/data" -m fast -w -t 20 stop >/dev/null 2>&1 || true
		kill -0 "$PG_PID" 2>/dev/null && kill -KILL "$PG_PID" 2>/dev/null || true
	fi
	rm -rf "$BENCH_PG_DIR"
	BENCH_PG_DIR=""
}

# bench_store_toml: the [store] section of a run's configuration. For
# postgres it creates a fresh database for the run first.
bench_store_toml() {
	[ "$ENGINE" = postgres ] || return 0
	BENCH_PG_N=$((BENCH_PG_N + 1))
	local db="bench_$$_${BENCH_PG_N}_$RANDOM"
	"$PG_BIN/psql" -q -v ON_ERROR_STOP=1 "$DSN" -c "CREATE DATABASE $db" >/dev/null
	local dsn
	dsn=$(printf '%s' "$DSN" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\\1/$db#")
	printf '[store]\nengine = "postgres"\ndsn = "%s"\n' "$dsn"
}

# bench_pg_ticks: CPU of every PostgreSQL process, in clock ticks: the
# postmaster's utime+stime and that of the children it has reaped (cutime,
# cstime: backends that ended), plus utime+stime of its live children
# (backends, checkpointer, WAL writer, ...). "-" when PG_PID is not known.
bench_pg_ticks() {
	if [ "$ENGINE" != postgres ] || [ -z "$PG_PID" ] || ! [ -r "/proc/$PG_PID/stat" ]; then echo -; return; fi
	local total p
	total=$(sed 's/.*) //' "/proc/$PG_PID/stat" | awk '{ print $12 + $13 + $14 + $15 }')
	for p in $(cat "/proc/$PG_PID/task/$PG_PID/children" 2>/dev/null); do
		[ -r "/proc/$p/stat" ] || continue
		total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
	done
	echo "$total"
}

# bench_load: the 1-minute load average.
bench_load() { cut -d' ' -f1 /proc/loadavg; }

# bench_pg_pid: the postmaster's PID when this run stores in a local
# PostgreSQL, else nothing.
bench_pg_pid() { [ "$ENGINE" = postgres ] && echo "$PG_PID" || true; }

# bench_label: the system label of campaignd's RESULT lines: "campaignd" on
# Badger (as before), "campaignd-postgres" on PostgreSQL.
bench_label() { if [ "$ENGINE" = badger ]; then echo campaignd; else echo "campaignd-$ENGINE"; fi; }

# bench_campaignd_toml WORKDIR FTP WEB METRICS: the config of a benchmark
# campaignd (user "bench" and web admin "admin", both with $HASH; the store
# of bench_store_toml), written to WORKDIR/campaignd.toml. Callers append
# their own sections.
bench_campaignd_toml() {
	local pasv=$((47000 + RANDOM % 900))
	cat >"$1/campaignd.toml" <<TOML
data_dir = "$1/data"
[log]
level = "warn"
[ftp]
listen = "$2"
passive_ports = "$pasv-$((pasv + 20))"
[[ftp.users]]
name = "bench"
password_hash = "$HASH"
[web]
listen = "$3"
[[web.users]]
name = "admin"
password_hash = "$HASH"
role = "admin"
[metrics]
listen = "$4"
$(bench_store_toml)
TOML
}
