#!/usr/bin/env bash
# The playbook test: ansible-core from PyPI in a virtual environment, then
# ansible/split.yml against the committed fixture three times:
#   check mode (--check --diff) writes nothing and reports a change to come,
#   the first run reports changed, the second reports no change and moves no
#   file time under the output.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=${APIM_BIN:-$root/target/release/apim-profiles}
if [ ! -x "$bin" ]; then (cd "$root" && cargo build --release --locked); fi

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
venv=${ANSIBLE_VENV:-$work/venv}
if [ ! -x "$venv/bin/ansible-playbook" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "ansible-core>=2.15,<2.18"
fi

cp -a "$root/fixtures/wso2am-4.2.0" "$work/wso2am-4.2.0"
out=$work/out
export ANSIBLE_NOCOLOR=1 ANSIBLE_LOCAL_TEMP=$work/ans-local ANSIBLE_REMOTE_TEMP=$work/ans-remote
export ANSIBLE_CONFIG=$here/ansible.cfg
unset WSO2_USERNAME WSO2_PASSWORD
play() {
  (cd "$here" && "$venv/bin/ansible-playbook" -i localhost, split.yml \
    -e "ansible_python_interpreter=$venv/bin/python" \
    -e "apim_bin=$bin" -e "apim_home=$work/wso2am-4.2.0" -e "apim_out=$out" \
    -e '{"apim_profiles": ["control-plane", "gateway-worker", "traffic-manager"], "apim_update": false}' "$@")
}
recap() { grep -E '^localhost +:' "$1"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

play --check --diff > "$work/check.log" 2>&1 || { cat "$work/check.log"; fail "check mode run failed"; }
[ ! -e "$out" ] || fail "check mode wrote $out"
recap "$work/check.log" | grep -q 'changed=1' || { cat "$work/check.log"; fail "check mode did not report a change to come"; }
grep -q -- '--- a/repository/conf/deployment.toml' "$work/check.log" || fail "check mode showed no diff"
! grep -q 'Fixture-Admin-Pw1' "$work/check.log" || fail "a secret was printed in check mode"

play > "$work/first.log" 2>&1 || { cat "$work/first.log"; fail "first run failed"; }
recap "$work/first.log" | grep -q 'changed=1' || { cat "$work/first.log"; fail "first run did not report changed"; }
[ -d "$out/gateway-worker/wso2am-4.2.0" ] || fail "no gateway-worker copy"
find "$out" -printf '%p %T@\n' | sort > "$work/times1"

play > "$work/second.log" 2>&1 || { cat "$work/second.log"; fail "second run failed"; }
recap "$work/second.log" | grep -q 'changed=0' || { cat "$work/second.log"; fail "second run reported a change"; }
find "$out" -printf '%p %T@\n' | sort > "$work/times2"
cmp -s "$work/times1" "$work/times2" || { diff "$work/times1" "$work/times2" | head; fail "the second run moved file times"; }

echo "check mode:  $(recap "$work/check.log")"
echo "first run:   $(recap "$work/first.log")"
echo "second run:  $(recap "$work/second.log")"
echo "ansible: 3 passed, 0 failed"
