#!/usr/bin/env bash
# Whole-system benchmark (the bars of BENCHMARKS.md): the real binary, a real FTP client,
# the bundled SMSC simulator.
#   1. ingest: a generated N-row file (default 1,000,000) is uploaded with
#      curl; we time from the 226 to the broadcast being visible in the API,
#      and read the process's peak RSS (VmHWM) afterwards.
#   2. sending: the broadcast is sent with no TPS cap, receipts on, every
#      state change durable; we report submit_sm/s from the metrics.
# Usage: bench/system.sh [ROWS] [SEND_ROWS]      (run from the repository root)
set -euo pipefail
ROWS=${1:-1000000}
SEND_ROWS=${2:-100000}
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/campaignd" ./cmd/campaignd
pass=bench-pass
hash=$(printf '%s\n' "$pass" | "$work/campaignd" hash-password)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
FTP=127.0.0.1:$(port) WEB=127.0.0.1:$(port) MET=127.0.0.1:$(port)
cat > "$work/c.toml" <<TOML
data_dir = "$work/data"
[log]
level = "warn"
[ftp]
listen = "$FTP"
passive_ports = "40000-40100"
[[ftp.users]]
name = "bench"
password_hash = "$hash"
[web]
listen = "$WEB"
[[web.users]]
name = "admin"
password_hash = "$hash"
role = "admin"
[smpp]
tps = 0
window = 50
[metrics]
listen = "$MET"
[simulator]
receipt_delay = "100ms"
TOML

gen() { # rows date
  awk -v n="$1" -v d="$2" 'BEGIN { print "Recipient,Message,Payback Member ID,Campaign Name,Date";
    for (i = 0; i < n; i++) printf "55%08d,Hola socio %d tienes 1250 puntos Payback canjealos antes del domingo,600%07d,Bench,%s\n", i, i, i, d }'
}
gen "$ROWS" "" > "$work/ingest.csv"
gen "$SEND_ROWS" "2020-01-01" > "$work/send.csv"

"$work/campaignd" serve --config "$work/c.toml" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://$WEB/healthz" >/dev/null && break; sleep 0.1; done

api() { curl -sf -u "admin:$pass" "http://$WEB/api/v1/$1"; }
count() { api broadcasts | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }

size=$(stat -c %s "$work/ingest.csv")
t0=$(date +%s.%N)
curl -sS -T "$work/ingest.csv" "ftp://bench:$pass@$FTP/"
t1=$(date +%s.%N)
until [ "$(count)" = 1 ]; do sleep 0.05; done
t2=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status); grep -E "RssAnon|RssFile" /proc/$pid/status | tr -s " \t" " " | tr "\n" ";" ; echo
python3 - "$ROWS" "$size" "$t0" "$t1" "$t2" "$rss" <<'PY'
import sys
rows, size, t0, t1, t2, rss = int(sys.argv[1]), int(sys.argv[2]), *map(float, sys.argv[3:6]), int(sys.argv[6])
print(f"upload  {size/1e6:.0f} MB in {t1-t0:.2f} s ({size/1e6/(t1-t0):.0f} MB/s, curl, loopback)")
print(f"ingest  {rows} rows: 226 -> visible in {t2-t1:.2f} s = {rows/(t2-t1):,.0f} rows/s")
print(f"peak RSS of campaignd so far: {rss/1024:.0f} MiB")
PY

metric() { curl -sf "http://$MET/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
curl -sS -T "$work/send.csv" "ftp://bench:$pass@$FTP/"
until [ "$(count)" = 2 ]; do sleep 0.05; done
s0=$(metric 'campaignd_smpp_submits_total{result="ok"}'); ts0=$(date +%s.%N)
sleep 10
s1=$(metric 'campaignd_smpp_submits_total{result="ok"}'); ts1=$(date +%s.%N)
python3 -c "import sys; s0,s1,t0,t1=map(float,sys.argv[1:]); print(f'sending {s1-s0:,.0f} submit_sm in {t1-t0:.1f} s = {(s1-s0)/(t1-t0):,.0f} submit_sm/s (no TPS cap, receipts on, durable state)')" "$s0" "$s1" "$ts0" "$ts1"
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status); grep -E "RssAnon|RssFile" /proc/$pid/status | tr -s " \t" " " | tr "\n" ";" ; echo
echo "peak RSS of campaignd at the end: $((rss/1024)) MiB"
