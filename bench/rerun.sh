#!/usr/bin/env bash
# The re-run benchmark of issue 12: how long `split` takes to answer
# `current` for three copies that are already there and unchanged. A re-run
# reads metadata only (the source's and each copy's fingerprint, the records),
# never a byte of the copies, so it must stay well under a second.
#
#   bench/rerun.sh                        # full size: ~900 MB, ~6.5k files, 9 rounds
#   BENCH_SIZE_MB=200 bench/rerun.sh      # quicker
#
# Prints the median wall time, the median CPU time (user + system) and the
# peak memory of the re-run, after one warm-up run (reads are warm: a
# re-run follows a split on the same machine).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size=${BENCH_SIZE_MB:-900}
files=${BENCH_FILES:-6500}
rounds=${BENCH_ROUNDS:-9}
command -v /usr/bin/time >/dev/null || { echo "the benchmark needs /usr/bin/time: apt-get install -y time" >&2; exit 1; }
(cd "$root" && cargo build --release --locked -q)
bin=$root/target/release/apim-profiles
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" apim-rerun.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$root/target/release/apim-gen-home" "$work/src" --template "$root/fixtures/wso2am-4.2.0" \
  --size-mb "$size" --files "$files" >&2
home=$work/src/wso2am-4.2.0
"$bin" split "$home" --out "$work/out" --no-update >/dev/null
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
walls=() cpus=() mems=()
for i in $(seq 0 "$rounds"); do
  line=$( { /usr/bin/time -f '%e %U %S %M' "$bin" split "$home" --out "$work/out" --no-update --json \
    >"$work/rerun.json"; } 2>&1 | tail -1)
  grep -q '"changed": false' "$work/rerun.json" || { echo "the re-run changed something" >&2; exit 1; }
  [ "$i" = 0 ] && continue # warm-up
  read -r e u s m <<<"$line"
  walls+=("$e"); cpus+=("$(echo "$u + $s" | bc -l)"); mems+=("$m")
done
wall=$(printf '%s\n' "${walls[@]}" | median)
cpu=$(printf '%s\n' "${cpus[@]}" | median)
mem=$(printf '%s\n' "${mems[@]}" | median)
entries=$(find "$home" | wc -l)
echo "| measure | value | target | holds |"
echo "|---|---|---|---|"
echo "| re-run over 3 current copies, wall | ${wall} s | < 0.5 s | $( (( $(echo "$wall < 0.5" | bc -l) )) && echo yes || echo no) |"
echo "| re-run over 3 current copies, CPU (user + sys) | ${cpu} s | | |"
echo "| re-run, peak memory | $((mem / 1024)) MB | | |"
echo "home: $entries entries, ${size} MB; medians of $rounds rounds (wall: ${walls[*]}); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
