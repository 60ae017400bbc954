#!/usr/bin/env bash
# The benchmark of issue 17: a documented command, not a timed test (CI only
# checks that it parses). It prints ratios of `apim-profiles split` against
# real peers, from one run:
#
#   bench/run.sh                                  # every row of issue 30's table, ~40 min on 2 cores
#   BENCH_ROUNDS=3 BENCH_SCALE=0 bench/run.sh     # quicker: no 50k/200k homes
#
# Every row carries the 1-minute load average when it was printed (the
# machine may be shared: a ratio within a round is what to compare).
#
#   BENCH_DIR=/var/tmp    where the homes go; its file system is the "plain" one (ext4 here)
#   BENCH_SIZE_MB=900 BENCH_FILES=6500   the generated home
#   BENCH_ROUNDS=5        measured rounds (one warm-up round runs first; BENCH_WARMUP=0: none)
#   BENCH_COLD=1          drop the page cache before every timed command (root)
#   BENCH_XFS=no          skip the loop-mounted XFS part (needs root and mkfs.xfs)
#   BENCH_UPDATE_DELAY=3  seconds the update double sleeps per update (the download); 0 skips
#   BENCH_SCALE=0         skip the 50k-file / 2 GB and 200k-small-file homes
#   BENCH_SCALE_SPLIT=0   do not split the 200k-file home (4 profiles: ~700k files to write; the
#                         split's and the re-run's peak memory rows are then left out)
#   BENCH_INSTALL=0       do not `cargo install --locked` a missing xcp / fcp
#   BENCH_OLD_BIN=PATH    another apim-profiles binary to time beside this one
#
# Method. Every timed command gets the same preparation: its output removed, a
# `sync`, the page cache dropped with BENCH_COLD=1; its time runs from its
# start until a `sync` after it returns (the time until the copies are on disk,
# what an operator waits for). The contenders of a part run round-robin, the
# order rotated each round, and each ratio is taken within a round (split's
# time / the peer's time in the same round), so a slow spell of the shared
# disk hits both sides of a ratio; min / median / max over the rounds.
#   whole home   each peer copying the whole home once per profile (the manual
#                procedure's copying): cp -a, rsync -a, tar | tar, xcp, fcp
#   survivors    each peer copying only what survives (the three finished
#                copies): the same work split does
#   dd           one file of the survivors' size, `dd oflag=direct` and
#                `dd conv=fsync`: the disk's write limit
#   XFS          a loop-mounted XFS image with reflink: cp --reflink=never x3
#                (RHEL 8/9's coreutils), cp --reflink=always x3, and the new
#                blocks of split and of split --reflink never
#   update       split with the update double per copy and with --update-once
#   scale        dry-run, re-run (min / median / max over BENCH_ROUNDS, at least
#                3) and peak memory (/usr/bin/time) on a 50k-file / 2 GB home
#                and a 200k-small-file home
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size=${BENCH_SIZE_MB:-900}
files=${BENCH_FILES:-6500}
rounds=${BENCH_ROUNDS:-5}
cold=${BENCH_COLD:-0}
delay=${BENCH_UPDATE_DELAY:-3}
profiles=(control-plane gateway-worker traffic-manager)
all4=control-plane,gateway-worker,traffic-manager,api-key-manager-deprecated

need_pkg() { echo "the benchmark needs $1: apt-get install -y $2" >&2; exit 1; }
command -v bc >/dev/null || need_pkg bc bc
[ -x /usr/bin/time ] || need_pkg /usr/bin/time time
command -v rsync >/dev/null || need_pkg rsync rsync
if [ "$cold" = 1 ] && [ "$(id -u)" != 0 ]; then echo "BENCH_COLD=1 needs root (drop_caches)" >&2; exit 1; fi

# Peers from crates.io: found on PATH or in ~/.cargo/bin, else installed.
find_peer() { # crate
  local p
  p=$(command -v "$1" 2>/dev/null || true)
  [ -z "$p" ] && [ -x "$HOME/.cargo/bin/$1" ] && p=$HOME/.cargo/bin/$1
  if [ -z "$p" ] && [ "${BENCH_INSTALL:-1}" != 0 ]; then
    echo "installing $1: cargo install --locked $1" >&2
    cargo install --locked -q "$1" >&2 && p=$HOME/.cargo/bin/$1
  fi
  echo "$p"
}
xcp=$(find_peer xcp)
fcp=$(find_peer fcp)
[ -n "$xcp" ] || echo "xcp: not found and not installed; its ratios are left out" >&2
[ -n "$fcp" ] || echo "fcp: not found and not installed; its ratios are left out" >&2
load() { cut -d' ' -f1 /proc/loadavg; }

(cd "$root" && cargo build --release --locked -q)
bin=$root/target/release/apim-profiles
gen=$root/target/release/apim-gen-home
old_bin=${BENCH_OLD_BIN:-}
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" apim-bench.XXXXXX)
mnt="" loopdev=""
cleanup() {
  if [ -n "$mnt" ]; then umount "$mnt" 2>/dev/null || true; fi
  if [ -n "$loopdev" ]; then losetup -d "$loopdev" 2>/dev/null || true; fi
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
calc() { echo "scale=4; $*" | bc -l; }
# stats "x y z": min median max
stats() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f %.3f %.3f", a[1], m, a[NR]}'; }
median() { stats "$1" | cut -d' ' -f2; }

# ---- the contenders: each writes under $dst -------------------------------
peer_copy() { # tool src dst-dir: one copy of src into dst-dir/
  local tool=$1 src=$2 d=$3
  mkdir -p "$d"
  case $tool in
    cp) cp -a "$src" "$d/" ;;
    cp_never) cp -a --reflink=never "$src" "$d/" ;;
    cp_always) cp -a --reflink=always "$src" "$d/" ;;
    rsync) rsync -a "$src" "$d/" ;;
    tar) tar -C "$(dirname "$src")" -cf - "$(basename "$src")" | tar -C "$d" -xpf - ;;
    xcp) "$xcp" -r "$src" "$d/$(basename "$src")" ;;
    fcp) "$fcp" "$src" "$d/$(basename "$src")" ;;
  esac
}
run_home() { for p in "${profiles[@]}"; do peer_copy "$1" "$home" "$dst/$p"; done; }
run_surv() { for p in "${profiles[@]}"; do peer_copy "$1" "$ref/$p/wso2am-4.2.0" "$dst/$p"; done; }
run_split() { "$bin" split "$home" --out "$dst" --no-update "$@" >/dev/null; }
run_old() { "$old_bin" split "$home" --out "$dst" --no-update >/dev/null; }
run_dd() { dd if="$bytes" of="$dst/bytes" bs=4M "$1" status=none; }
run_contender() { # name
  case $1 in
    split) run_split ;;
    split_never) run_split --reflink never ;;
    old) run_old ;;
    home:*) run_home "${1#home:}" ;;
    surv:*) run_surv "${1#surv:}" ;;
    dd_direct) run_dd oflag=direct ;;
    dd_fsync) run_dd conv=fsync ;;
    upd_none) run_split ;;
    upd_each) upd_env "$bin" split "$home" --out "$dst" --update-tool "$double" --update-each >/dev/null ;;
    upd_once) upd_env "$bin" split "$home" --out "$dst" --update-tool "$double" --update-once >/dev/null ;;
  esac
}
upd_env() { WSO2_USERNAME=bench WSO2_PASSWORD=bench-secret APIM_DOUBLE_DOWNLOAD_SECONDS=$delay "$@"; }

declare -A S W  # samples: total time; time of the sync after the command returned
timed() { # name
  chmod -R u+w "$dst" 2>/dev/null || true
  rm -rf "$dst"
  mkdir -p "$dst"
  sync
  if [ "$cold" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
  local t0 t1 t2
  t0=$(now)
  run_contender "$1"
  t1=$(now)
  sync
  t2=$(now)
  LAST=$(calc "$t2 - $t0")
  LAST_SYNC=$(calc "$t2 - $t1")
}
# part NAME...: rounds of the named contenders, order rotated per round.
part() {
  local names=("$@") n=$#
  local first=0 c
  [ "${BENCH_WARMUP:-1}" = 0 ] && first=1
  for c in "${names[@]}"; do S[$c]="" W[$c]=""; done # a part's own samples (split runs in several)
  for i in $(seq "$first" "$rounds"); do
    for k in $(seq 0 $((n - 1))); do
      local c=${names[$(((k + i) % n))]}
      timed "$c"
      if [ "$i" -gt 0 ]; then
        S[$c]+="$LAST "
        W[$c]+="$LAST_SYNC "
        eval "R_${i}_$(key "$c")=$LAST"
      fi
    done
    [ "$i" -gt 0 ] || echo "  warm-up round done" >&2
  done
  rm -rf "$dst"
}
key() { echo "$1" | tr -c 'a-zA-Z0-9_\n' _; }
# ratios A B: A/B within each round
ratios() {
  local out="" i a b
  for i in $(seq 1 "$rounds"); do
    a=R_${i}_$(key "$1")
    b=R_${i}_$(key "$2")
    out+="$(calc "${!a} / ${!b}") "
  done
  echo "$out"
}

TABLE=()
row() { local l; l=$(load); TABLE+=("| $1 | $2 | $3 | $4 | $5 | $l |"); echo "  | $1 | $2 | $3 | $4 | $5 | $l |" >&2; }
# ratio_row LABEL A B [GOAL-OP GOAL]: min/median/max of A/B
ratio_row() {
  local label=$1 rs s holds="" goal=""
  rs=$(ratios "$2" "$3")
  read -r mn md mx <<<"$(stats "$rs")"
  if [ -n "${4:-}" ]; then
    goal="$4 $5"
    holds=$([ "$(calc "$md $4 $5")" = 1 ] && echo yes || echo no)
  fi
  row "$label" "$mn" "$md" "$mx" "${goal:+$goal: $holds}"
}
inv_ratio_row() { # LABEL A B OP GOAL: B/A (how many times faster A is)
  local rs mn md mx
  rs=$(ratios "$3" "$2")
  read -r mn md mx <<<"$(stats "$rs")"
  row "$1" "$mn" "$md" "$mx" "$4 $5: $([ "$(calc "$md $4 $5")" = 1 ] && echo yes || echo no)"
}

# ---- the home ---------------------------------------------------------------
"$gen" "$work/src" --template "$root/fixtures/wso2am-4.2.0" --size-mb "$size" --files "$files" >/dev/null
home=$work/src/wso2am-4.2.0
# The update double knows a pack by its record of the files as shipped.
"$root/fixtures/update-tool/ship" "$home"
home_bytes=$(find "$home" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f\n", s}')
home_files=$(find "$home" | wc -l)
ref=$work/ref
"$bin" split "$home" --out "$ref" --no-update >/dev/null
surv_bytes=$(find "$ref" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f\n", s}')
surv_entries=$(find "$ref" -mindepth 2 | wc -l)
bytes=$work/bytes.bin
head -c "$surv_bytes" /dev/urandom >"$bytes"
fs_type=$(df -T "$work" | awk 'NR==2 {print $2}')
echo "home: $home_files entries, $((home_bytes / 1000000)) MB; survivors of 3 profiles: $surv_entries entries, $((surv_bytes / 1000000)) MB; $fs_type; $rounds rounds (+1 warm-up)" >&2
dst=$work/out

peers=(cp rsync tar)
[ -n "$xcp" ] && peers+=(xcp)
[ -n "$fcp" ] && peers+=(fcp)
names=(split dd_direct dd_fsync)
for p in "${peers[@]}"; do names+=("home:$p" "surv:$p"); done
[ -n "$old_bin" ] && names+=(old)
echo "part 1: $fs_type, ${#names[@]} contenders" >&2
part "${names[@]}"

best="" best_t=""
for p in "${peers[@]}"; do
  t=$(median "${S[surv:$p]}")
  if [ -z "$best" ] || [ "$(calc "$t < $best_t")" = 1 ]; then best=$p best_t=$t; fi
done
for p in "${peers[@]}"; do ratio_row "$fs_type: split / $p ×3 of the whole home" split "home:$p"; done
for p in "${peers[@]}"; do
  if [ "$p" = "$best" ]; then
    ratio_row "$fs_type: split / $p of the survivors (best peer there)" split "surv:$p" "<=" 0.90
  else
    ratio_row "$fs_type: split / $p of the survivors" split "surv:$p"
  fi
done
for p in xcp fcp; do
  [ -n "${!p}" ] || row "$fs_type: split / $p of the survivors" "" "skipped: $p not installed (cargo install --locked $p)" "" ""
done
ratio_row "$fs_type: split / dd oflag=direct of the same bytes" split dd_direct "<=" 1.25
ratio_row "$fs_type: split / dd conv=fsync of the same bytes" split dd_fsync
[ -n "$old_bin" ] && ratio_row "$fs_type: split / BENCH_OLD_BIN split" split old
TIMES=()
times_line() { # label name
  read -r mn md mx <<<"$(stats "${S[$2]}")"
  read -r wmn wmd wmx <<<"$(stats "${W[$2]}")"
  TIMES+=("| $1 | $md s ($mn–$mx) | $wmd s ($wmn–$wmx) | $(load) |")
  echo "  | $1 | $md s ($mn–$mx) | $wmd s ($wmn–$wmx) | $(load) |" >&2
}
times_line "$fs_type: split" split
[ -n "$old_bin" ] && times_line "$fs_type: BENCH_OLD_BIN split" old
times_line "$fs_type: dd oflag=direct" dd_direct
times_line "$fs_type: dd conv=fsync" dd_fsync
for p in "${peers[@]}"; do times_line "$fs_type: $p ×3 whole home" "home:$p"; times_line "$fs_type: $p survivors" "surv:$p"; done

# ---- XFS ------------------------------------------------------------------
xfs_note=""
if [ "${BENCH_XFS:-auto}" = no ]; then
  xfs_note="XFS: skipped (BENCH_XFS=no)"
elif [ "$(id -u)" != 0 ] || ! command -v mkfs.xfs >/dev/null; then
  xfs_note="XFS: skipped: needs root and mkfs.xfs (apt-get install -y xfsprogs)"
else
  img=$work/xfs.img
  truncate -s $(((home_bytes * 8) / 1000000 + 4096))M "$img"
  mkfs.xfs -q -m reflink=1 "$img"
  mnt=$work/xfs
  mkdir -p "$mnt"
  loopdev=$(losetup -f --show --direct-io=on "$img" 2>/dev/null || losetup -f --show "$img" 2>/dev/null || true)
  if [ -n "$loopdev" ] && mount "$loopdev" "$mnt" 2>/dev/null; then
    cp -a "$home" "$mnt/"
    home=$mnt/wso2am-4.2.0
    dst=$mnt/out
    sync
    echo "part 2: XFS on $loopdev" >&2
    part split home:cp_never home:cp_always
    inv_ratio_row "xfs: cp --reflink=never ×3 / split (times faster)" split home:cp_never ">=" 10
    ratio_row "xfs: split / cp --reflink=always ×3" split home:cp_always "<=" 0.30
    times_line "xfs: split" split
    times_line "xfs: cp --reflink=never ×3" home:cp_never
    times_line "xfs: cp --reflink=always ×3" home:cp_always
    used() { sync; df -B1 --output=used "$mnt" | tail -1; }
    u0=$(used); mkdir -p "$dst"; run_split; u1=$(used)
    rm -rf "$dst"; u2=$(used); mkdir -p "$dst"; run_split --reflink never; u3=$(used); rm -rf "$dst"
    pct=$(calc "100 * ($u1 - $u0) / $home_bytes")
    never=$(calc "100 * ($u3 - $u2) / $surv_bytes")
    row "xfs: new blocks of split (3 copies), % of one home" "" "$pct" "" "< 5: $([ "$(calc "$pct < 5")" = 1 ] && echo yes || echo no)"
    row "xfs: new blocks of split --reflink never, % of the survivors' bytes" "" "$never" "" "≈ 100 (never clones)"
    home=$work/src/wso2am-4.2.0
    dst=$work/out
  else
    xfs_note="XFS: skipped: loop mount not permitted here"
  fi
fi

# ---- update: per copy vs once ---------------------------------------------
if [ "$delay" != 0 ]; then
  double=$root/fixtures/update-tool/wso2update_linux
  echo "part 3: update, the double's download ${delay}s" >&2
  part upd_none upd_each upd_once
  # The update step: the split's time beyond the same split without updates.
  each_upd=$(calc "$(median "${S[upd_each]}") - $(median "${S[upd_none]}")")
  once_upd=$(calc "$(median "${S[upd_once]}") - $(median "${S[upd_none]}")")
  ratio_row "update: split --update-once / per-copy update (whole split)" upd_once upd_each
  row "update step: --update-once / per copy (medians, beyond --no-update)" "" "$(calc "$once_upd / $each_upd")" "" "≈ 0.33"
  times_line "split --no-update" upd_none
  times_line "split, update per copy" upd_each
  times_line "split --update-once" upd_once
fi

# ---- scale ----------------------------------------------------------------
if [ "${BENCH_SCALE:-1}" != 0 ]; then
  rm -rf "$work/ref" "$bytes"
  peak() { { /usr/bin/time -f %M "$@" >/dev/null; } 2>&1 | tail -1; }
  times3() { # runs the command 1+max(rounds,3) times, prints min median max of all but the first
    local s="" t0 t1 n=$rounds
    [ "$n" -ge 3 ] || n=3
    "$@" >/dev/null
    for _ in $(seq "$n"); do t0=$(now); "$@" >/dev/null; t1=$(now); s+="$(calc "$t1 - $t0") "; done
    stats "$s"
  }
  mb() { echo "$(($1 / 1024)) MB"; }
  under64() { [ "$1" -lt 65536 ] && echo yes || echo no; }
  scale() { # label files size-mb dry-goal-ms split(1/0)
    local h=$work/scale/wso2am-4.2.0 o=$work/scale-out
    "$gen" "$work/scale" --template "$root/fixtures/wso2am-4.2.0" --files "$2" --size-mb "$3" >/dev/null
    local n; n=$(find "$h" | wc -l)
    local mn md mx
    read -r mn md mx <<<"$(times3 "$bin" split "$h" --out "$o" --no-update --dry-run --profiles "$all4")"
    local pkd; pkd=$(peak "$bin" split "$h" --out "$o" --no-update --dry-run --profiles "$all4")
    local ms; ms=$(calc "$md * 1000" | cut -d. -f1)
    row "$1 ($n entries): dry-run of 4 profiles, s" "$mn" "$md" "$mx" "< $4 ms: $([ "${ms:-0}" -lt "$4" ] && echo yes || echo no)"
    row "$1: peak memory, dry-run of 4 profiles" "" "$(mb "$pkd")" "" "< 64 MB: $(under64 "$pkd")"
    if [ "$5" = 1 ]; then
      local t0 t1 pk pkr
      t0=$(now)
      pk=$(peak "$bin" split "$h" --out "$o" --no-update --profiles "$all4")
      t1=$(now)
      row "$1: split of 4 profiles, peak memory (time $(calc "$t1 - $t0" | cut -c1-6) s)" "" "$(mb "$pk")" "" "< 64 MB: $(under64 "$pk")"
      read -r mn md mx <<<"$(times3 "$bin" split "$h" --out "$o" --no-update)"
      row "$1: re-run over 3 current copies, s" "$mn" "$md" "$mx" "< 0.5 s: $([ "$(calc "$md < 0.5")" = 1 ] && echo yes || echo no)"
      pkr=$(peak "$bin" split "$h" --out "$o" --no-update)
      row "$1: re-run over 3 current copies, peak memory" "" "$(mb "$pkr")" "" "< 64 MB: $(under64 "$pkr")"
    fi
    chmod -R u+w "$work/scale" "$o" 2>/dev/null || true
    rm -rf "$work/scale" "$o"
  }
  echo "part 4: scale" >&2
  scale "50k files, 2 GB" 50000 2000 300 1
  scale "200k small files" 200000 400 1000 "${BENCH_SCALE_SPLIT:-1}"
fi

echo
[ -z "$xfs_note" ] || row "xfs: split / cp --reflink=always ×3" "" "$xfs_note" "" ""
echo "| ratio (split / other unless said) | min | median | max | goal | load |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${TABLE[@]}"
echo
echo "| times (median, min–max) | total, until synced | of which the sync after it returned | load |"
echo "|---|---|---|---|"
printf '%s\n' "${TIMES[@]}"
echo
echo "home: $home_files entries, $((home_bytes / 1000000)) MB; survivors: $surv_entries entries, $((surv_bytes / 1000000)) MB; $rounds rounds; $(nproc) cores; $(uname -r)"
[ -z "$xfs_note" ] || echo "$xfs_note"
