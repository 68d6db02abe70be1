#!/usr/bin/env bash
# ingest.sh: ingest of an N-row file (default 1,000,000) through the whole
# system on either store engine: the real binary built from this worktree, a
# fresh campaignd (and, on PostgreSQL, a fresh database) per run, the file
# uploaded over FTP with curl, undated so the broadcast waits for an operator
# and nothing is sent. Each run measures from the 226 (upload complete: the
# file fsync'd and its ingest job recorded) to the broadcast being stored and
# visible (campaignd_broadcasts on the metrics page, polled every 20 ms):
#   rows/s, campaignd's peak RSS (VmHWM), campaignd's CPU-seconds over the
#   window and, on a local PostgreSQL, the CPU-seconds of every PostgreSQL
#   process over the same window; the load average before the run.
# Prints one RESULT line per run, then the medians.
#
#   bash bench/ingest.sh                         # badger, ROWS=1000000 RUNS=3
#   ENGINE=postgres bash bench/ingest.sh         # a throwaway PostgreSQL
#   ENGINE=postgres DSN=postgres://u:p@db/x bash bench/ingest.sh
# Environment: ROWS, RUNS, ENGINE, DSN (see bench/lib.sh), ITIMEOUT (seconds per
# run, default 300), OUT (file for the RESULT lines), BENCH_BIN, KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROWS=${ROWS:-1000000}
RUNS=${RUNS:-3}
ITIMEOUT=${ITIMEOUT:-300}
OUT=${OUT:-$(mktemp /tmp/campaignd-ingest.XXXXXX.txt)}

bench_build
bench_pg_setup
IDATA=$(mktemp -d /tmp/campaignd-ingest-data.XXXXXX)
BENCH_CLEAN_DIRS="$BENCH_CLEAN_DIRS $IDATA"
PASS=bench-pass
HASH=$(printf '%s\n' "$PASS" | "$BENCH_BIN/campaignd" hash-password)

# The file of BENCHMARKS.md's ingest figures: N rows, no date.
awk -v n="$ROWS" 'BEGIN { print "Recipient,Message,Payback Member ID,Campaign Name,Date";
	for (i = 0; i < n; i++) printf "55%08d,Hola socio %d tienes 1250 puntos Payback canjealos antes del domingo,600%07d,Bench,\n", i, i, i }' \
	>"$IDATA/ingest.csv"
SIZE=$(stat -c %s "$IDATA/ingest.csv")

now() { date +%s.%N; }

ingest_run() {
	local work ftp web met pid load
	load=$(bench_load)
	work=$(mktemp -d /tmp/campaignd-ingest-run.XXXXXX)
	ftp=127.0.0.1:$(bench_free_port) web=127.0.0.1:$(bench_free_port) met=127.0.0.1:$(bench_free_port)
	bench_campaignd_toml "$work" "$ftp" "$web" "$met"
	"$BENCH_BIN/campaignd" serve --config "$work/campaignd.toml" >"$work/campaignd.out" 2>"$work/campaignd.log" &
	pid=$!
	bench_track "$pid"
	BENCH_WAIT_PID=$pid bench_wait "campaignd to answer /healthz" 60 curl -sf "http://$web/healthz"

	local t0 t1 t2 c1 c2 p1 p2 deadline rc=0
	t0=$(now)
	curl -sS --max-time "$ITIMEOUT" -T "$IDATA/ingest.csv" "ftp://bench:$PASS@$ftp/bench-$ROWS.csv"
	t1=$(now) c1=$(bench_cpu_ticks "$pid") p1=$(bench_pg_ticks)
	deadline=$(($(date +%s) + ITIMEOUT))
	until curl -sf "http://$met/metrics" | awk '$1 ~ /^campaignd_broadcasts(\{|$)/ { s += $2 } END { exit !(s >= 1) }'; do
		if [ "$(date +%s)" -gt "$deadline" ] || ! kill -0 "$pid" 2>/dev/null; then rc=1; break; fi
		sleep 0.02
	done
	t2=$(now) c2=$(bench_cpu_ticks "$pid") p2=$(bench_pg_ticks)
	local hwm
	hwm=$(bench_hwm_kib "$pid")
	if [ "$rc" = 0 ]; then
		awk -v sys="$(bench_label)" -v n="$ROWS" -v size="$SIZE" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v c1="$c1" -v c2="$c2" \
			-v p1="$p1" -v p2="$p2" -v hwm="$hwm" -v load="$load" 'BEGIN {
			pg = (p1 == "-" || p2 == "-") ? "" : sprintf(" pg_cpu_s=%.2f", (p2 - p1) / 100)
			printf "RESULT system=%s-ingest n=%d upload_s=%.3f wall_s=%.3f rows_s=%.0f cpu_s=%.2f hwm_mib=%.0f%s load=%s mb=%.0f check=ok\n",
				sys, n, t1 - t0, t2 - t1, n / (t2 - t1), (c2 - c1) / 100, hwm / 1024, pg, load, size / 1e6 }' | tee -a "$OUT"
	else
		echo "RESULT system=$(bench_label)-ingest n=$ROWS check=timeout load=$load" | tee -a "$OUT"
		echo "run failed; logs kept in $work" >&2
	fi
	bench_stop "$pid"
	[ "$rc" != 0 ] || [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
	return "$rc"
}

# ingest_summary FILE: medians per system of the successful ingest RESULT lines.
ingest_summary() {
	awk '
	function median(s,   a, n, i, j, x) {
		n = split(substr(s, 2), a, " ")
		for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; j--) a[j+1] = a[j]; a[j+1] = x }
		return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	/^RESULT / && / rows_s=|-ingest / {
		delete f
		for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		s = f["system"]; if (!(s in runs)) order[++ns] = s
		runs[s]++
		if (f["check"] != "ok") next
		ok[s]++; n[s] = f["n"]
		for (k in f) if (f[k] ~ /^[0-9.]+$/) v[s, k] = v[s, k] " " f[k]
	}
	END {
		if (ns == 0) { print "no ingest RESULT lines"; exit 1 }
		printf "%-25s %4s %8s %9s %8s %8s %8s %8s %5s\n", "system", "runs", "n", "rows/s", "wall_s", "cpu_s", "hwm_MiB", "pg_cpu_s", "load"
		for (i = 1; i <= ns; i++) {
			s = order[i]
			if (!ok[s]) { printf "%-25s %4s (no successful run)\n", s, "0/" runs[s]; continue }
			printf "%-25s %4s %8s %9.0f %8.2f %8.2f %8.0f %8s %5.1f\n", s, ok[s] "/" runs[s], n[s], median(v[s, "rows_s"]),
				median(v[s, "wall_s"]), median(v[s, "cpu_s"]), median(v[s, "hwm_mib"]),
				((s, "pg_cpu_s") in v) ? sprintf("%.2f", median(v[s, "pg_cpu_s"])) : "-", median(v[s, "load"])
		}
	}' "$1"
}

# Sourced by pg-beside-badger.sh for ingest_run and ingest_summary only.
[ "${INGEST_LIB_ONLY:-0}" = 1 ] && return 0

echo "campaignd ingest ($ENGINE): N=$ROWS RUNS=$RUNS, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for run in $(seq "$RUNS"); do
	ingest_run
done
echo "RESULT lines: $OUT"
ingest_summary "$OUT"
