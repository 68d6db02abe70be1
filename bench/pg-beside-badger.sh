#!/usr/bin/env bash
# pg-beside-badger.sh: the ingest and sending benchmarks on Badger and on
# PostgreSQL in one sitting, interleaved (BENCHMARKS.md, "PostgreSQL beside
# Badger"). Each round runs, alternating which engine goes first:
#   ingest of a ROWS-row file on each engine (bench/ingest.sh's ingest_run),
#   sending N messages to the simulator in another process on each engine
#   (bench/sending.sh's campaignd_run: no TPS cap, receipts on, durable).
# One PostgreSQL serves the whole sitting (a throwaway server from Debian's
# binaries unless DSN is given; its defaults kept: fsync and
# synchronous_commit on); every run gets a fresh campaignd, data directory
# and database. Each RESULT line carries the 1-minute load average taken
# just before the run. Prints the RESULT lines, then medians per engine.
#
#   bash bench/pg-beside-badger.sh                  # ROUNDS=3 ROWS=1000000 N=100000
#   ROUNDS=1 ROWS=100000 N=10000 bash bench/pg-beside-badger.sh   # quick
#   ROWS=0 bash bench/pg-beside-badger.sh    # sending only (N=0: ingest only)
# Environment: ROUNDS, ROWS, N, DSN, PG_STATS=1 (pg_stat_statements, top
# statements printed at the end), OUT, BENCH_BIN, and those of sending.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
export ROWS=${ROWS:-1000000} N=${N:-100000}
OUT=${OUT:-$(mktemp /tmp/campaignd-pg-beside-badger.XXXXXX.txt)}
ENGINE=postgres
INGEST_LIB_ONLY=1 . bench/ingest.sh  # builds, starts PostgreSQL, writes the ingest file
SENDING_LIB_ONLY=1 . bench/sending.sh # writes the sending file

echo "PostgreSQL beside Badger: ROUNDS=$ROUNDS ROWS=$ROWS N=$N, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), OUT=$OUT" >&2
for round in $(seq "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then order="badger postgres"; else order="postgres badger"; fi
	[ "$ROWS" = 0 ] || for ENGINE in $order; do ingest_run || true; done
	[ "$N" = 0 ] || for ENGINE in $order; do campaignd_run || true; done
done
echo "RESULT lines: $OUT"
[ "$ROWS" = 0 ] || ingest_summary "$OUT"
[ "$N" = 0 ] || bench_summary "$OUT"
