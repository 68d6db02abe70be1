#!/bin/sh
# ftp-upload.sh: campaignd's FTP upload throughput against vsftpd (the FTP bar of BENCHMARKS.md),
# interleaved so that a noisy machine hurts both servers alike.
#
# Builds the bench test binary once, then for ROUNDS rounds runs every
# (client, size) pair once per server, alternating which server goes first,
# with BENCHTIME uploads per run. Prints the raw go test lines (benchstat
# input) to OUT and a table of medians and campaignd/vsftpd ratios.
#
#   sh bench/ftp-upload.sh                 # 5 rounds, 5x, output in /tmp
#   ROUNDS=9 BENCHTIME=3x OUT=ftp.txt sh bench/ftp-upload.sh
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
BENCHTIME=${BENCHTIME:-5x}
OUT=${OUT:-$(mktemp /tmp/ftp-upload.XXXXXX.txt)}
BIN=$(mktemp -d /tmp/ftp-upload-bin.XXXXXX)
trap 'rm -rf "$BIN"' EXIT
go test -c -o "$BIN/bench.test" ./bench/

: >"$OUT"
round=1
while [ "$round" -le "$ROUNDS" ]; do
	if [ $((round % 2)) -eq 1 ]; then order="campaignd vsftpd"; else order="vsftpd campaignd"; fi
	for client in FTPUpload FTPUploadCurl; do
		for size in 16MiB 256MiB; do
			for server in $order; do
				"$BIN/bench.test" -test.run '^$' -test.benchtime "$BENCHTIME" -test.count 1 \
					-test.bench "^Benchmark$client\$/^size=$size\$/^server=$server\$" |
					tee -a "$OUT" | grep '^Benchmark' || true
			done
		done
	done
	round=$((round + 1))
done

echo
echo "raw results: $OUT"
# Median MB/s per benchmark, then campaignd/vsftpd per client and size.
grep '^Benchmark' "$OUT" | awk '
{
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 2; i <= NF; i++) if ($i == "MB/s") v[name] = v[name] " " $(i-1)
}
END {
	for (name in v) {
		n = split(substr(v[name], 2), a, " ")
		for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; j--) a[j+1] = a[j]; a[j+1] = x }
		med = (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
		split(name, p, "/"); sub(/^size=/, "", p[2]); sub(/^server=/, "", p[3])
		m[p[1] "/" p[2], p[3]] = med; runs[p[1] "/" p[2]] = n; keys[p[1] "/" p[2]] = 1
	}
	printf "%-34s %6s %12s %12s %8s\n", "client/size", "runs", "campaignd", "vsftpd", "ratio"
	for (k in keys) {
		c = m[k, "campaignd"]; s = m[k, "vsftpd"]
		printf "%-34s %6d %9.1f MB/s %7.1f MB/s %7.1f%%\n", k, runs[k], c, s, (s > 0 ? 100 * c / s : 0)
	}
}' | { read -r header; echo "$header"; sort; }
