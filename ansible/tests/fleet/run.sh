#!/usr/bin/env bash
# The multi-node test of the distribute role (called by ansible/test.sh, which installed the
# collection into $ANSIBLE_COLLECTIONS_PATH).
# usage: run.sh WORK VENV BIN HOME UPDATE_TOOL_DOUBLE
# Writes the number of passed cases to WORK/fleet-passed and the recap lines to WORK/recaps.
set -euo pipefail
work=$1 venv=$2 bin=$3 home=$4 double=$5
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; echo "$passed" > "$work/fleet-passed"; }
password=Fleet-Secret-Pw-7q

. "$here/lib.sh"

fleet=$work/fleet
nodes=$fleet/nodes
mkdir -p "$fleet" "$fleet/stats"
inventory "$fleet/hosts"
# The fixture home holds 36 KB of files where a real one holds hundreds of MB of jars: one 4 MiB jar
# (random bytes, every profile keeps lib/) gives the copies a size against which bytes moved mean something.
head -c 4194304 /dev/urandom > "$home/lib/fleet-bulk.jar"
# The pack as operators download it: the zip of the home.
(cd "$(dirname "$home")" && zip -qry "$fleet/wso2am-4.2.0.zip" "$(basename "$home")")
play() { # LOG [args...]
  local log=$1; shift
  "$venv/bin/ansible-playbook" -i "$fleet/hosts" "$here/fleet.yml" \
    -e "apim_profiles_binary=$bin" -e "apim_profiles_work=$fleet/work" -e "fleet_stats=$fleet/stats" "$@" > "$log" 2>&1
}
moved() { # HOST [STATS_DIR]: "bytes_moved copy_bytes full" from the role's apim_profiles_result of the last run
  "$venv/bin/python" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["bytes_moved"], r["copy_bytes"], r["full"])' "${2:-$fleet/stats}/$1.json"
}
recaps() { grep -E '^(cp1|gw1|gw2|tm1) +:' "$1"; }
every_host() { # LOG PATTERN: each of the four hosts' recap matches
  for h in "${hosts[@]}"; do grep -E "^$h +:" "$1" | grep -qE "$2" || return 1; done
}
files_of() { # DIR: "path inode mtime sha256" of every file
  (cd "$1" && find . -type f -printf '%P %i %T@ ' -exec sh -c 'sha256sum < "$1" | cut -c1-64' _ {} \;) | sort
}
kept() { # BEFORE AFTER HOST MUST_CHANGE [only]: every file whose content and time stayed kept its inode; MUST_CHANGE
  # changed (with only: nothing else changed, or nothing at all)
  "$venv/bin/python" - "$@" <<'PY'
import sys
def load(p):
    return dict((l.split(' ')[0], l.split()[1:]) for l in open(p) if l.strip())
old, new, host, must = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3], sys.argv[4]
only = sys.argv[5:] == ['only']
same = [p for p in new if p in old and old[p][1:] == new[p][1:]]
relinked = [p for p in same if old[p][0] != new[p][0]]
changed = sorted(p for p in new if p not in old or old[p][1:] != new[p][1:])
if only:
    assert changed in ([], [must]), '%s: %s changed, not only %s' % (host, changed, must)
else:
    assert must in changed, '%s: %s did not change (changed: %s)' % (host, must, changed)
assert not relinked, '%s: files with the same content and time got a new inode: %s' % (host, relinked[:5])
print('%s: %d files changed or added (%s), %d kept their inode and time' % (host, len(changed), ', '.join(changed[:4]), len(same)))
PY
}
snapshot() { (find "$fleet/work" "$nodes" -printf '%p %y %s %T@\n' 2>/dev/null || true) | sort; }

# 1. check mode writes nothing (the zip is the home: nothing unzipped, split, archived or sent)
play "$fleet/check.log" -e "apim_profiles_home=$fleet/wso2am-4.2.0.zip" --check --diff \
  || { cat "$fleet/check.log"; fail "check mode run failed"; }
[ ! -e "$fleet/work" ] && [ ! -e "$nodes" ] || fail "check mode wrote $(ls -d "$fleet/work" "$nodes" 2>/dev/null)"
every_host "$fleet/check.log" 'changed=[1-9]' || { cat "$fleet/check.log"; fail "check mode did not report a change to come on every host"; }
ok "check mode before the first run: a change to come on every host, nothing written ($transport)"

# A node's copy checked by the binary against its profile: the node has no key of the output the
# copy was split into (the key never travels), so verify cannot trust the copy's record and says
# `unverifiable` (exit 2) with that reason; what it can check, the profile, must show no difference.
# (The node is proven against the controller's copy by the role's Python verify, step 8b.)
node_matches_profile() {
  local rc=0
  "$bin" verify "$1" --json > "$3" || rc=$?
  "$venv/bin/python" - "$3" "$2" "$rc" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d['profiles'][0]
assert p['profile'] == sys.argv[2], p
assert not p.get('drift'), p
assert (p['status'], sys.argv[3]) == ('unverifiable', '2'), p
assert p['reason'].startswith('record not sealed by this output: there is no key'), p
PY
}

# 2. first run: each host changed, each node's copy verifies as its profile, handler ran once
start=$(date +%s.%N)
play "$fleet/first.log" -e "apim_profiles_home=$fleet/wso2am-4.2.0.zip" || { cat "$fleet/first.log"; fail "first run failed"; }
end=$(date +%s.%N)
every_host "$fleet/first.log" 'changed=[1-9].* failed=0' || { cat "$fleet/first.log"; fail "first run did not change every host"; }
for h in "${hosts[@]}"; do
  c=$nodes/$h/wso2am-4.2.0
  node_matches_profile "$c" "${prof[$h]}" "$fleet/verify-$h.json" || fail "$h's copy is not its profile's"
  [ "$(cat "$nodes/$h/restarts.log")" = restarted ] || fail "the handler did not run once on $h"
done
[ -n "$(ls "$nodes/cp1/wso2am-4.2.0/repository/deployment/server/webapps/" | grep -F 'publisher')" ] || fail "the control plane lost its publisher"
[ -z "$(ls "$nodes/gw1/wso2am-4.2.0/repository/deployment/server/webapps/" | grep -F 'publisher')" ] || fail "a gateway kept the publisher"
"$venv/bin/python" -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$start" "$end" > "$fleet/first-seconds"
for h in "${hosts[@]}"; do
  read -r b c full < <(moved "$h")
  [ "$full" = True ] && [ "$b" -gt 0 ] || fail "$h: the first run did not send the whole copy ($b bytes, full=$full)"
  echo "$h first run: $b bytes moved, copy $c bytes (whole copy)"
done
ok "first run: every host changed, every node's copy verifies as its profile, one restart each ($(cat "$fleet/first-seconds")s)"

# 3. second run: changed=0 everywhere, nothing moved, no restart
snapshot > "$fleet/snap1"
play "$fleet/second.log" -e "apim_profiles_home=$fleet/wso2am-4.2.0.zip" || { cat "$fleet/second.log"; fail "second run failed"; }
every_host "$fleet/second.log" 'changed=0 .*failed=0' || { cat "$fleet/second.log"; fail "second run reported a change"; }
snapshot > "$fleet/snap2"
cmp -s "$fleet/snap1" "$fleet/snap2" || { diff "$fleet/snap1" "$fleet/snap2" | head; fail "the second run moved something"; }
ok "second run: changed=0 on every host, nothing moved, no restart"

# 4. check mode after a change on one node writes nothing and names that node only
echo tampered > "$nodes/gw2/wso2am-4.2.0/README.txt"
snapshot > "$fleet/snap3"
play "$fleet/check2.log" -e "apim_profiles_home=$fleet/wso2am-4.2.0.zip" --check --diff || { cat "$fleet/check2.log"; fail "check mode run failed"; }
snapshot > "$fleet/snap4"
cmp -s "$fleet/snap3" "$fleet/snap4" || { diff "$fleet/snap3" "$fleet/snap4" | head; fail "check mode wrote something"; }
grep -E '^gw2 +:' "$fleet/check2.log" | grep -q 'changed=[1-9]' || { cat "$fleet/check2.log"; fail "check mode missed the changed node"; }
for h in cp1 gw1 tm1; do grep -E "^$h +:" "$fleet/check2.log" | grep -q 'changed=0' || fail "check mode changed $h"; done
# --diff names what differs on that node, by path (not two fingerprints).
grep -q 'wso2am-4.2.0: 1 paths to change on the node to match the copy made on the controller:' "$fleet/check2.log" \
  && grep -qE '^ +README.txt: content$' "$fleet/check2.log" || { cat "$fleet/check2.log"; fail "check mode --diff did not list the changed path"; }
play "$fleet/repair.log" -e "apim_profiles_home=$fleet/wso2am-4.2.0.zip" || { cat "$fleet/repair.log"; fail "repair run failed"; }
grep -E '^gw2 +:' "$fleet/repair.log" | grep -q 'changed=[1-9]' || fail "the edited node was not put right"
[ "$(wc -l < "$nodes/gw2/restarts.log")" = 2 ] && [ "$(wc -l < "$nodes/gw1/restarts.log")" = 1 ] || fail "restarts: only the repaired node restarts"
ok "check mode names only the edited node, its --diff lists README.txt: content, nothing written; the next run puts it right and restarts it alone"

# 4b. a change to few files (one set value of the gateways): a message naming the role's variable first,
# then with apim_profiles_force=true only the changed file moves to the gateways, unchanged files keep their
# inode and time, one restart each; a new pack zip leaves the old unzipped pack, which the role removes.
gwset='{"apim_profiles_set": {"gateway-worker": {"apim.key_manager.service_url": "https://cp.example.com:9443/services/"}}}'
old_pack=$(ls -d "$fleet"/work/pack/*/)
touch -d '2026-01-02 03:04:05' "$fleet/wso2am-4.2.0.zip"   # the next month's pack, as far as the role sees
mkdir -p "$fleet/work/dist/gateway-worker"
echo old > "$fleet/work/dist/gateway-worker/wso2am-4.2.0-0123456789abcdef.tar"   # a whole-copy tar of the old role
play "$fleet/stale.log" -e "apim_profiles_home=$fleet/wso2am-4.2.0.zip" -e "$gwset" && fail "a changed set over stale copies was accepted"
grep -q 'set apim_profiles_force=true to rebuild' "$fleet/stale.log" || { cat "$fleet/stale.log"; fail "the refusal does not name apim_profiles_force=true"; }
! grep -q -- 'pass --force' "$fleet/stale.log" || fail "the message names the CLI flag --force"
ok "a changed setting over existing copies: the message names apim_profiles_force=true, not --force"
declare -A restarts=()
for h in "${hosts[@]}"; do
  restarts[$h]=$(wc -l < "$nodes/$h/restarts.log")
  files_of "$nodes/$h/wso2am-4.2.0" > "$fleet/inodes-$h-before"
done
play "$fleet/roll.log" -e "apim_profiles_home=$fleet/wso2am-4.2.0.zip" -e "$gwset" -e apim_profiles_force=true \
  || { cat "$fleet/roll.log"; fail "the run with apim_profiles_force=true failed"; }
for h in gw1 gw2; do
  grep -E "^$h +:" "$fleet/roll.log" | grep -q 'changed=[1-9]' || { recaps "$fleet/roll.log"; fail "$h was not changed"; }
  [ "$(wc -l < "$nodes/$h/restarts.log")" = $((restarts[$h] + 1)) ] || fail "the handler did not run once on $h"
  read -r b c full < <(moved "$h")
  [ "$full" = False ] && [ "$b" -gt 0 ] && [ $((b * 20)) -lt "$c" ] || fail "$h: $b bytes moved for a copy of $c bytes (full=$full): not only the changed files"
  echo "$h roll forward: $b bytes moved, copy $c bytes"
  grep -q 'https://cp.example.com:9443/services/' "$nodes/$h/wso2am-4.2.0/repository/conf/deployment.toml" || fail "$h did not get the new deployment.toml"
  files_of "$nodes/$h/wso2am-4.2.0" > "$fleet/inodes-$h-after"
  kept "$fleet/inodes-$h-before" "$fleet/inodes-$h-after" "$h" repository/conf/deployment.toml || fail "$h: a file kept as it was lost its inode"
  node_matches_profile "$nodes/$h/wso2am-4.2.0" "${prof[$h]}" "$fleet/verify2-$h.json" || fail "$h's rolled copy is not its profile's"
done
# The other profiles' copies were rebuilt too (--force rebuilds every stale copy; the settings are recorded in
# each): the files the rebuild rewrote move, the rest keep their inode.
for h in cp1 tm1; do
  [ "$(wc -l < "$nodes/$h/restarts.log")" -le $((restarts[$h] + 1)) ] || fail "$h restarted more than once"
  read -r b c full < <(moved "$h")
  [ "$full" = False ] && [ $((b * 20)) -lt "$c" ] || fail "$h: $b bytes moved for a copy of $c bytes (full=$full)"
  echo "$h (rebuilt with the others): $b bytes moved, copy $c bytes"
  kept "$fleet/inodes-$h-before" <(files_of "$nodes/$h/wso2am-4.2.0") "$h" .apim-profiles.json || fail "$h: a file kept as it was lost its inode"
done
[ ! -e "$old_pack" ] && [ "$(ls -d "$fleet"/work/pack/*/ | wc -l)" = 1 ] || fail "the old unzipped pack was not removed: $(ls "$fleet/work/pack")"
[ -z "$(find "$fleet/work/dist" -name '*.tar*')" ] && [ ! -e "$fleet/work/dist/gateway-worker" ] || fail "archives were left: $(find "$fleet/work/dist")"
[ -z "$(find "$nodes" -name '*.apim-profiles-delta.tar' -o -name '*incoming*')" ] || fail "archives or staging left on a node"
ok "a set value changed for the gateways: only the changed files moved to gw1 and gw2, the others keep inode and time, one restart each, cp1 and tm1 (rebuilt too) only their rewritten files; old pack and archives removed"
play "$fleet/roll2.log" -e "apim_profiles_home=$fleet/wso2am-4.2.0.zip" -e "$gwset" -e apim_profiles_force=true \
  || { cat "$fleet/roll2.log"; fail "the second run after the change failed"; }
every_host "$fleet/roll2.log" 'changed=0 .*failed=0' || { recaps "$fleet/roll2.log"; fail "the second run after the change reported a change"; }
ok "second run after the change: changed=0 on every host"

# 5. unknown apim_profile: fails with the known names before anything is split
inventory "$fleet/hosts-bad" gw2=gateway-workr
"$venv/bin/ansible-playbook" -i "$fleet/hosts-bad" "$here/fleet.yml" -e "apim_profiles_binary=$bin" \
  -e "apim_profiles_work=$fleet/work-bad" -e "apim_profiles_home=$home" > "$fleet/bad-profile.log" 2>&1 \
  && fail "an unknown apim_profile was accepted"
grep -qE 'gw2: apim_profile `gateway-workr` is not a profile apim-profiles knows. Known profiles: .*gateway-worker, traffic-manager, control-plane' "$fleet/bad-profile.log" \
  || { cat "$fleet/bad-profile.log"; fail "no message naming the known profiles"; }
[ ! -e "$fleet/work-bad" ] || fail "something was split for an inventory with an unknown profile"
ok "unknown apim_profile: fails with the known names, nothing split"

# 6. bad binary
play "$fleet/bad-binary.log" -e "apim_profiles_home=$home" -e "apim_profiles_binary=$fleet/no/apim-profiles" \
  && fail "a missing binary was accepted"
grep -q "the apim-profiles binary $fleet/no/apim-profiles does not exist" "$fleet/bad-binary.log" || { cat "$fleet/bad-binary.log"; fail "no message naming the missing binary"; }
chmod 644 "$fleet/wso2am-4.2.0.zip"
play "$fleet/bad-binary2.log" -e "apim_profiles_home=$home" -e "apim_profiles_binary=$fleet/wso2am-4.2.0.zip" \
  && fail "a non-executable binary was accepted"
grep -q "is not an executable file" "$fleet/bad-binary2.log" || { cat "$fleet/bad-binary2.log"; fail "no message for a non-executable binary"; }
ok "bad binary: missing and non-executable, each with the path and what to do"

# 7. contradictory options, refused by the module in the tool's words
mod() { # LOG JSON-ARGS
  local log=$1 args=$2
  "$venv/bin/ansible-playbook" -i localhost, "$here/module.yml" -e "{\"module_args\": $args}" > "$log" 2>&1
}
mod "$fleet/contra1.log" "{\"binary\": \"$bin\", \"home\": \"$home\", \"out\": \"$fleet/x\", \"update_tool\": \"$double\"}" && fail "update_tool without update was accepted"
grep -q "the argument 'update: false' (--no-update) cannot be used with 'update_tool' (--update-tool)" "$fleet/contra1.log" || { cat "$fleet/contra1.log"; fail "no refusal of update_tool without update"; }
mod "$fleet/contra2.log" "{\"binary\": \"$bin\", \"state\": \"verify\", \"continue\": true, \"copies\": [\"$nodes/gw1/wso2am-4.2.0\"]}" && fail "continue with verify was accepted"
grep -q "the argument 'continue' (--continue) cannot be used with 'state: verify'" "$fleet/contra2.log" || { cat "$fleet/contra2.log"; fail "no refusal of continue with verify"; }
mod "$fleet/contra3.log" "{\"binary\": \"$bin\", \"home\": \"$home\", \"out\": \"$fleet/x\", \"copies\": [\"$fleet/y\"]}" && fail "copies with split was accepted"
grep -q "parameters are mutually exclusive: copies|home" "$fleet/contra3.log" || { cat "$fleet/contra3.log"; fail "no refusal of copies with split"; }
mod "$fleet/contra4.log" "{\"binary\": \"$bin\", \"home\": \"$home\", \"out\": \"$fleet/x\", \"update\": true, \"update_tool\": \"$double\", \"reflink\": \"always\", \"profiles\": [\"gateway-workr\"]}" && fail "an unknown profile was accepted"
grep -q 'unknown profile `gateway-workr`' "$fleet/contra4.log" || { cat "$fleet/contra4.log"; fail "the tool's refusal was not passed on"; }
[ ! -e "$fleet/x" ] || fail "a refused task wrote $fleet/x"
ok "contradictory options refused in the tool's words, nothing written"

# 8. state verify fails on a planted webapp, with the drift line
touch "$nodes/gw1/wso2am-4.2.0/repository/deployment/server/webapps/api#am#publisher.war"
mod "$fleet/verify.log" "{\"binary\": \"$bin\", \"state\": \"verify\", \"copies\": [\"$nodes/cp1/wso2am-4.2.0\", \"$nodes/gw1/wso2am-4.2.0\"]}" \
  && fail "verify passed with a planted webapp"
grep -q "1 of 2 copies no longer match their profiles" "$fleet/verify.log" && \
  grep -q "$nodes/gw1/wso2am-4.2.0: repository/deployment/server/webapps/api#am#publisher.war is present, but the profile removes it" "$fleet/verify.log" \
  || { cat "$fleet/verify.log"; fail "verify did not fail with the drift line"; }
ok "state verify fails on a planted webapp with its drift line"

# 8b. the role's verify (apim_profiles_verify=true): nodes checked with Python only against the controller's
# copies; the planted webapp on gw1 and an edit on tm1 that keeps size and time are named; nothing changes.
t=$nodes/tm1/wso2am-4.2.0/repository/conf/deployment.toml
cp -p "$t" "$fleet/tm1-toml"
sed -i '0,/[a-z]/s//X/' "$t" && touch -r "$fleet/tm1-toml" "$t"
snapshot > "$fleet/snap5"
play "$fleet/nodeverify.log" -e "apim_profiles_home=$fleet/wso2am-4.2.0.zip" -e apim_profiles_verify=true \
  && fail "the node verify passed over a planted webapp"
snapshot > "$fleet/snap6"
cmp -s "$fleet/snap5" "$fleet/snap6" || { diff "$fleet/snap5" "$fleet/snap6" | head; fail "the node verify wrote something"; }
grep -E '^gw1 +:' "$fleet/nodeverify.log" | grep -q 'failed=1' && grep -E '^tm1 +:' "$fleet/nodeverify.log" | grep -q 'failed=1' \
  && every_host "$fleet/nodeverify.log" 'changed=0 ' && grep -E '^cp1 +:' "$fleet/nodeverify.log" | grep -q 'failed=0' \
  || { recaps "$fleet/nodeverify.log"; fail "the node verify did not fail gw1 and tm1 alone"; }
grep -q "differs from the copy made on the controller: repository/deployment/server/webapps/api#am#publisher.war added" "$fleet/nodeverify.log" \
  && grep -q 'wso2am-4.2.0 differs from the copy made on the controller: repository/conf/deployment.toml content' "$fleet/nodeverify.log" \
  || { cat "$fleet/nodeverify.log"; fail "the node verify did not name the planted webapp and the edited file"; }
cp -p "$fleet/tm1-toml" "$t"
rm "$nodes/gw1/wso2am-4.2.0/repository/deployment/server/webapps/api#am#publisher.war"
ok "the role's verify: nodes checked with Python only; the planted webapp (gw1) and an edit keeping size and time (tm1) named, nothing changed"

# 9. settings: carry_common, set per profile and for all, overlay per profile; idempotent
"$venv/bin/ansible-playbook" -i localhost, "$here/settings.yml" -e "bin=$bin" -e "home=$home" -e "out=$fleet/settings" \
  -e "secret=Set-Secret-9x" > "$fleet/settings.log" 2>&1 || { cat "$fleet/settings.log"; fail "the settings play failed"; }
gwt=$fleet/settings/gateway-worker/wso2am-4.2.0/repository/conf/deployment.toml
tmt=$fleet/settings/traffic-manager/wso2am-4.2.0/repository/conf/deployment.toml
grep -q 'service_url = "https://cp.example.com:9443/services/"' "$gwt" || fail "set for gateway-worker did not reach its deployment.toml"
! grep -q 'cp.example.com' "$tmt" || fail "set for gateway-worker reached the traffic manager"
grep -q 'https://tm.example.com:9443/services/' "$tmt" || fail "the traffic manager's overlay did not reach it"
grep -q '^offset = 3' "$gwt" && grep -q '^offset = 3' "$tmt" || fail "set for all did not reach every profile"
grep -q 'Set-Secret-9x' "$gwt" || fail "the secret set did not reach deployment.toml"
! grep -q 'Set-Secret-9x' "$fleet/settings.log" || fail "a set secret was printed"
ok "settings: set per profile and for all, overlay per profile, carry_common; values off the command line; second run unchanged"

# 10. a pending update conflict fails every run until continued; the password is never shown
cfl=$work/conflict
mkdir -p "$cfl"
inventory "$cfl/hosts"
sed -i "s|$nodes|$cfl/nodes|g" "$cfl/hosts"
# The each order: a copy that stops on conflicts is kept for a person to resolve.
creds="{\"apim_profiles_update\": true, \"apim_profiles_update_order\": \"each\", \"apim_profiles_update_tool\": \"$double\", \"apim_profiles_credentials\": {\"username\": \"ops@example.com\", \"password\": \"$password\"}}"
cplay() { # LOG [args]
  local log=$1; shift
  APIM_DOUBLE_SCENARIO=conflicts APIM_DOUBLE_EXPECT_PASSWORD=$password \
    "$venv/bin/ansible-playbook" -vvv -i "$cfl/hosts" "$here/fleet.yml" -e "apim_profiles_binary=$bin" \
    -e "apim_profiles_work=$cfl/work" -e "apim_profiles_home=$home" -e "$creds" "$@" > "$log" 2>&1
}
for run in 1 2; do
  cplay "$cfl/run$run.log" && fail "run $run over a pending conflict succeeded"
  grep -q 'the update stopped on conflicts that a person must resolve' "$cfl/run$run.log" \
    && grep -q '/copies/gateway-worker/wso2am-4.2.0/repository/conf/deployment.toml.final"' "$cfl/run$run.log" \
    && grep -q 'run the play again with apim_profiles_continue=true' "$cfl/run$run.log" \
    || { tail -50 "$cfl/run$run.log"; fail "run $run did not explain the conflict"; }
  grep -E '^cp1 +:' "$cfl/run$run.log" | grep -q 'failed=1' || { grep -E '^(cp1|gw1|gw2|tm1) ' "$cfl/run$run.log"; fail "run $run did not fail"; }
  [ ! -e "$cfl/nodes" ] || fail "a copy waiting on conflicts was sent to a node"
  # The failure is a short message and fields: the line Ansible prints is small (it carried the whole split
  # report, 42 KB on a full home, before).
  "$venv/bin/python" - "$cfl/run$run.log" "$run" <<'PY' || fail "run $run: the conflict failure is not a short message with fields"
import json, sys
text = open(sys.argv[1]).read()
at = text.index('{', text.index('FAILED! => '))
r = json.JSONDecoder().raw_decode(text[at:])[0]
size = len(json.dumps(r))
assert 'report' not in r and 'profiles' not in r and size < 8000, (size, sorted(r))
assert r['rc'] in (2, 3) and r['pending_conflicts'][0]['files'] and len(r['msg']) < 600, r
print('run %s: the conflict failure is %d bytes (msg %d), rc %d, fields %s' % (sys.argv[2], size, len(r['msg']), r['rc'], ', '.join(sorted(r))))
PY
done
for p in control-plane gateway-worker traffic-manager; do
  c=$cfl/work/copies/$p/wso2am-4.2.0
  cp "$c/repository/conf/deployment.toml" "$c/repository/conf/deployment.toml.final"
  a=$c/repository/resources/conf/templates/repository/conf/axis2/axis2.xml.j2
  cp "$a" "$a.final"
done
cplay "$cfl/continue.log" -e apim_profiles_continue=true || { tail -60 "$cfl/continue.log"; fail "the run with continue failed"; }
every_host "$cfl/continue.log" 'changed=[1-9].* failed=0' || { grep -E '^(cp1|gw1|gw2|tm1) ' "$cfl/continue.log"; fail "continue did not roll out"; }
for h in "${hosts[@]}"; do node_matches_profile "$cfl/nodes/$h/wso2am-4.2.0" "${prof[$h]}" "$cfl/verify-$h.json" || fail "$h's updated copy is not its profile's"; done
cplay "$cfl/after.log" -e apim_profiles_continue=true || { tail -40 "$cfl/after.log"; fail "the run after continue failed"; }
every_host "$cfl/after.log" 'changed=0 .*failed=0' || { grep -E '^(cp1|gw1|gw2|tm1) ' "$cfl/after.log"; fail "the run after continue changed something"; }
ok "pending conflict: failed twice, succeeded after continue, then changed=0"

if grep -l -- "$password" "$cfl"/*.log "$fleet"/*.log; then fail "the password appears in the output above"; fi
if grep -rl -- "$password" "$cfl/work" "$cfl/nodes" 2>/dev/null; then fail "the password was written into a file above"; fi
grep -q 'ops@example.com' "$cfl/run1.log" || fail "the -vvv log shows no module arguments (the grep would prove nothing)"
ok "the password is in no -vvv output and no file"

# 11. month two: the fleet at update level 7 rolled forward to 8 with apim_profiles_update_level (the double's
# levels): every node changed with only the files the level changed moved, files the level left keep their inode
# and time, one restart each; the next run changed=0; status on the controller: every copy at 4.2.0.8.
rf=$work/rollforward
mkdir -p "$rf/stats"
inventory "$rf/hosts"
sed -i "s|$nodes|$rf/nodes|g" "$rf/hosts"
rcreds="{\"apim_profiles_update_tool\": \"$double\", \"apim_profiles_credentials\": {\"username\": \"ops@example.com\", \"password\": \"$password\"}}"
rplay() { # LOG LEVEL [args]
  local log=$1 level=$2; shift 2
  APIM_DOUBLE_LATEST_LEVEL=8 APIM_DOUBLE_EXPECT_PASSWORD=$password \
    "$venv/bin/ansible-playbook" -i "$rf/hosts" "$here/fleet.yml" -e "apim_profiles_binary=$bin" \
    -e "apim_profiles_work=$rf/work" -e "apim_profiles_home=$home" -e "fleet_stats=$rf/stats" -e "$rcreds" \
    -e "apim_profiles_update_level=$level" "$@" > "$log" 2>&1
}
rplay "$rf/at7.log" 7 || { tail -60 "$rf/at7.log"; fail "the fleet at update level 7 failed"; }
every_host "$rf/at7.log" 'changed=[1-9].* failed=0' || { recaps "$rf/at7.log"; fail "the fleet at level 7 did not change every host"; }
for h in "${hosts[@]}"; do files_of "$rf/nodes/$h/wso2am-4.2.0" > "$rf/files-$h-7"; done
rplay "$rf/at8.log" 8 || { tail -60 "$rf/at8.log"; fail "rolling the fleet forward to 8 failed"; }
every_host "$rf/at8.log" 'changed=[1-9].* failed=0' || { recaps "$rf/at8.log"; fail "rolling forward did not change every host"; }
for h in "${hosts[@]}"; do
  [ "$(wc -l < "$rf/nodes/$h/restarts.log")" = 2 ] || fail "$h: not one restart for the roll forward"
  read -r b c full < <(moved "$h" "$rf/stats")
  [ "$full" = False ] && [ "$b" -gt 0 ] && [ $((b * 20)) -lt "$c" ] || fail "$h: $b bytes moved for a copy of $c bytes (full=$full)"
  echo "$h roll forward 7 -> 8: $b bytes moved, copy $c bytes"
  files_of "$rf/nodes/$h/wso2am-4.2.0" > "$rf/files-$h-8"
  kept "$rf/files-$h-7" "$rf/files-$h-8" "$h" .apim-profiles.json || fail "$h: a file the level did not change lost its inode"
  node_matches_profile "$rf/nodes/$h/wso2am-4.2.0" "${prof[$h]}" "$rf/verify-$h.json" || fail "$h's rolled-forward copy is not its profile's"
done
rplay "$rf/again.log" 8 || { tail -40 "$rf/again.log"; fail "the run after the roll forward failed"; }
every_host "$rf/again.log" 'changed=0 .*failed=0' || { recaps "$rf/again.log"; fail "the run after the roll forward changed something"; }
"$bin" status "$rf/work/copies" --json > "$rf/status.json" || true
"$venv/bin/python" - "$rf/status.json" <<'PY' || { cat "$rf/status.json"; fail "status does not say every copy is at 4.2.0.8"; }
import json, sys
d = json.load(open(sys.argv[1]))
levels = dict((p['profile'], (p.get('update_level'), p['status'])) for p in d['profiles'])
assert levels and all(v == ('4.2.0.8', 'current') for v in levels.values()), levels
print('status: %s' % ', '.join('%s %s %s' % (k, v[0], v[1]) for k, v in sorted(levels.items())))
PY
if grep -l -- "$password" "$rf"/*.log "$rf"/*.json; then fail "the password appears in the output above"; fi
ok "month two: the fleet rolled from level 7 to 8 with apim_profiles_update_level, only changed files moved, kept files keep inode and time, one restart each; then changed=0; status: every copy at 4.2.0.8"

for log in "$fleet/check.log" "$fleet/first.log" "$fleet/second.log"; do
  echo "== $(basename "$log" .log)"; recaps "$log"
done > "$work/recaps"
cat "$work/recaps"
echo "$passed" > "$work/fleet-passed"
