#!/usr/bin/env bash
# The roll-forward benchmark of issue 24 (a documented command, not a timed test):
#
#   bench/rollforward.sh                         # 900 MB / 6,500-file home, 3 rounds
#   BENCH_ROUNDS=5 BENCH_CHANGE_PERCENT=5 bench/rollforward.sh
#
#   BENCH_DIR=/var/tmp      where the home and outputs go
#   BENCH_SIZE_MB=900 BENCH_FILES=6500   the generated home
#   BENCH_ROUNDS=3          rounds (each: a fresh output split at level 7, then timed: the roll to 8)
#   BENCH_CHANGE_PERCENT=5  how much of the home the update to 8 rewrites (the double's
#                           APIM_DOUBLE_CHANGE_PERCENT: jars of repository/components/plugins)
#   BENCH_UPDATE_DELAY=3    seconds the double sleeps for the download (reported apart)
#
# Per round, timed until a `sync` after the command returns:
#   roll    `split HOME --out OUT` over 3 copies at level 7 when level 8 is out: one tool run
#           on the kept base, then every copy derived again, only what changed written
#   tool    the update tool's run on the base, from the report (download included), and the
#           download (the double's sleep) apart
#   write   the limit's other term: the files the roll wrote (its report's per-copy lists),
#           written once per copy with `cp` into an empty directory, then `sync`
# The goal: roll < 1.5 x (write + tool). Printed: min / median / max over the rounds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size=${BENCH_SIZE_MB:-900}
files=${BENCH_FILES:-6500}
rounds=${BENCH_ROUNDS:-3}
pct=${BENCH_CHANGE_PERCENT:-5}
delay=${BENCH_UPDATE_DELAY:-3}

(cd "$root" && cargo build --release --locked -q)
bin=$root/target/release/apim-profiles
gen=$root/target/release/apim-gen-home
double=$root/fixtures/update-tool/wso2update_linux
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" apim-rollforward.XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export WSO2_USERNAME=bench@example.com WSO2_PASSWORD=bench-only

now() { date +%s.%N; }
calc() { echo "scale=4; $*" | bc -l; }
stats() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f %.3f %.3f", a[1], m, a[NR]}'; }

"$gen" "$work/src" --template "$root/fixtures/wso2am-4.2.0" --size-mb "$size" --files "$files" >/dev/null
home=$work/src/wso2am-4.2.0
"$root/fixtures/update-tool/ship" "$home"
home_bytes=$(find "$home" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f\n", s}')
echo "home: $(find "$home" | wc -l) entries, $((home_bytes / 1048576)) MB; update to 8 rewrites ~$pct % of it; download ${delay} s"

rolls="" tools="" downloads="" writes="" ratios="" kept_pct=""
for r in $(seq 1 "$rounds"); do
  out=$work/out-$r
  APIM_DOUBLE_LATEST_LEVEL=7 "$bin" split "$home" --out "$out" --update-tool "$double" --json >/dev/null
  sync
  t0=$(now)
  APIM_DOUBLE_LATEST_LEVEL=8 APIM_DOUBLE_CHANGE_PERCENT=$pct APIM_DOUBLE_DOWNLOAD_SECONDS=$delay \
    "$bin" split "$home" --out "$out" --update-tool "$double" --json >"$work/roll-$r.json"
  sync
  t1=$(now)
  roll=$(calc "$t1 - $t0")
  # What the roll wrote per copy (added and changed, tool state included), and what it kept.
  python3 - "$work/roll-$r.json" "$out" "$work/written-$r" <<'EOF'
import json, os, sys
report, out, lists = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
os.makedirs(lists, exist_ok=True)
tool_ms = 0
kept = copied = 0
for p in report["profiles"]:
    assert p["status"] == "updated", p["status"]
    u = p["update"]
    tool_ms = max(tool_ms, u["duration_ms"])
    kept += p.get("bytes_kept", 0)
    copied += p["bytes_copied"]
    with open(os.path.join(lists, p["profile"]), "w") as f:
        for rel in u["added"] + u["modified"]:
            f.write(os.path.join(p["path"], rel) + "\n")
print(tool_ms, kept, copied, file=open(os.path.join(lists, "figures"), "w"))
EOF
  read -r tool_ms kept copied <"$work/written-$r/figures"
  tool=$(calc "$tool_ms / 1000")
  sync
  t0=$(now)
  for list in "$work/written-$r"/*; do
    [ "$(basename "$list")" = figures ] && continue
    dest=$work/write-$r/$(basename "$list")
    mkdir -p "$dest"
    i=0
    while IFS= read -r f; do i=$((i + 1)); cp -- "$f" "$dest/$i"; done <"$list"
  done
  sync
  t1=$(now)
  write=$(calc "$t1 - $t0")
  rolls="$rolls $roll" tools="$tools $tool" downloads="$downloads $delay" writes="$writes $write"
  ratios="$ratios $(calc "$roll / ($write + $tool)")"
  kept_pct="$kept_pct $(calc "100 * $kept / ($kept + $copied)")"
  rm -rf "$out" "$work/write-$r"
done

printf '%-44s %8s %8s %8s\n' "measure (seconds; $rounds rounds)" min median max
printf '%-44s %8s %8s %8s\n' "roll forward of 3 copies (split)" $(stats "$rolls")
printf '%-44s %8s %8s %8s\n' "  of which the tool on the base" $(stats "$tools")
printf '%-44s %8s %8s %8s\n' "    of which the simulated download" $(stats "$downloads")
printf '%-44s %8s %8s %8s\n' "write the changed files once per copy (cp)" $(stats "$writes")
printf '%-44s %8s %8s %8s\n' "ratio roll / (write + tool) (goal < 1.5)" $(stats "$ratios")
printf '%-44s %8s %8s %8s\n' "% of the copies' bytes kept (not written)" $(stats "$kept_pct")
