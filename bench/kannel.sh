#!/usr/bin/env bash
# kannel.sh: Kannel 1.4.5 (Debian `kannel`) sending the same messages to the
# same SMSC simulator, for the side-by-side figures of BENCHMARKS.md. Per run: a
# fresh `campaignd smsc-sim -delivered-percent 100 -receipt-delay 50ms`,
# bearerbox + smsbox with one SMPP transceiver (max-pending-submits 200,
# msg-id-type 0x00, no throughput cap), the DLR receiver
# (bench/cmd/dlr-recv) and the load client (bench/cmd/kannel-load: N
# sendsms requests, dlr-mask 31, 64 keep-alive workers). Measured: wall time
# from the first sendsms request to the last final DLR, CPU-seconds of
# bearerbox + smsbox (utime+stime), messages per CPU-second, µs per message,
# VmHWM of bearerbox + smsbox, and the CPU of the simulator, the load client
# and the receiver (on 2 cores they all compete).
# Kannel's queue of accepted messages is in memory (no store-file); the DLR
# store is `internal` (memory) or `sqlite3` (a file, indexed on smsc, ts).
#
#   bash bench/kannel.sh                          # N=100000 RUNS=3 DLR=internal
#   N=20000 RUNS=3 DLR="internal sqlite3" bash bench/kannel.sh
# Environment: N, RUNS, DLR, WORKERS (64), RECEIPT_DELAY (50ms), TIMEOUT
# (seconds per run, default 120 + N/100), TIMEOUT_SQLITE (120 + N/20: the
# sqlite3 store does one synchronous write per DLR and crawls when the disk
# is busy), OUT, BENCH_BIN, KEEP=1.
# Installs kannel with apt-get when bearerbox is missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

N=${N:-100000}
RUNS=${RUNS:-3}
DLR=${DLR:-internal}
WORKERS=${WORKERS:-64}
RECEIPT_DELAY=${RECEIPT_DELAY:-50ms}
TIMEOUT=${TIMEOUT:-$((120 + N / 100))}
TIMEOUT_SQLITE=${TIMEOUT_SQLITE:-$((120 + N / 20))}
OUT=${OUT:-$(mktemp /tmp/kannel-sending.XXXXXX.txt)}

if ! command -v bearerbox >/dev/null || ! command -v smsbox >/dev/null; then
	echo "installing kannel (Debian package)" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kannel >/dev/null
fi
for d in $DLR; do
	if [ "$d" = sqlite3 ] && ! command -v sqlite3 >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null
	fi
done
bench_build

kannel_run() { # DLR storage: internal or sqlite3
	local dlr=$1 work admin boxp sendp rpid bb sb lpid limit=$TIMEOUT
	[ "$dlr" != sqlite3 ] || limit=$TIMEOUT_SQLITE
	work=$(mktemp -d /tmp/kannel-run.XXXXXX)
	bench_sim "$work"
	"$BENCH_BIN/dlr-recv" -n "$N" -addr-file "$work/dlr.addr" -timeout "${limit}s" >"$work/dlr.out" 2>"$work/dlr.err" &
	rpid=$!
	bench_track "$rpid"
	bench_wait "the DLR receiver" 20 test -s "$work/dlr.addr"
	admin=$(bench_free_port) boxp=$(bench_free_port) sendp=$(bench_free_port)
	local store="dlr-storage = internal"
	if [ "$dlr" = sqlite3 ]; then
		store="dlr-storage = sqlite3"
		sqlite3 "$work/dlr.db" 'CREATE TABLE dlr (smsc VARCHAR(40), ts VARCHAR(65), destination VARCHAR(40),
			source VARCHAR(40), service VARCHAR(40), url VARCHAR(255), mask INTEGER, status INTEGER, boxc VARCHAR(40));
			CREATE INDEX dlr_smsc_ts ON dlr (smsc, ts);'
	fi
	cat >"$work/kannel.conf" <<CONF
group = core
admin-port = $admin
admin-password = bench
admin-allow-ip = "127.0.0.1"
smsbox-port = $boxp
box-allow-ip = "127.0.0.1"
log-file = "$work/bearerbox.log"
log-level = 2
$store
sms-incoming-queue-limit = -1
sms-outgoing-queue-limit = -1

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = ${SIM_ADDR##*:}
transceiver-mode = true
smsc-username = bench
smsc-password = bench
system-type = "VMA"
max-pending-submits = 200
msg-id-type = 0x00

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $boxp
sendsms-port = $sendp
sendsms-interface = 127.0.0.1
log-file = "$work/smsbox.log"
log-level = 2

group = sendsms-user
username = bench
password = bench
CONF
	if [ "$dlr" = sqlite3 ]; then
		cat >>"$work/kannel.conf" <<CONF

group = sqlite3-connection
id = dlrdb
database = "$work/dlr.db"
max-connections = 1

group = dlr-db
id = dlrdb
table = dlr
field-smsc = smsc
field-timestamp = ts
field-destination = destination
field-source = source
field-service = service
field-url = url
field-mask = mask
field-status = status
field-boxc-id = boxc
CONF
	fi
	bearerbox -v 2 "$work/kannel.conf" >"$work/bearerbox.out" 2>&1 &
	bb=$!
	bench_track "$bb"
	BENCH_WAIT_PID=$bb bench_wait "Kannel's SMPP link to be online" 60 \
		sh -c "curl -sf 'http://127.0.0.1:$admin/status.txt?password=bench' | grep -q 'online'"
	smsbox -v 2 "$work/kannel.conf" >"$work/smsbox.out" 2>&1 &
	sb=$!
	bench_track "$sb"
	BENCH_WAIT_PID=$sb bench_wait "smsbox's sendsms port" 60 curl -s -o /dev/null "http://127.0.0.1:$sendp/"

	local bb0 sb0 sim0 bb1 sb1 sim1 rc=0
	bb0=$(bench_cpu_ticks "$bb") sb0=$(bench_cpu_ticks "$sb") sim0=$(bench_cpu_ticks "$SIM_PID")
	timeout "$limit" "$BENCH_BIN/kannel-load" -url "http://127.0.0.1:$sendp/cgi-bin/sendsms" \
		-dlr-url "http://$(cat "$work/dlr.addr")/dlr" -n "$N" -workers "$WORKERS" >"$work/load.out" 2>"$work/load.err" &
	lpid=$!
	bench_track "$lpid"
	wait "$lpid" || rc=$?
	# A failed load (refused requests) will never bring every DLR: do not wait for them.
	[ "$rc" = 0 ] || bench_stop "$rpid"
	wait "$rpid" || rc=$?
	bb1=$(bench_cpu_ticks "$bb") sb1=$(bench_cpu_ticks "$sb") sim1=$(bench_cpu_ticks "$SIM_PID")
	local bbh sbh
	bbh=$(bench_hwm_kib "$bb") sbh=$(bench_hwm_kib "$sb")
	cat "$work/load.err" "$work/dlr.err" >&2
	awk -v sys="kannel-$dlr" -v n="$N" -v bb="$((bb1 - bb0))" -v sb="$((sb1 - sb0))" -v sim="$((sim1 - sim0))" \
		-v bbh="$bbh" -v sbh="$sbh" '
		{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[$1, kv[1]] = kv[2] } }
		END {
			wall = (f["DLR", "last_final_ns"] - f["LOAD", "first_ns"]) / 1e9
			cpu = (bb + sb) / 100
			check = (f["LOAD", "ok"] == n && f["DLR", "finals"] == n) ? "ok" : "load_ok=" f["LOAD", "ok"] ",finals=" f["DLR", "finals"]
			printf "RESULT system=%s n=%d wall_s=%.3f msg_s=%.0f cpu_s=%.2f msg_per_cpu_s=%.0f us_per_msg=%.1f hwm_mib=%.0f bearerbox_cpu_s=%.2f smsbox_cpu_s=%.2f bearerbox_hwm_mib=%.0f smsbox_hwm_mib=%.0f sim_cpu_s=%.2f load_cpu_s=%s recv_cpu_s=%s sendsms_req_s=%s dlr_types=%s dup_finals=%s check=%s\n",
				sys, n, wall, (wall > 0 ? n / wall : 0), cpu, (cpu > 0 ? n / cpu : 0), 1e6 * cpu / n, (bbh + sbh) / 1024,
				bb / 100, sb / 100, bbh / 1024, sbh / 1024, sim / 100, f["LOAD", "load_cpu_s"], f["DLR", "recv_cpu_s"],
				f["LOAD", "req_s"], f["DLR", "by_type"], f["DLR", "dup_finals"], check
		}' "$work/load.out" "$work/dlr.out" | tee -a "$OUT"
	bench_stop "$sb" "$bb" "$SIM_PID" "$rpid"
	if [ "$rc" != 0 ]; then
		echo "kannel-$dlr run failed; logs kept in $work" >&2
		return "$rc"
	fi
	[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}

echo "Kannel $(bearerbox --version 2>&1 | sed -n "s/.*version \`\(.*\)'.*/\1/p" | head -1): N=$N RUNS=$RUNS DLR=$DLR workers=$WORKERS receipt_delay=$RECEIPT_DELAY, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for run in $(seq "$RUNS"); do
	for d in $DLR; do
		kannel_run "$d"
	done
done
echo "RESULT lines: $OUT"
bench_summary "$OUT"
