#!/usr/bin/env bash
# Issue 30's memory rows in rounds: on the 200k-small-file home
# (`apim-gen-home --files 200000 --size-mb 400`), the peak resident memory
# (/usr/bin/time %M) of a split of 4 profiles, then of 3 re-runs over the 3
# default profiles' current copies; BENCH_ROUNDS rounds (default 3).
#
#   bench/memory.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${BENCH_ROUNDS:-3}
(cd "$root" && cargo build --release --locked -q)
bin=$root/target/release/apim-profiles gen=$root/target/release/apim-gen-home
all4=control-plane,gateway-worker,traffic-manager,api-key-manager-deprecated
w=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" apim-mem.XXXXXX)
trap 'chmod -R u+w "$w" 2>/dev/null; rm -rf "$w"' EXIT
"$gen" "$w/h" --template "$root/fixtures/wso2am-4.2.0" --files "${BENCH_FILES:-200000}" --size-mb "${BENCH_SIZE_MB:-400}" >/dev/null
h=$w/h/wso2am-4.2.0
echo "home: $(find "$h" | wc -l) entries"
for r in $(seq 1 "$rounds"); do
  rm -rf "$w/o"
  sync
  /usr/bin/time -o "$w/t" -f '%e s, user %U s, sys %S s, %M KB' "$bin" split "$h" --out "$w/o" --no-update --profiles "$all4" >/dev/null
  echo "round $r: split of 4 profiles: $(cat "$w/t"); load $(cut -d' ' -f1 /proc/loadavg)"
  for k in 1 2 3; do
    /usr/bin/time -o "$w/t" -f '%e s, user %U s, sys %S s, %M KB' "$bin" split "$h" --out "$w/o" --no-update >/dev/null
    echo "round $r: re-run $k over 3 current copies: $(cat "$w/t")"
  done
done
