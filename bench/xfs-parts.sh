#!/usr/bin/env bash
# Issue 30's XFS row taken apart: on a fresh XFS loop image with reflink, the
# generated full-size home, split's walk and plan (a dry-run) and the whole
# split, beside the clone-only peer `cp -a --reflink=always` ×3; each timed
# until a `sync` after it, a warm-up round, then BENCH_ROUNDS rounds (default 3).
# Needs root, mkfs.xfs and a loop device.
#
#   bench/xfs-parts.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${BENCH_ROUNDS:-3}
(cd "$root" && cargo build --release --locked -q)
bin=$root/target/release/apim-profiles gen=$root/target/release/apim-gen-home
w=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" apim-xfs.XXXXXX)
truncate -s 8G "$w/img"
mkfs.xfs -q -m reflink=1 "$w/img"
mkdir "$w/m"
mount -o loop "$w/img" "$w/m"
trap 'umount "$w/m"; rm -rf "$w"' EXIT
"$gen" "$w/m/h" --template "$root/fixtures/wso2am-4.2.0" --size-mb "${BENCH_SIZE_MB:-900}" --files "${BENCH_FILES:-6500}" >/dev/null
h=$w/m/h/wso2am-4.2.0
timed() {
  local t0 t1
  rm -rf "$w/m/o"
  mkdir -p "$w/m/o"
  sync
  t0=$(date +%s.%N)
  "$@" >/dev/null
  sync
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l | cut -c1-6
}
cp3() { for p in a b c; do mkdir -p "$w/m/o/$p"; cp -a --reflink=always "$h" "$w/m/o/$p/"; done; }
for r in $(seq 0 "$rounds"); do
  d=$(timed "$bin" split "$h" --out "$w/m/o/x" --no-update --dry-run)
  s=$(timed "$bin" split "$h" --out "$w/m/o/x" --no-update)
  c=$(timed cp3)
  [ "$r" = 0 ] && continue
  echo "round $r: walk and plan (dry-run) $d s; split $s s; cp -a --reflink=always ×3 $c s; split / cp $(echo "$s / $c" | bc -l | cut -c1-5); load $(cut -d' ' -f1 /proc/loadavg)"
done
