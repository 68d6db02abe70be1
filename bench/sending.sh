#!/usr/bin/env bash
# sending.sh: campaignd sending to an SMSC simulator in another process
# (the sending bar of BENCHMARKS.md): the real binary built from this worktree, a fresh
# `campaignd smsc-sim -delivered-percent 100 -receipt-delay 50ms` per run,
# smpp.window 200, no TPS cap (smpp.tps = 0), receipts on, every state
# change durable. Each run uploads an N-row file over FTP (curl) dated in the
# past, so it is sent at once, and measures from the broadcast being visible
# to every receipt settled (bench/cmd/settle-watch):
#   msg/s end to end, campaignd's CPU-seconds (utime+stime), messages per
#   CPU-second, µs of CPU per message, peak RSS (VmHWM, whole process; and
#   while sending only), the simulator's CPU.
# Prints one RESULT line per run, then the medians.
#
#   bash bench/sending.sh                     # N=100000 RUNS=3
#   N=20000 RUNS=5 bash bench/sending.sh      # quick
#   N=1000000 RUNS=1 bash bench/sending.sh    # peak RSS while sending 1M
# Environment: N, RUNS, WINDOW (200), RECEIPT_DELAY (50ms), BINDS (1),
# IDFMT (smpp.message_id_format, default exact: the id form is configured, as
# Kannel's msg-id-type is in kannel.sh; "auto" measures a first contact, when
# campaignd still has to learn the SMSC's id scheme), TIMEOUT (seconds
# per run, default 120 + N/500), OUT (file for the RESULT lines), BENCH_BIN
# (reuse built binaries), KEEP=1 (keep the work directories for inspection).
# ENGINE=badger (default) or postgres, DSN (see bench/lib.sh): with postgres
# and no DSN a throwaway PostgreSQL is started for the script, each run gets a
# fresh database, and the RESULT lines carry the PostgreSQL processes' CPU over
# the same window (pg_cpu_s, pg_us_per_msg).
#   ENGINE=postgres bash bench/sending.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

N=${N:-100000}
RUNS=${RUNS:-3}
WINDOW=${WINDOW:-200}
RECEIPT_DELAY=${RECEIPT_DELAY:-50ms}
BINDS=${BINDS:-1}
IDFMT=${IDFMT:-exact}
TIMEOUT=${TIMEOUT:-$((120 + N / 500))}
OUT=${OUT:-$(mktemp /tmp/campaignd-sending.XXXXXX.txt)}

bench_build
bench_pg_setup
DATA=$(mktemp -d /tmp/campaignd-sending-data.XXXXXX)
BENCH_CLEAN_DIRS="$BENCH_CLEAN_DIRS $DATA"
PASS=bench-pass
HASH=$(printf '%s\n' "$PASS" | "$BENCH_BIN/campaignd" hash-password)

# The file: N rows, one message each (GSM-7, one segment), dated in the past.
awk -v n="$N" 'BEGIN { print "Recipient,Message,Payback Member ID,Campaign Name,Date";
	for (i = 0; i < n; i++) printf "55%08d,Hola socio %d tienes 1250 puntos Payback canjealos antes del domingo,600%07d,Bench,2020-01-01\n", i, i, i }' \
	>"$DATA/send.csv"

campaignd_run() {
	local work ftp web met pid load
	load=$(bench_load)
	work=$(mktemp -d /tmp/campaignd-sending-run.XXXXXX)
	bench_sim "$work"
	ftp=127.0.0.1:$(bench_free_port) web=127.0.0.1:$(bench_free_port) met=127.0.0.1:$(bench_free_port)
	bench_campaignd_toml "$work" "$ftp" "$web" "$met"
	cat >>"$work/campaignd.toml" <<TOML
[smpp]
addr = "$SIM_ADDR"
system_id = "bench"
password = "bench"
tps = 0
window = $WINDOW
binds = $BINDS
message_id_format = "$IDFMT"
TOML
	"$BENCH_BIN/campaignd" serve --config "$work/campaignd.toml" >"$work/campaignd.out" 2>"$work/campaignd.log" &
	pid=$!
	bench_track "$pid"
	bench_wait "campaignd to answer /healthz" 60 curl -sf "http://$web/healthz"
	bench_wait "campaignd to bind to the simulator" 60 \
		sh -c "curl -sf 'http://$met/metrics' | grep -Eq '^campaignd_smpp_bound(\\{[^}]*\\})? [1-9]'"

	"$BENCH_BIN/settle-watch" -metrics "http://$met/metrics" -api "http://$web/api/v1" -user admin -pass "$PASS" \
		-n "$N" -pid "$pid" -sim-pid "$SIM_PID" $(pgp=$(bench_pg_pid); [ -n "$pgp" ] && echo "-pg-pid $pgp") -system "$(bench_label)" -load "$load" -timeout "${TIMEOUT}s" >"$work/result" 2>"$work/watch.err" &
	local wpid=$!
	bench_track "$wpid"
	curl -sS --max-time "$TIMEOUT" -T "$DATA/send.csv" "ftp://bench:$PASS@$ftp/bench-$N.csv"
	local rc=0
	wait "$wpid" || rc=$?
	cat "$work/result" | tee -a "$OUT"
	if [ "$rc" != 0 ]; then
		cat "$work/watch.err" >&2
		echo "run failed; logs kept in $work" >&2
	fi
	bench_stop "$pid" "$SIM_PID"
	[ "$rc" != 0 ] || [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
	return "$rc"
}

# Sourced by pg-beside-badger.sh for campaignd_run only.
[ "${SENDING_LIB_ONLY:-0}" = 1 ] && return 0

echo "campaignd sending ($ENGINE): N=$N RUNS=$RUNS window=$WINDOW binds=$BINDS id_format=$IDFMT receipt_delay=$RECEIPT_DELAY, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for run in $(seq "$RUNS"); do
	campaignd_run
done
echo "RESULT lines: $OUT"
bench_summary "$OUT"
