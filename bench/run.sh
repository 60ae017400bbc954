#!/usr/bin/env bash
# The benchmark of issue 5: a documented command, not a timed test.
#
#   bench/run.sh                      # full size: ~900 MB, ~6.5k files, 5 rounds
#   BENCH_SIZE_MB=200 BENCH_ROUNDS=3 bench/run.sh   # a quick run
#
# It generates a synthetic home (apim-gen-home) on the file system of
# $BENCH_DIR (default /var/tmp) and measures, medians of the rounds, side by
# side in one run:
#   manual  `cp -a` of the home once per profile, then in-place optimization
#           of each copy (`apim-profiles optimize`, standing in for the
#           product's profileSetup.sh, which cannot be shipped);
#   limit   `cp -a` of only what survives: the three finished copies;
#   split   `apim-profiles split` of the three default profiles.
# As root with mkfs.xfs and loop mounts, the same on a loop-mounted XFS image
# with reflink: manual as `cp -a --reflink=never` (RHEL 8/9) and as `cp -a`
# (coreutils >= 9 clones), and the new blocks the three copies take. Also the
# dry-run time of the four profiles and the peak memory of split and dry-run.
# Every timed command starts after a `sync` and its time runs until a `sync`
# after it returns: the time until the copies are on disk, which is what an
# operator waits for (without it the figures measure the page cache, and swing
# with writeback on a shared disk). Reads are warm (one warm-up round first).
# Prints a markdown table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size=${BENCH_SIZE_MB:-900}
files=${BENCH_FILES:-6500}
rounds=${BENCH_ROUNDS:-5}
profiles=(control-plane gateway-worker traffic-manager)
all4=control-plane,gateway-worker,traffic-manager,api-key-manager-deprecated

for tool in bc /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "the benchmark needs $tool: apt-get install -y bc time" >&2; exit 1; }
done
(cd "$root" && cargo build --release --locked -q)
bin=$root/target/release/apim-profiles
gen=$root/target/release/apim-gen-home
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" apim-bench.XXXXXX)
mnt=""
cleanup() {
  if [ -n "$mnt" ]; then umount "$mnt" 2>/dev/null || true; fi
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$gen" "$work/src" --template "$root/fixtures/wso2am-4.2.0" --size-mb "$size" --files "$files" >/dev/null
home=$work/src/wso2am-4.2.0
home_bytes=$(du -sb "$home" | cut -f1)
home_files=$(find "$home" -type f | wc -l)

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# rounds NAME=RUN-FN...: the measures run interleaved, round after round (the
# first round is a warm-up), so that a slow spell of the disk is shared by all.
declare -A T
rounds_of() {
  local -A samples=()
  local names=()
  for spec in "$@"; do names+=("${spec%=*}"); done
  for i in $(seq 0 "$rounds"); do
    for spec in "$@"; do
      local name=${spec%=*} run=${spec##*=}
      sync; sleep 0.2
      local t0; t0=$(now)
      $run
      sync
      local t1; t1=$(now)
      clean
      [ "$i" -gt 0 ] && samples[$name]+="$(echo "$t1 - $t0" | bc -l) "
    done
  done
  for n in "${names[@]}"; do
    T[$n]=$(printf '%s\n' ${samples[$n]} | median)
    printf '  %-34s %8.3f s  (rounds: %s)\n' "$n" "${T[$n]}" "${samples[$n]}" >&2
  done
}

manual_with() { # cp flags...
  local dst=$base/manual
  for p in "${profiles[@]}"; do
    mkdir -p "$dst/$p"
    cp -a "$@" "$home" "$dst/$p/"
    "$bin" optimize "$dst/$p/wso2am-4.2.0" --profile "$p" >/dev/null
  done
}
run_manual_never() { manual_with --reflink=never; }
run_manual_auto() { manual_with; }
run_limit() {
  for p in "${profiles[@]}"; do mkdir -p "$base/limit/$p"; cp -a "$base/ref/$p/wso2am-4.2.0" "$base/limit/$p/"; done
}
run_split() { "$bin" split "$home" --out "$base/split" --no-update >/dev/null; }
run_dry() { "$bin" split "$home" --out "$base/dry" --no-update --dry-run --profiles "$all4" >/dev/null; }
clean() { rm -rf "$base/manual" "$base/limit" "$base/split"; }

fs_type=$(df -T "$work" | awk 'NR==2 {print $2}')
echo "home: $home_files files, $((home_bytes / 1000000)) MB on $fs_type; $rounds rounds (+1 warm-up)" >&2
base=$work/plain
mkdir -p "$base"
"$bin" split "$home" --out "$base/ref" --no-update >/dev/null
rounds_of "ext: manual (cp -a + optimize)=run_manual_auto" "ext: limit (cp -a survivors)=run_limit" "ext: split=run_split" "dry-run, four profiles=run_dry"
peak_split=$( { /usr/bin/time -f %M "$bin" split "$home" --out "$base/peak" --no-update --profiles "$all4" >/dev/null; } 2>&1 | tail -1)
rm -rf "$base/peak"
peak_dry=$( { /usr/bin/time -f %M "$bin" split "$home" --out "$base/peak" --no-update --dry-run --profiles "$all4" >/dev/null; } 2>&1 | tail -1)

xfs=no
if [ "$(id -u)" = 0 ] && command -v mkfs.xfs >/dev/null && [ "${BENCH_XFS:-auto}" != no ]; then
  img=$work/xfs.img
  truncate -s $(( (home_bytes * 6) / 1000000 + 2048 ))M "$img"
  mkfs.xfs -q -m reflink=1 "$img"
  mnt=$work/xfs
  mkdir -p "$mnt"
  if mount -o loop "$img" "$mnt" 2>/dev/null; then
    xfs=yes
    cp -a "$home" "$mnt/"
    home=$mnt/wso2am-4.2.0
    base=$mnt/b
    mkdir -p "$base"
    rounds_of "xfs: manual cp --reflink=never=run_manual_never" "xfs: manual cp -a (clones)=run_manual_auto" "xfs: split=run_split"
    sync
    used0=$(df -B1 --output=used "$mnt" | tail -1)
    run_split; sync
    used1=$(df -B1 --output=used "$mnt" | tail -1)
    xfs_new=$((used1 - used0))
    clean
  else
    mnt=""
    echo "XFS: loop mount not permitted here; skipped" >&2
  fi
else
  echo "XFS: needs root and mkfs.xfs (apt-get install xfsprogs); skipped" >&2
fi

r() { echo "scale=2; $1 / $2" | bc -l; }
echo
echo "| measure | value | target | holds |"
echo "|---|---|---|---|"
ratio=$(r "${T[ext: split]}" "${T[ext: limit (cp -a survivors)]}")
echo "| $fs_type: manual (cp -a + optimize), 3 profiles | ${T[ext: manual (cp -a + optimize)]} s | | |"
echo "| $fs_type: limit (cp -a of the survivors) | ${T[ext: limit (cp -a survivors)]} s | | |"
echo "| $fs_type: split, 3 profiles | ${T[ext: split]} s | | |"
echo "| $fs_type: split / limit | $ratio | <= 1.10 | $( (( $(echo "$ratio <= 1.10" | bc -l) )) && echo yes || echo no) |"
echo "| $fs_type: manual / split | $(r "${T[ext: manual (cp -a + optimize)]}" "${T[ext: split]}") | | |"
if [ "$xfs" = yes ]; then
  sp=$(r "${T[xfs: manual cp --reflink=never]}" "${T[xfs: split]}")
  cl=$(r "${T[xfs: manual cp -a (clones)]}" "${T[xfs: split]}")
  pct=$(echo "scale=2; 100 * $xfs_new / $home_bytes" | bc -l)
  echo "| xfs: manual, cp --reflink=never | ${T[xfs: manual cp --reflink=never]} s | | |"
  echo "| xfs: manual, cp -a (clones) | ${T[xfs: manual cp -a (clones)]} s | | |"
  echo "| xfs: split | ${T[xfs: split]} s | | |"
  echo "| xfs: manual --reflink=never / split | $sp | >= 5 | $( (( $(echo "$sp >= 5" | bc -l) )) && echo yes || echo no) |"
  echo "| xfs: manual cp -a (clones) / split | $cl | | |"
  echo "| xfs: new blocks of 3 copies / home size | $pct % | < 10 % | $( (( $(echo "$pct < 10" | bc -l) )) && echo yes || echo no) |"
fi
dry_ms=$(echo "${T[dry-run, four profiles]} * 1000" | bc -l | cut -d. -f1)
echo "| dry-run, 4 profiles | ${dry_ms} ms | < 150 ms | $( [ "$dry_ms" -lt 150 ] && echo yes || echo no) |"
echo "| peak memory, split of 4 profiles | $((peak_split / 1024)) MB | < 64 MB | $( [ "$peak_split" -lt 65536 ] && echo yes || echo no) |"
echo "| peak memory, dry-run of 4 profiles | $((peak_dry / 1024)) MB | < 64 MB | $( [ "$peak_dry" -lt 65536 ] && echo yes || echo no) |"
echo
echo "home: $home_files files, $((home_bytes / 1000000)) MB; medians of $rounds rounds; $(nproc) cores"
