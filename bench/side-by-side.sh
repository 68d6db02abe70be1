#!/usr/bin/env bash
# side-by-side.sh: campaignd (bench/sending.sh) and Kannel (bench/kannel.sh)
# in one sitting, interleaved run by run so that a noisy machine hurts both
# alike; prints every RESULT line, the medians per system and the ratios
# campaignd / Kannel. Both use the same simulator settings and the same
# message text; see those scripts for what each run measures.
#
#   bash bench/side-by-side.sh                                 # N=50000 ROUNDS=3 DLR=internal
#   N=20000 ROUNDS=3 DLR="internal sqlite3" bash bench/side-by-side.sh
# Environment: N, ROUNDS, DLR, OUT, BENCH_BIN, and what the two scripts take.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

export N=${N:-50000}
ROUNDS=${ROUNDS:-3}
export DLR=${DLR:-internal}
export OUT=${OUT:-$(mktemp /tmp/side-by-side.XXXXXX.txt)}
bench_build
export BENCH_BIN

echo "side by side: N=$N ROUNDS=$ROUNDS DLR=$DLR on $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(date -u '+%Y-%m-%d %H:%M UTC')" >&2
failed=0
for round in $(seq "$ROUNDS"); do
	# Alternate which system goes first.
	if [ $((round % 2)) = 1 ]; then order="campaignd kannel"; else order="kannel campaignd"; fi
	for sys in $order; do
		script=bench/sending.sh
		[ "$sys" = campaignd ] || script=bench/kannel.sh
		# In the background and tracked, so that stopping this script stops it
		# (its own trap then stops what it started).
		RUNS=1 bash "$script" >/dev/null &
		bench_track $!
		wait $! || { echo "a run of $script failed (its logs are kept); going on" >&2; failed=1; }
	done
	tail -n +1 "$OUT" | grep '^RESULT' | tail -n "$(( $(echo "$DLR" | wc -w) + 1 ))" >&2
done
echo "RESULT lines: $OUT"
bench_summary "$OUT"
exit "$failed"
