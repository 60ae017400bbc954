#!/usr/bin/env bash
# The fleet rollout's wall time, the distribute role vs ansible-apim's way (the pack copied to
# every node, unzipped and optimized there), on the same four-node inventory over SSH to
# 127.0.0.2-127.0.0.5. A command, not a test.
#   ansible/tests/fleet/bench.sh                 # a generated 400 MB home, 3 rounds
#   BENCH_SIZE_MB=200 BENCH_ROUNDS=1 ansible/tests/fleet/bench.sh
# Needs: root (for sshd), ansible-core (ANSIBLE_VENV or a fresh venv), target/release binaries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${APIM_BIN:-$root/target/release/apim-profiles}
gen=${APIM_GEN:-$root/target/release/apim-gen-home}
size=${BENCH_SIZE_MB:-400}
rounds=${BENCH_ROUNDS:-3}
work=$(mktemp -d /var/tmp/apim-fleet-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
venv=${ANSIBLE_VENV:-$work/venv}
if [ ! -x "$venv/bin/ansible-playbook" ]; then python3 -m venv "$venv"; "$venv/bin/pip" install -q "ansible-core>=2.15,<2.18"; fi
export ANSIBLE_NOCOLOR=1 ANSIBLE_LOCAL_TEMP=$work/ans-local ANSIBLE_REMOTE_TEMP=$work/ans-remote
export ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp ANSIBLE_COLLECTIONS_PATH=$work/collections ANSIBLE_PIPELINING=${ANSIBLE_PIPELINING:-1}
(cd "$work" && "$venv/bin/ansible-galaxy" collection build "$root/ansible" >/dev/null)
"$venv/bin/ansible-galaxy" collection install -p "$work/collections" "$work"/apim_profiles-fleet-*.tar.gz >/dev/null

"$gen" --template "$root/fixtures/wso2am-4.2.0" --size-mb "$size" "$work/src" >/dev/null
(cd "$work/src" && zip -qry "$work/wso2am-4.2.0.zip" wso2am-4.2.0)
rm -rf "$work/src"
echo "pack: $(du -m "$work/wso2am-4.2.0.zip" | cut -f1) MB zip, $(unzip -Z1 "$work/wso2am-4.2.0.zip" | wc -l) entries; $(nproc) cores; transport below"

. "$here/lib.sh"
trap 'stop_sshd; rm -rf "$work"' EXIT   # lib.sh set its own trap; keep both
echo "transport: $transport ${why:-}"
timed() { # LABEL LOG cmd...
  local label=$1 log=$2; shift 2
  local s e; s=$(date +%s.%N); "$@" > "$log" 2>&1 || { tail -30 "$log"; echo "FAIL: $label" >&2; exit 1; }
  e=$(date +%s.%N); "$venv/bin/python" -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$s" "$e"
}
declare -a ours=() again=() theirs=()
for r in $(seq "$rounds"); do
  rm -rf "$work/nodes" "$work/work" "$work/nodes-apim"; sync
  nodes=$work/nodes; inventory "$work/hosts"
  ours+=("$(timed distribute "$work/ours.log" "$venv/bin/ansible-playbook" -i "$work/hosts" "$here/fleet.yml" \
    -e "apim_profiles_binary=$bin" -e "apim_profiles_work=$work/work" -e "apim_profiles_home=$work/wso2am-4.2.0.zip")")
  again+=("$(timed distribute-again "$work/again.log" "$venv/bin/ansible-playbook" -i "$work/hosts" "$here/fleet.yml" \
    -e "apim_profiles_binary=$bin" -e "apim_profiles_work=$work/work" -e "apim_profiles_home=$work/wso2am-4.2.0.zip")")
  rm -rf "$work/nodes"; sync
  nodes=$work/nodes-apim; inventory "$work/hosts-apim"
  theirs+=("$(timed ansible-apim "$work/theirs.log" "$venv/bin/ansible-playbook" -i "$work/hosts-apim" "$here/ansible-apim-like.yml" \
    -e "pack_zip=$work/wso2am-4.2.0.zip" -e "node_binary=$bin")")
  echo "round $r: distribute ${ours[-1]} s (second run ${again[-1]} s), ansible-apim's way ${theirs[-1]} s"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median of $rounds: distribute $(med "${ours[@]}") s (second run $(med "${again[@]}") s), ansible-apim's way $(med "${theirs[@]}") s"
grep -E '^(cp1|gw1|gw2|tm1) +:' "$work/ours.log" "$work/again.log" "$work/theirs.log"
