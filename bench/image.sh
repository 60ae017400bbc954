#!/usr/bin/env bash
# The benchmark of issue 28: `apim-profiles image` against building the same
# per-profile images by hand, on the full-size generated home. A documented
# command, not a timed test:
#
#   bench/image.sh                              # 900 MB / 6500-file home, 3 rounds
#   BENCH_ROUNDS=1 bench/image.sh               # one round
#
#   BENCH_DIR=/var/tmp                   where the home, the layouts and the registry go
#   BENCH_SIZE_MB=900 BENCH_FILES=6500   the generated home (apim-gen-home, as bench/run.sh)
#   BENCH_ROUNDS=3                       measured rounds (min / median / max printed)
#
# Needs umoci, skopeo and docker-registry (apt-get install umoci skopeo docker-registry)
# and /usr/bin/time. Nothing comes from the network: the base image is a tiny
# one made with umoci (its one layer is the same in every case, so it does
# not change a comparison).
#
# What is timed, each from its start until a `sync` after it returns:
#   image      apim-profiles image HOME -o <new layout> --base <base> (the three
#              default profiles: plan, shared layer + three own layers, configs,
#              manifests), a new layout each round
#   baseline   per profile: `cp -a` of the profile's split copy (the same files
#              the image holds; the split itself is made once, not timed, which
#              favours the baseline), then `tar -C <copy's parent> -c . | gzip`
#              (gzip -6, its default; apim-profiles uses level 6 too)
# What is counted:
#   pushed     bytes in a docker-registry's storage after `skopeo copy` of the
#              three images (every blob once: base, shared layer, three own
#              layers, configs, manifests)
#   unshared   the sum of the three images' sizes (each image's own blobs, as
#              three registries, or three images without a shared layer, store them)
#   baseline   the three per-profile tar.gz files
#   pairs      file content the split copies hold in exactly two profiles alike (path,
#              size, time, mode): what layers shared by pairs of profiles could save
#              on top of the one shared layer (uncompressed)
# and each image's digest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size=${BENCH_SIZE_MB:-900}
files=${BENCH_FILES:-6500}
rounds=${BENCH_ROUNDS:-3}
profiles=(control-plane gateway-worker traffic-manager)

for t in umoci skopeo docker-registry; do
  command -v "$t" >/dev/null || { echo "the benchmark needs $t: apt-get install -y umoci skopeo docker-registry" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "the benchmark needs /usr/bin/time: apt-get install -y time" >&2; exit 1; }

(cd "$root" && cargo build --release --locked -q)
bin=$root/target/release/apim-profiles
gen=$root/target/release/apim-gen-home
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" apim-image-bench.XXXXXX)
reg_pid=""
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Seconds a command takes, until its writes are on disk.
timed() {
  sync
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null
  sync
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
stats() { sort -n | awk '{a[NR]=$1} END {printf "min %.1f s, median %.1f s, max %.1f s", a[1], a[int((NR+1)/2)], a[NR]}'; }

echo "generating the home: ${size} MB, ${files} files" >&2
"$gen" "$work/src" --template "$root/fixtures/wso2am-4.2.0" --size-mb "$size" --files "$files" >/dev/null
home=$work/src/wso2am-4.2.0

# The tiny base, made with umoci alone.
umoci init --layout "$work/base" >/dev/null
umoci new --image "$work/base:latest" >/dev/null
umoci unpack --image "$work/base:latest" "$work/base-bundle" >/dev/null
mkdir -p "$work/base-bundle/rootfs/etc" && echo "tiny base" >"$work/base-bundle/rootfs/etc/motd"
umoci repack --image "$work/base:latest" "$work/base-bundle" >/dev/null

"$bin" split "$home" --out "$work/split" --no-update >/dev/null

build_image() { "$bin" image "$home" --out "$1" --base "$work/base:latest" --json >"$1.json"; }
baseline() { # out dir
  mkdir -p "$1"
  for p in "${profiles[@]}"; do
    mkdir -p "$1/$p"
    cp -a "$work/split/$p/wso2am-4.2.0" "$1/$p/"
    tar -C "$1/$p" -c . | gzip >"$1/$p.tar.gz"
  done
}

img_t=() base_t=()
for r in $(seq 1 "$rounds"); do
  rm -rf "$work/oci" "$work/oci.json" "$work/manual"
  if [ $((r % 2)) = 1 ]; then
    img_t+=("$(timed build_image "$work/oci")"); base_t+=("$(timed baseline "$work/manual")")
  else
    base_t+=("$(timed baseline "$work/manual")"); img_t+=("$(timed build_image "$work/oci")")
  fi
  echo "round $r: image ${img_t[-1]} s, baseline ${base_t[-1]} s" >&2
done

# A second run into a fresh layout must give the same digests.
build_image "$work/oci2"
same=$(python3 - "$work/oci.json" "$work/oci2.json" <<'EOF'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
print("yes" if [i["digest"] for i in a["images"]] == [i["digest"] for i in b["images"]] else "NO")
EOF
)

# Push the three images to a docker-registry on 127.0.0.1 and count its storage.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
reg_pid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
for p in "${profiles[@]}"; do
  skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:$p" "docker://127.0.0.1:$port/wso2am:$p"
done
pushed=$(find "$work/registry/docker/registry/v2/blobs" -name data -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
blobs=$(find "$work/registry/docker/registry/v2/blobs" -name data -type f | wc -l)
manual=$(du -cb "$work"/manual/*.tar.gz | tail -1 | cut -f1)

echo
echo "home: ${size} MB, ${files} files; ${rounds} round(s); $(nproc) cores"
echo "image build, 3 profiles:        $(printf '%s\n' "${img_t[@]}" | stats)"
echo "cp -a + tar | gzip, 3 profiles: $(printf '%s\n' "${base_t[@]}" | stats)"
python3 - "$work/oci.json" "$pushed" "$blobs" "$manual" "$same" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
pushed, blobs, manual, same = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
unshared = sum(i["size"] for i in doc["images"])
mb = lambda n: f"{n / 1e6:.1f} MB"
s = doc["shared_layer"]
print(f"shared layer: {s['digest']} {mb(s['size'])} ({s['entries']} entries, {mb(s['content_bytes'])} of content)")
for i in doc["images"]:
    print(f"  {i['profile']}: {i['digest']} {mb(i['size'])}, own layer {mb(i['layer']['size'])}")
print(f"pushed to one registry: {mb(pushed)} in {blobs} blobs; three unshared images: {mb(unshared)}; "
      f"three tar.gz by hand: {mb(manual)}")
print(f"second run, fresh layout, same digests: {same}")
EOF
python3 - "$work/split" "${profiles[@]}" <<'EOF'
import collections, os, sys
root, profiles = sys.argv[1], sys.argv[2:]
seen, size = collections.defaultdict(set), {}
for p in profiles:
    top = os.path.join(root, p, "wso2am-4.2.0")
    for d, dirs, files in os.walk(top):
        for f in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            full = os.path.join(d, f)
            rel = os.path.relpath(full, top)
            if rel.startswith(".apim-profiles"):
                continue
            st = os.lstat(full)
            key = (rel, st.st_size, st.st_mtime_ns, st.st_mode)
            seen[key].add(p)
            size[key] = 0 if os.path.islink(full) else st.st_size
by = collections.Counter()
for k, ps in seen.items():
    by[len(ps)] += size[k]
mb = lambda n: f"{n / 1e6:.1f} MB"
print(f"content of the split copies: in all {len(profiles)}: {mb(by[len(profiles)])}, in exactly two: {mb(by[2])} "
      f"(what layers shared by pairs could save more), in one only: {mb(by[1])}")
EOF
