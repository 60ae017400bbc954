#!/usr/bin/env bash
# The Ansible test (run by .ci/run). Real ansible-core from PyPI in a virtual environment, the
# collection built with ansible-galaxy and installed from its tarball, then:
#   1. ansible-test sanity (validate-modules) on the installed collection;
#   2. the modules' unit tests (pytest, tests/unit/plugins/modules) on the installed modules;
#   3. ansible/split.yml on localhost: check mode writes nothing, first run changed, second not;
#   4. the distribute role over a four-node inventory (control plane, two gateways, traffic
#      manager) reached over real SSH: an sshd this script starts as root on a high port, bound
#      to 127.0.0.2-127.0.0.5 only, with host and user keys made in a private temp directory.
#      Where sshd cannot run (not root, no sshd), the nodes use ansible_connection=local.
#      Cases: check mode writes nothing; first run changes each host and each node's copy
#      verifies as its profile; second run changed=0; a pending update conflict fails twice,
#      then succeeds after continue; state verify fails on a planted webapp; the role's node-side
#      verify names a planted webapp and an edit that keeps size and time; bad binary;
#      unknown apim_profile; contradictory options; the password never in any output (-vvv).
# Environment: APIM_BIN (the binary; default target/release), ANSIBLE_VENV (reuse a venv),
# APIM_TEST_NO_SSH=1 (force the local fallback), APIM_TEST_SKIP_SANITY=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=${APIM_BIN:-$root/target/release/apim-profiles}
if [ ! -x "$bin" ]; then (cd "$root" && cargo build --release --locked); fi
double=$root/fixtures/update-tool/wso2update_linux

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# Everything the tools keep under ~ (ansible's ~/.ansible, ansible-test's venvs and cache, pip's
# cache, ssh's ~/.ssh) stays in the temp dir: the operator's home is never written.
mkdir -p "$work/home"
# cargo (run below for the set-secrets test) finds its toolchain under the real home.
real_home=$HOME
export HOME=$work/home ANSIBLE_HOME=$work/home/.ansible
venv=${ANSIBLE_VENV:-$work/venv}
if [ ! -x "$venv/bin/ansible-playbook" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "ansible-core>=2.15,<2.18" pytest
fi
[ -x "$venv/bin/pytest" ] || "$venv/bin/pip" install -q pytest
py=$venv/bin/python
fail() { echo "FAIL: $*" >&2; exit 1; }
passed=0
skipped=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
skip() { skipped=$((skipped + 1)); echo "skipped: $*"; }
# Whether a log shows a download that could not be made (no network, or no index).
offline() { grep -qiE "could not fetch url|failed to establish a new connection|temporary failure in name resolution|network is unreachable|connection refused|urlopen error|no matching distribution found|max retries exceeded" "$1"; }

export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_LOCAL_TEMP=$work/ans-local ANSIBLE_REMOTE_TEMP=$work/ans-remote
export ANSIBLE_CONFIG=$here/ansible.cfg ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp ANSIBLE_HOST_KEY_CHECKING=True
export ANSIBLE_COLLECTIONS_PATH=$work/collections ANSIBLE_PYTHON_INTERPRETER=$py ANSIBLE_PIPELINING=True
unset WSO2_USERNAME WSO2_PASSWORD APIM_DOUBLE_SCENARIO

# --- the collection: build, install from the tarball ----------------------------------------
(cd "$work" && "$venv/bin/ansible-galaxy" collection build "$here" >/dev/null)
tarball=$(ls "$work"/apim_profiles-fleet-*.tar.gz)
"$venv/bin/ansible-galaxy" collection install -p "$work/collections" "$tarball" >/dev/null
coll=$work/collections/ansible_collections/apim_profiles/fleet
[ -f "$coll/plugins/modules/apim_profiles.py" ] || fail "the installed collection has no module"
[ ! -e "$coll/test.sh" ] || fail "the collection tarball carries test files"
ok "collection built and installed from $(basename "$tarball")"
# Built where the README builds it (the repository's root), the tarball is not left untracked.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  for t in "$(basename "$tarball")" "ansible/$(basename "$tarball")"; do
    git -C "$root" check-ignore -q "$t" || fail "$t in the repository would not be git-ignored"
  done
  ok "the collection tarball is git-ignored"
else
  skip "not a git work tree: the tarball's .gitignore entry is not checked"
fi

if [ "${APIM_TEST_SKIP_SANITY:-}" != 1 ]; then
  "$root/../shared/tools/ansible-test-offline" "$py" >/dev/null 2>&1 || true
  if (cd "$coll" && "$venv/bin/ansible-test" sanity --test validate-modules --venv --python "$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    > "$work/sanity.log" 2>&1); then
    ok "ansible-test sanity --test validate-modules"
  elif grep -qE '^ERROR: [a-z_/]+[.]py:|sanity test\(s\) listed below' "$work/sanity.log"; then
    # The test ran and found errors: a download that failed on the way (pip's own bootstrap) does not excuse them.
    cat "$work/sanity.log"; fail "ansible-test sanity (validate-modules) failed"
  elif offline "$work/sanity.log"; then
    # ansible-test fetches its own requirements into its venv; without a network that part
    # cannot run here, which is not a failure of the collection.
    skip "offline: ansible-test sanity could not fetch its requirements ($(grep -iE -m1 "could not fetch|failed to establish|name resolution|unreachable|refused|urlopen|no matching|max retries" "$work/sanity.log" | cut -c1-160))"
  else
    cat "$work/sanity.log"; fail "ansible-test sanity (validate-modules) failed"
  fi
else
  skip "sanity: APIM_TEST_SKIP_SANITY=1"
fi

# --- the modules' unit tests (pytest, on the installed collection's modules, with this binary) -------------
# Option rules, the TOML of set, failures as short messages with fields, a SIGKILL of the module leaving no
# password on disk; the transport module's crafted archives, inodes, cached hashes, node-side verify and diff.
(cd "$here/tests/unit/plugins/modules" && APIM_MODULES=$coll/plugins/modules APIM_BIN=$bin \
  "$venv/bin/pytest" -q -rs -p no:cacheprovider . > "$work/unit.log" 2>&1) \
  || { cat "$work/unit.log"; fail "the modules' unit tests failed"; }
! grep -qE '^SKIPPED' "$work/unit.log" || { cat "$work/unit.log"; fail "a module unit test was skipped"; }
ok "modules' unit tests: $(tail -1 "$work/unit.log")"

# --- split.yml on localhost ---------------------------------------------------------------------
cp -a "$root/fixtures/wso2am-4.2.0" "$work/wso2am-4.2.0"
home=$work/wso2am-4.2.0
out=$work/out
split_play() {
  (cd "$here" && "$venv/bin/ansible-playbook" -i localhost, split.yml \
    -e "apim_bin=$bin" -e "apim_home=$home" -e "apim_out=$out" \
    -e '{"apim_profiles": ["control-plane", "gateway-worker", "traffic-manager"], "apim_update": false}' "$@")
}
recap() { grep -E "^$1 +:" "$2"; }
split_play --check --diff > "$work/check.log" 2>&1 || { cat "$work/check.log"; fail "split.yml check mode failed"; }
[ ! -e "$out" ] || fail "check mode wrote $out"
recap localhost "$work/check.log" | grep -q 'changed=1' || { cat "$work/check.log"; fail "check mode reported no change to come"; }
grep -q -- '--- gateway-worker before: .*/repository/conf/deployment.toml' "$work/check.log" || { cat "$work/check.log"; fail "check mode showed no labelled diff"; }
! grep -q 'Fixture-Admin-Pw1' "$work/check.log" || fail "a secret was printed in check mode"
split_play --diff > "$work/first.log" 2>&1 || { cat "$work/first.log"; fail "split.yml first run failed"; }
recap localhost "$work/first.log" | grep -q 'changed=1' || { cat "$work/first.log"; fail "first run did not report changed"; }
grep -q -- '+++ gateway-worker after: .*/gateway-worker/wso2am-4.2.0/repository/conf/deployment.toml' "$work/first.log" || { cat "$work/first.log"; fail "the real run showed no labelled diff"; }
find "$out" -printf '%p %T@\n' | sort > "$work/times1"
split_play > "$work/second.log" 2>&1 || { cat "$work/second.log"; fail "split.yml second run failed"; }
recap localhost "$work/second.log" | grep -q 'changed=0' || { cat "$work/second.log"; fail "second run reported a change"; }
find "$out" -printf '%p %T@\n' | sort > "$work/times2"
cmp -s "$work/times1" "$work/times2" || fail "the second run moved file times"
ok "split.yml: check $(recap localhost "$work/check.log" | grep -o 'changed=[0-9]*'), first $(recap localhost "$work/first.log" | grep -o 'changed=[0-9]*'), second $(recap localhost "$work/second.log" | grep -o 'changed=[0-9]*')"

# --- secrets given with set: never logged, never returned (at -vvv, in a registered result) -------
(cd "$root" && HOME=$real_home APIM_TEST_ANSIBLE_VENV=$venv cargo test -q --test adversarial the_ansible_module_never_shows_or_returns_set_secrets -- --nocapture \
  > "$work/set-secrets.log" 2>&1) || { cat "$work/set-secrets.log"; fail "a set secret was shown or returned"; }
! grep -q skipped "$work/set-secrets.log" || { cat "$work/set-secrets.log"; fail "the set-secrets test was skipped"; }
ok "set secrets: hidden at -vvv and in registered results"

# --- the fleet: sshd on 127.0.0.2-127.0.0.5 ----------------------------------------------------
"$here/tests/fleet/run.sh" "$work" "$venv" "$bin" "$home" "$double"
passed=$((passed + $(cat "$work/fleet-passed")))
echo "ansible: $passed passed, 0 failed, $skipped skipped"
