#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, apim-profiles developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: apim_profiles
short_description: Split, update and verify optimized per-profile copies of a WSO2 API Manager home
version_added: "1.0.0"
description:
  - Runs the C(apim-profiles) command line tool on the managed host and returns its JSON report.
  - C(state=split) makes one optimized copy of O(home) per profile under O(out) (C(<out>/<profile>/<home name>)),
    optionally running the WSO2 U2 update in each copy. Idempotent - copies made from the same inputs are left
    alone and the task reports C(changed=false).
  - C(state=update) runs the U2 update (and re-optimization) in existing O(copies); with O(continue=true) it
    resumes an update that stopped on conflicts after a person saved each resolved file as C(<file>.final).
  - C(state=verify) checks that O(copies) still match their profiles and fails with the drift lines when not.
  - C(state=profiles) lists the profiles the tool knows (read-only).
  - An update that stopped on conflicts fails the task on every run (split, update or a check-mode run)
    until it is continued; the message says what to do, and RV(pending_conflicts) names each conflicting file
    and where to save its resolution. Where a copy stands is asked of C(apim-profiles status --json), never
    read from the tool's own files.
  - The WSO2 account password is never put on a command line, in an environment variable or in a file by this
    module - it reaches C(apim-profiles) as the lines of its standard input (C(--credentials-file -)), through
    a pipe filled before the tool starts, so nothing holding it is left behind even if the module is killed.
  - Values of O(set) are handed over as files that have no name on disk (an in-memory file the tool inherits,
    named C(/proc/self/fd/N)), never on a command line.
author:
  - apim-profiles developers (@apim-profiles)
requirements:
  - the C(apim-profiles) binary on the managed host (see O(binary))
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: C(split) runs with C(--dry-run) and writes nothing; C(verify) and C(profiles) only read;
      C(update) is not run (the update tool cannot preview) and the task reports the copies it would update.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: For C(split), per profile, the labelled before (source home) and after (copy) of every file
      whose content changes, with secret values masked, and the entries the profile removes. Shown in check
      mode and in a real run.
options:
  state:
    description: What to do.
    type: str
    choices: [split, update, verify, profiles]
    default: split
  binary:
    description:
      - The apim-profiles executable on the managed host, a path or a name looked up on E(PATH).
    type: path
    default: apim-profiles
  home:
    description:
      - The unzipped API-M home to split (never modified). Required for O(state=split).
    type: path
  out:
    description:
      - Where the copies go, as C(<out>/<profile>/<home name>). Required for O(state=split).
    type: path
  copies:
    description:
      - The copies to update or verify (paths made by a split, C(<out>/<profile>/<home name>)).
      - Required for O(state=update) and O(state=verify); refused with O(state=split).
    type: list
    elements: path
  profiles:
    description:
      - Profiles to make (C(--profiles)). The tool's default is control-plane, gateway-worker, traffic-manager;
        C(api-key-manager-deprecated) is available by name.
    type: list
    elements: str
  update:
    description:
      - With O(state=split), run the U2 update in each copy, then optimize it again and verify it.
      - When false the split runs with C(--no-update), and the update options are refused.
    type: bool
    default: false
  continue:
    description:
      - With O(state=update), resume after conflicts were resolved (C(update --continue)).
    type: bool
    default: false
  credentials:
    description:
      - The WSO2 account for the update. Handed to the tool on its standard input (C(--credentials-file -));
        never on a command line, never in a file.
      - Without it the tool reads E(WSO2_USERNAME)/E(WSO2_PASSWORD) from its environment, if set.
    type: dict
    suboptions:
      username:
        description: The WSO2 account (email).
        type: str
        required: true
      password:
        description: Its password. Never logged.
        type: str
        required: true
  update_tool:
    description: An update tool to place in each copy's C(bin/) when the home has none (C(--update-tool)).
    type: path
  update_zip:
    description: Apply this update archive instead of downloading (C(--update-zip)); needs no account.
    type: path
  update_level:
    description:
      - Update to this level (for example C(4.2.0.5), or C(7) for C(4.2.0.7)) instead of the latest
        (C(--update-level)); V(latest) is the latest (the tool's default when the update runs).
      - Copies at a lower level are rolled forward to it.
    type: str
  update_timeout:
    description: Seconds one update run may take before it is stopped (C(--update-timeout), tool default 3600).
    type: int
  update_jobs:
    description: How many update runs at once (C(--update-jobs), tool default 1; they share C(~/.wso2-updates)).
    type: int
  update_order:
    description:
      - With O(state=split), the order of the update. V(once) updates a staging copy of the home once and makes
        every copy from it (C(--update-once), the tool's default with one home); V(each) makes each copy, then
        updates it (C(--update-each)), so that conflicts stop that copy only and are resolved per copy.
      - Both orders give the same copies.
    type: str
    choices: [once, each]
  jobs:
    description: Threads for copying (C(--jobs), tool default one per core).
    type: int
  reflink:
    description: Clone file extents instead of copying bytes (C(--reflink)).
    type: str
    choices: [auto, always, never]
  profile_dir:
    description: Use profile definitions from C(<profile_dir>/<version>/*.toml) instead of the built-in ones.
    type: path
  archive:
    description: Also write a pack-shaped archive of each copy, C(<out>/<profile>/<home name>.zip) or C(.tar.gz).
    type: str
    choices: [zip, tar.gz]
  force:
    description: Replace copies that are stale (made from other inputs).
    type: bool
    default: false
  skip_config_optimization:
    description: Keep the home's own C(deployment.toml) (the product's C(--skipConfigOptimization)).
    type: bool
    default: false
  carry:
    description:
      - Tables or dotted keys (C(super_admin), C(keystore.tls), C(database.shared_db)) taken from the home's own
        C(deployment.toml) into every profile's (C(--carry)).
    type: list
    elements: str
  carry_common:
    description:
      - Carry the settings every profile shares with the home (C(--carry-common)) - super_admin, user_store,
        database.shared_db, keystore.tls, truststore, where the home sets them.
    type: bool
    default: false
  set:
    description:
      - Keys to set in C(deployment.toml), per profile. Each key of this dictionary is a profile name, or C(all)
        for every profile; its value is a dictionary of dotted keys to values.
      - Values are YAML values written as TOML (a string as a TOML string, a number, a boolean, a list, a
        dictionary as an inline table). Applied after O(carry) and O(overlay), as the tool's C(--set).
      - Handed to the tool as an in-memory file it inherits, so a secret set here never shows on a command line
        and is never written to a file by this module.
      - Written as TOML by this module - Python has no TOML writer in its standard library (C(tomllib) only
        reads) and the module needs nothing but Python on the host; the writer emits only C(key = value)
        lines, and the tool parses them strictly.
      - Marked no_log - never logged; in what the task returns (at -vvv, in a registered result) the values of
        secret keys (password, secret, key, token, ..., anything under secrets) and passwords inside URLs are
        hidden, other values show.
    type: dict
  overlay:
    description:
      - TOML files merged key by key into C(deployment.toml) (C(--overlay)), per profile. Each key is a profile
        name, or C(all) for every profile; its value is a path or a list of paths on the managed host.
    type: dict
  variable_prefix:
    description:
      - The tool's messages name its command-line flags (C(pass --force)); this module names the option
        instead (C(force=true) written as a task option). With a prefix, the option is named as the variable
        C(<prefix><option>=<value>) - the C(distribute) role passes C(apim_profiles_), so its messages say
        C(apim_profiles_force=true), and a pending conflict says to run the play again with
        C(apim_profiles_continue=true).
    type: str
notes:
  - Exit codes of the tool map to results - 0 ok, 1 failed (RV(failed)), 2 refused (the tool's message and hint,
    RV(causes)), 3 conflicts (failed, RV(pending_conflicts)), 4 drift (failed, RV(drift)); a failure's message
    is short and RV(rc) is the tool's exit code; copies that are stale are listed in RV(stale) with the reasons.
  - What each state requires and what never goes together is in the argument spec (C(required_if),
    C(mutually_exclusive)); an option given for a state it does not belong to (for example O(continue) without
    O(state=update)), or an update option with O(update=false), is refused before the tool runs.
'''

EXAMPLES = r'''
- name: Split the pack into the three distributed profiles, updated
  apim_profiles.fleet.apim_profiles:
    home: /opt/wso2am-4.2.0
    out: /opt/nodes
    profiles: [control-plane, gateway-worker, traffic-manager]
    update: true
    credentials:
      username: "{{ wso2_username }}"
      password: "{{ wso2_password }}"
    carry_common: true
    set:
      gateway-worker:
        apim.key_manager.service_url: "https://cp.example.com:9443/services/"
      all:
        server.offset: 0
    overlay:
      traffic-manager: /etc/apim/tm-hosts.toml

- name: Resume the update after the conflicts were resolved (each saved as <file>.final)
  apim_profiles.fleet.apim_profiles:
    state: update
    continue: true
    copies:
      - /opt/nodes/gateway-worker/wso2am-4.2.0
    credentials:
      username: "{{ wso2_username }}"
      password: "{{ wso2_password }}"

- name: Check that the copies still match their profiles
  apim_profiles.fleet.apim_profiles:
    state: verify
    copies: "{{ ['control-plane', 'gateway-worker'] | map('regex_replace', '^(.*)$', '/opt/nodes/\\1/wso2am-4.2.0') | list }}"
'''

RETURN = r'''
changed:
  description: Whether the run changed anything on disk (in check mode - whether a real run would).
  type: bool
  returned: always
cmd:
  description: The command that ran (the set files named C(/proc/self/fd/N), the credentials C(-); no secret).
  type: list
  elements: str
  returned: when the tool ran
rc:
  description: The tool's exit code (on a failure, the exit code of the run that failed).
  type: int
  returned: when the tool ran
profiles:
  description: One entry per profile or copy, as the tool reports it.
  type: list
  elements: dict
  returned: when the task succeeds
  contains:
    profile:
      description: The profile name.
      type: str
      sample: gateway-worker
    path:
      description: The copy.
      type: str
      sample: /opt/nodes/gateway-worker/wso2am-4.2.0
    status:
      description:
        - C(created), C(replaced), C(current), C(conflicts), C(failed); check mode C(would-create), C(would-replace);
          update C(updated); verify C(verified), C(drifted), C(unverifiable).
      type: str
    changed:
      description: Whether this copy changed.
      type: bool
    entries_kept:
      description: Entries of the copy.
      type: int
    entries_removed:
      description: Entries the profile removes (a directory counts with everything below it).
      type: int
    removed:
      description: Each removed entry and the step that removed it.
      type: list
      elements: dict
      contains:
        path:
          description: Relative to the copy.
          type: str
        step:
          description: The profile step.
          type: str
        dir:
          description: Whether it is a directory.
          type: bool
        entries:
          description: Entries it counts.
          type: int
        bytes:
          description: Bytes it held.
          type: int
    rewritten:
      description: Files whose content the profile replaces.
      type: list
      elements: str
    backups:
      description: Backups made of the replaced files.
      type: list
      elements: dict
      contains:
        from:
          description: The replaced file.
          type: str
        to:
          description: Its backup.
          type: str
    notes:
      description: Things the operator should hear.
      type: list
      elements: str
    settings:
      description: Check mode - the keys of deployment.toml added, changed and removed (secret values masked).
      type: list
      elements: str
    diff:
      description: Check mode - unified diff of every changed file, secret values masked.
      type: str
    files_copied:
      description: Files copied.
      type: int
    bytes_copied:
      description: Bytes copied.
      type: int
    files_cloned:
      description: Files cloned (reflink).
      type: int
    bytes_to_copy:
      description: Bytes the copy needs.
      type: int
    archive:
      description: The archive written with O(archive).
      type: str
    drift:
      description: >-
        Verify - each difference (at most 20), as apim-profiles reports it - C(change) (added, removed, changed,
        profile), C(path), and C(kind), C(what) or C(message).
      type: list
      elements: dict
    error:
      description: What failed for this profile.
      type: str
    update:
      description: The update step.
      type: dict
      contains:
        status:
          description: C(updated), C(conflicts), C(failed), C(reverted), C(timed-out), C(interrupted).
          type: str
        tool_exit_code:
          description: The update tool's exit code.
          type: int
        runs:
          description: Runs of the tool.
          type: int
        self_updates:
          description: Times the tool updated itself.
          type: int
        added:
          description: Files the update added.
          type: list
          elements: str
        modified:
          description: Files the update modified.
          type: list
          elements: str
        removed:
          description: Files the update removed.
          type: list
          elements: str
        conflicts:
          description: Files in conflict.
          type: list
          elements: str
        reoptimized:
          description: What re-optimization fixed.
          type: list
          elements: str
        logs:
          description: Where the tool's logs are.
          type: str
        message:
          description: The tool's message.
          type: str
        duration_ms:
          description: Time taken.
          type: int
    duration_ms:
      description: Time taken for this profile.
      type: int
pending_conflicts:
  description: Copies whose update waits on conflicts, each with the files to resolve (as C(apim-profiles status)
    or the run's report says).
  type: list
  elements: dict
  returned: when an update waits on conflicts (the task fails)
  contains:
    copy:
      description: The copy.
      type: str
    profile:
      description: Its profile.
      type: str
    files:
      description: The conflicting files, relative to the copy.
      type: list
      elements: str
    save_as:
      description: Where the resolution of each file goes (C(<copy>/<file>.final)), in the order of RV(pending_conflicts[].files).
      type: list
      elements: str
stale:
  description: Copies made from other inputs than the task's, each with why (as C(apim-profiles status) says).
  type: list
  elements: dict
  returned: when the task fails and copies are stale
  contains:
    copy:
      description: The copy.
      type: str
    profile:
      description: Its profile.
      type: str
    reasons:
      description: Why it is stale, one line each.
      type: list
      elements: str
causes:
  description: The causes the tool gave for a refusal or failure.
  type: list
  elements: str
  returned: when the tool refused with causes
failed:
  description: Copies whose run failed, each with C(profile), C(path) and C(error).
  type: list
  elements: dict
  returned: when the tool failed (exit 1)
drifted:
  description: "Verify - the copies that no longer match their profiles."
  type: list
  elements: str
  returned: when O(state=verify) fails on drift
unverifiable:
  description: "Verify - copies their records cannot prove, each with C(copy) and C(reason)."
  type: list
  elements: dict
  returned: when O(state=verify) fails so
drift:
  description: "Verify - one line per difference, C(<copy>: <difference>)."
  type: list
  elements: str
  returned: when O(state=verify)
known_profiles:
  description: O(state=profiles) - the profile names this build knows (all versions).
  type: list
  elements: str
  returned: when O(state=profiles)
report:
  description: The whole JSON document the tool printed.
  type: dict
  returned: when the task succeeds (a failure returns a short message and the fields above, not the report)
  contains:
    command:
      description: The tool's command.
      type: str
    changed:
      description: The tool's changed.
      type: bool
    dry_run:
      description: Whether it was a dry run.
      type: bool
    home:
      description: The home (split).
      type: str
    product:
      description: The product (C(wso2am)).
      type: str
    version:
      description: The product version.
      type: str
    out:
      description: The output directory (split).
      type: str
    profiles:
      description: As RV(profiles).
      type: list
      elements: dict
    warnings:
      description: The tool's warnings.
      type: list
      elements: str
    duration_ms:
      description: Time taken.
      type: int
'''

import json
import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six import string_types

UPDATE_OPTIONS = ('update_tool', 'update_zip', 'update_level', 'update_timeout', 'update_jobs', 'credentials')
SPLIT_ONLY = ('home', 'out', 'profiles', 'carry', 'set', 'overlay', 'archive', 'jobs', 'reflink', 'update_order',
              'force', 'skip_config_optimization', 'carry_common', 'update')
# The states each option belongs to. argument_spec says what each state requires and which options exclude each
# other (required_if, mutually_exclusive); that an option is given for a state it does not belong to is a rule of
# presence under a value, which argument_spec has no word for: it is this table, checked before the tool runs.
STATES_OF = dict([(o, ('split',)) for o in SPLIT_ONLY] + [(o, ('split', 'update')) for o in UPDATE_OPTIONS]
                 + [('continue', ('update',)), ('copies', ('update', 'verify'))])
CLI_FLAG = {
    'home': 'HOME', 'out': '--out', 'profiles': '--profiles', 'carry': '--carry', 'set': '--set',
    'overlay': '--overlay', 'archive': '--archive', 'jobs': '--jobs', 'reflink': '--reflink',
    'force': '--force', 'skip_config_optimization': '--skip-config-optimization',
    'carry_common': '--carry-common', 'update': '--no-update', 'continue': '--continue',
    'copies': 'COPY', 'update_tool': '--update-tool', 'update_zip': '--update-zip',
    'update_level': '--update-level', 'update_timeout': '--update-timeout', 'update_jobs': '--update-jobs',
    'credentials': '--credentials-file', 'update_order': '--update-once/--update-each',
}
BARE_KEY = re.compile(r'^[A-Za-z0-9_-]+$')
# The tool's flags that name a module option: (option, value), None for a flag that takes the value after it.
FLAG_OPTION = (
    ('--force', 'force', 'true'), ('--no-update', 'update', 'false'), ('--continue', 'continue', 'true'),
    ('--update-level', 'update_level', None), ('--update-tool', 'update_tool', None),
    ('--update-zip', 'update_zip', None), ('--update-timeout', 'update_timeout', None),
    ('--update-jobs', 'update_jobs', None), ('--credentials-file', 'credentials', None),
    ('--update-once', 'update_order', 'once'), ('--update-each', 'update_order', 'each'),
    ('--carry-common', 'carry_common', 'true'), ('--skip-config-optimization', 'skip_config_optimization', 'true'),
    ('--profiles', 'profiles', None), ('--profile-dir', 'profile_dir', None), ('--archive', 'archive', None),
    ('--reflink', 'reflink', None), ('--jobs', 'jobs', None), ('--carry', 'carry', None), ('--set', 'set', None),
    ('--overlay', 'overlay', None),
)
# How messages name options: None (as module options, `force: true`) or a variable prefix (`apim_profiles_`).
NAMES = {'prefix': None}


def option_named(option, value=None):
    name = (NAMES['prefix'] or '') + option
    if value is None:
        return name
    return '%s=%s' % (name, value) if NAMES['prefix'] else '%s: %s' % (name, value)


def flag_re(flag):
    return r'(?<![\w-])%s(?![\w-])' % re.escape(flag)


def in_our_words(text):
    """The tool's message with each flag named as the module option (or the role's variable) it stands for:
    with its value where the message says what to do (a `hint:` line, `pass --force`, `with --force`),
    by name where it only names the setting (`made with other options (the settings of --carry, --set)`)."""
    if not text:
        return text
    return '\n'.join(line_in_our_words(line) for line in text.split('\n'))


def line_in_our_words(line):
    advice = line.startswith('hint:')
    line = re.sub(r'\bpass (?=--)', 'set ', line)
    line = re.sub(r'run the same command with (?=--)', 'run again with ', line)
    line = re.sub(r'(?:apim-profiles )?split (?:\.\.\. )?(?=--force\b)', '', line)
    line = re.sub(flag_re('--dry-run'), 'run in check mode (--check)', line)
    for flag, option, value in FLAG_OPTION:
        if value is None and advice:
            line = re.sub(flag_re(flag) + r'[ =]([^\s,;)]+)', lambda m, o=option: option_named(o, m.group(1)), line)
        elif value is not None and (advice or flag == '--force'):
            # Outside a hint, --force is named with its value where it is advice (set, with).
            pattern = flag_re(flag) if advice else r'(?:(?<=set )|(?<=with )|(?<=it: ))' + flag_re(flag)
            line = re.sub(pattern, option_named(option, value), line)
        line = re.sub(flag_re(flag), option_named(option), line)
    return line


def refuse(module, what, hint):
    """The tool's way of refusing: what is wrong, then what to do."""
    module.fail_json(msg='%s\nhint: %s' % (what, hint), rc=2)


def is_set(params, name):
    value = params.get(name)
    return value not in (None, False, [], {}, '')


def check_states(module, params):
    """Options given for a state they do not belong to, and update options without the update, refused in the
    tool's words (what argument_spec's required_if and mutually_exclusive cannot say; see STATES_OF)."""
    state = params['state']
    for name in sorted(STATES_OF):
        if is_set(params, name) and state not in STATES_OF[name]:
            if name == 'continue':
                refuse(module, "the argument 'continue' (--continue) cannot be used with 'state: %s'" % state,
                       'resume an update that stopped on conflicts with state: update, continue: true')
            refuse(module, "the argument '%s' (%s) cannot be used with 'state: %s'" % (name, CLI_FLAG[name], state),
                   'drop %s; it belongs to state: %s' % (name, ' or '.join(STATES_OF[name])))
    if state == 'split' and not params['update']:
        for name in UPDATE_OPTIONS + ('update_order',):
            if is_set(params, name):
                refuse(module, "the argument 'update: false' (--no-update) cannot be used with '%s' (%s)"
                       % (name, CLI_FLAG[name]), 'set update: true to run the update, or drop %s' % name)


def find_binary(module, binary):
    if os.sep not in binary:
        found = module.get_bin_path(binary)
        if not found:
            module.fail_json(msg='the apim-profiles binary %s was not found on PATH of this host\nhint: install '
                             'apim-profiles here (cargo install --path ., or the release archive), or set binary: '
                             'to its full path' % binary, rc=2)
        return found
    if not os.path.exists(binary):
        module.fail_json(msg='the apim-profiles binary %s does not exist on this host\nhint: install apim-profiles '
                         'there, or set binary: to the path of the executable' % binary, rc=2)
    if os.path.isdir(binary) or not os.access(binary, os.X_OK):
        module.fail_json(msg='the apim-profiles binary %s is not an executable file\nhint: make it executable '
                         '(chmod 755 %s), or set binary: to the apim-profiles executable' % (binary, binary), rc=2)
    return binary


def toml_string(s):
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == '\\':
            out.append('\\\\')
        elif ch == '\n':
            out.append('\\n')
        elif ch == '\t':
            out.append('\\t')
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append('\\u%04x' % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return ''.join(out)


def toml_key(key):
    return '.'.join(part if BARE_KEY.match(part) else toml_string(part) for part in key.split('.'))


def toml_value(value, where):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, string_types):
        return toml_string(value)
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(toml_value(v, where) for v in value) + ']'
    if isinstance(value, dict):
        return '{' + ', '.join('%s = %s' % (toml_key(str(k)), toml_value(v, where)) for k, v in value.items()) + '}'
    raise ValueError('set %s: a %s value cannot be written as TOML' % (where, type(value).__name__))


SECRET_WORDS = ('password', 'passwd', 'pwd', 'pass', 'passphrase', 'secret', 'secrets', 'token', 'key', 'apikey',
                'credential', 'credentials', 'privatekey')
URL_SECRETS = (
    re.compile(r'://[^:/@\s"\']+:([^@/\s"\']+)@'),
    re.compile(r'(?i)[?&;](?:password|passwd|pwd|pass|secret|token|apikey|api_key|access_token|client_secret)='
               r'([^&;#\s"\'<)]+)'),
    re.compile(r'(?i)jdbc:oracle:[a-z0-9]+:[^/@\s"\']*/([^\s"\']+)@'),
)


def is_secret_key(key):
    """The tool's policy (src/model/secret.rs): keys under [secrets], and names with a secret word."""
    parts = [p.strip('"\' ') for p in key.split('.')]
    if parts[0].lower() == 'secrets' and len(parts) > 1:
        return True
    last = parts[-1]
    if any(w in last.lower() for w in ('password', 'secret', 'passphrase', 'credential')):
        return True
    words = re.findall(r'[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])', last)
    return any(w.lower() in SECRET_WORDS for w in words)


def leaves(value):
    """Every scalar below a value, as the text Ansible compares with its no_log values."""
    if isinstance(value, dict):
        for v in value.values():
            for leaf in leaves(v):
                yield leaf
    elif isinstance(value, (list, tuple)):
        for v in value:
            for leaf in leaves(v):
                yield leaf
    elif value is not None and not isinstance(value, bool) and str(value):
        yield str(value)


def set_secrets(value):
    """The secrets among set: values of secret keys, and passwords inside URLs of any key."""
    for keys in (value or {}).values():
        for key, v in (keys.items() if isinstance(keys, dict) else ()):
            if is_secret_key(str(key)):
                for leaf in leaves(v):
                    yield leaf
            for leaf in leaves(v):
                for pattern in URL_SECRETS:
                    for m in pattern.finditer(leaf):
                        yield m.group(1)


def protect_secrets(module):
    """set is no_log as a whole, so that Ansible's own logging never shows it; in what the module returns
    (the invocation included, which -vvv prints and register keeps) only its secrets are hidden, since
    hiding every value (a port, true) would garble every number and word of the result that matches one."""
    value = module.params.get('set')
    everything = set(leaves(value))
    keep = set(v for v in module.no_log_values if v not in everything)
    creds = module.params.get('credentials') or {}
    if creds.get('password'):
        keep.add(creds['password'])
    module.no_log_values = keep | set(s for s in set_secrets(value) if s)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def anonymous_file(module):
    """A readable and writable file with no name on disk: an in-memory file (memfd_create), else a file made with
    O_TMPFILE, else one unlinked before anything is written to it; so a kill of this module at any moment leaves
    nothing of what it holds behind."""
    if hasattr(os, 'memfd_create'):
        try:
            return os.memfd_create('apim-profiles', getattr(os, 'MFD_CLOEXEC', 0))
        except OSError:
            pass
    if hasattr(os, 'O_TMPFILE'):
        try:
            return os.open(module.tmpdir, os.O_TMPFILE | os.O_RDWR | getattr(os, 'O_CLOEXEC', 0), 0o600)
        except OSError:
            pass
    fd, path = tempfile.mkstemp(prefix='apim-profiles-', dir=module.tmpdir)
    os.unlink(path)
    return fd


class Handover(object):
    """How values that may be secret reach apim-profiles without a command line and without a file on disk:
    the credentials as the lines of its standard input (`--credentials-file -`), through a pipe filled before the
    tool starts; the set values as anonymous files (see anonymous_file) it inherits, named /proc/self/fd/N."""

    def __init__(self, module):
        self.module = module
        self.fds = []
        self.stdin = None

    def file(self, text):
        fd = anonymous_file(self.module)
        self.fds.append(fd)
        write_all(fd, text.encode('utf-8'))
        return '/proc/self/fd/%d' % fd

    def credentials(self, creds):
        self.stdin = ('username=%s\npassword=%s\n' % (creds['username'], creds['password'])).encode('utf-8')
        return ['--credentials-file', '-']

    def run(self, cmd):
        """run_command with the set files passed down and, when cmd reads its credentials from standard input,
        a pipe that holds them (written and closed before the tool starts, so it never waits and never blocks
        this module) as its standard input."""
        saved = None
        if self.stdin is not None and '-' in cmd and cmd[cmd.index('-') - 1] == '--credentials-file':
            r, w = os.pipe()
            try:
                write_all(w, self.stdin)
            finally:
                os.close(w)
            saved = os.dup(0)
            os.dup2(r, 0)
            os.close(r)
        try:
            return self.module.run_command(cmd, pass_fds=self.fds)
        finally:
            if saved is not None:
                os.dup2(saved, 0)
                os.close(saved)

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.stdin = None


def per_profile(module, params, name):
    value = params.get(name) or {}
    for profile in value:
        if not isinstance(profile, string_types) or not profile:
            refuse(module, '%s: %r is not a profile name' % (name, profile),
                   'use a profile name (gateway-worker) or all as each key of %s' % name)
    return value


def set_overlay(module, profile, keys):
    """The TOML text of one profile's set values (see toml_value for why it is written here)."""
    if not isinstance(keys, dict):
        refuse(module, 'set: %s: expected a dictionary of dotted keys to values' % profile,
               'write set: {%s: {apim.key_manager.service_url: "https://..."}}' % profile)
    lines = []
    for key, value in keys.items():
        key = str(key)
        if not key or any(not part for part in key.split('.')):
            refuse(module, 'set: %s: `%s` is not a dotted key' % (profile, key),
                   'write keys as in deployment.toml: table.key or table.sub.key')
        try:
            lines.append('%s = %s' % (toml_key(key), toml_value(value, '%s.%s' % (profile, key))))
        except ValueError as e:
            refuse(module, str(e), 'give a string, number, boolean, list or dictionary')
    return '\n'.join(lines) + '\n'


def settings_args(module, params, handover):
    args = []
    for item in params.get('carry') or []:
        args += ['--carry', item]
    if params['carry_common']:
        args.append('--carry-common')
    for profile, files in per_profile(module, params, 'overlay').items():
        for f in [files] if isinstance(files, string_types) else files or []:
            f = os.path.expanduser(str(f))
            args += ['--overlay', f if profile == 'all' else '%s=%s' % (profile, f)]
    # Sets go last as overlay files (the tool applies overlays in order, so they still win over
    # the user's overlays, as --set does); their values never reach a command line or a file on disk.
    for profile, keys in per_profile(module, params, 'set').items():
        path = handover.file(set_overlay(module, profile, keys))
        args += ['--overlay', path if profile == 'all' else '%s=%s' % (profile, path)]
    return args


def update_args(params, handover):
    args = []
    if params.get('update_tool'):
        args += ['--update-tool', params['update_tool']]
    if params.get('update_zip'):
        args += ['--update-zip', params['update_zip']]
    # latest is the tool's default when the update runs.
    if params.get('update_level') and params['update_level'] != 'latest':
        args += ['--update-level', params['update_level']]
    if params.get('update_timeout') is not None:
        args += ['--update-timeout', str(params['update_timeout'])]
    if params.get('update_jobs') is not None:
        args += ['--update-jobs', str(params['update_jobs'])]
    if params.get('credentials'):
        args += handover.credentials(params['credentials'])
    return args


def check_credentials(module, params):
    creds = params.get('credentials')
    if not creds:
        return
    for name in ('username', 'password'):
        value = creds.get(name) or ''
        if not value or '\n' in value or '\r' in value or value != value.strip() or value.startswith('"') \
                or value.endswith('"') or len(value) > 4096:
            refuse(module, 'credentials: the %s is empty, longer than 4096 characters, spans lines, or starts or '
                   'ends with a space or a quote' % name,
                   'give the WSO2 account and password as one line each, without surrounding spaces')


def split_command(module, params, handover, dry_run):
    cmd = [params['binary'], 'split', params['home'], '--out', params['out'], '--json']
    if params.get('profiles'):
        cmd += ['--profiles', ','.join(params['profiles'])]
    if params['skip_config_optimization']:
        cmd.append('--skip-config-optimization')
    if params['force']:
        cmd.append('--force')
    if params.get('archive'):
        cmd += ['--archive', params['archive']]
    if params.get('jobs') is not None:
        cmd += ['--jobs', str(params['jobs'])]
    if params.get('reflink'):
        cmd += ['--reflink', params['reflink']]
    cmd += settings_args(module, params, handover)
    cmd += update_args(params, handover) if params['update'] else ['--no-update']
    if params['update'] and params.get('update_order'):
        cmd.append('--update-%s' % params['update_order'])
    if dry_run:
        cmd.append('--dry-run')
    return cmd


def common_args(params):
    return ['--profile-dir', params['profile_dir']] if params.get('profile_dir') else []


class Run(object):
    """What one module run knows: the module, its options, the handover, and where its copies are (for the
    structured fields of a failure)."""

    def __init__(self, module, params, handover):
        self.module, self.params, self.handover = module, params, handover

    def tool(self, cmd):
        """The tool's JSON document and exit code; a refusal or failure document fails the task (see fail)."""
        rc, stdout, stderr = self.handover.run(cmd)
        try:
            report = json.loads(stdout)
        except ValueError:
            report = None
        if not isinstance(report, dict):
            lines = [line for line in stderr.splitlines() if line.strip()]
            msg = in_our_words('\n'.join(lines[:3])) or 'apim-profiles printed no JSON (exit %d)' % rc
            self.module.fail_json(msg=msg, rc=rc, cmd=cmd, stderr=stderr[-4000:])
        if rc != 0 and 'error' in report:
            self.refused(report, rc, cmd)
        return rc, report

    def refused(self, doc, rc, cmd, **fields):
        """A refusal or failure document: its error and hint are the message, in this module's words; its causes
        and where the copies stand (stale and why, conflicts and their files) are fields of their own."""
        msg = in_our_words(doc.get('error') or 'apim-profiles failed (exit %d)' % rc)
        if doc.get('hint'):
            msg += '\nhint: %s' % in_our_words(doc['hint'])
        causes = [in_our_words(c) for c in doc.get('causes') or []]
        if causes:
            fields['causes'] = causes
        if self.params['state'] == 'split' and rc == 2 and re.search(r'\bstale\b', doc.get('error') or ''):
            fields['stale'] = self.stale_reasons()
        self.fail(msg, rc, cmd, **fields)

    def stale_reasons(self):
        """Each stale copy of a refused split and every reason, which only split can tell (status does not know
        the options a copy was made with): from the dry run that --force would make, which writes nothing."""
        cmd = split_command(self.module, self.params, self.handover, True) + common_args(self.params)
        cmd += [] if '--force' in cmd else ['--force']
        rc, stdout, stderr = self.handover.run(cmd)
        try:
            doc = json.loads(stdout)
        except ValueError:
            return []
        stale = []
        for p in doc.get('profiles') or [] if isinstance(doc, dict) else []:
            reason = p.get('reason') or ''
            if p.get('status') == 'would-replace' and reason.startswith('stale: '):
                stale.append(dict(copy=p.get('path'), profile=p.get('profile'),
                                  reasons=[in_our_words(r) for r in reason[len('stale: '):].split('; ')]))
        return stale

    def fail(self, msg, rc, cmd, **fields):
        """A failure: a short message, the exit code, and what stands in the way as fields (never the tool's
        whole report, which Ansible would print on one line)."""
        fields.update(self.standing(fields))
        self.module.fail_json(msg=msg, rc=rc, cmd=cmd, **fields)

    def standing(self, fields):
        """stale and pending_conflicts of the copies this run is about, as `apim-profiles status` says (where
        fields has none yet)."""
        pending = fields.get('pending_conflicts')
        states = self.states(self.paths())
        stale = [dict(copy=c, profile=s.get('profile'), reasons=[in_our_words(r) for r in s.get('reasons') or []])
                 for c, s in states.items() if s and s.get('status') == 'stale']
        found = {}
        if not pending:
            found['pending_conflicts'] = pending_of(states)
        if stale and 'stale' not in fields:
            found['stale'] = stale
        return dict((k, v) for k, v in found.items() if v)

    def paths(self):
        p = self.params
        if p['state'] == 'split':
            return [p['out']] if os.path.isdir(p['out']) else []
        return list(p.get('copies') or [])

    def states(self, paths):
        """Each copy's line of `apim-profiles status --json` by path (None for a path that holds none): one call
        for them all, or one per path where that one is refused (a path that is not a copy)."""
        if not paths:
            return {}
        cmd = [self.params['binary'], 'status'] + list(paths) + ['--json'] + common_args(self.params)
        rc, stdout, stderr = self.module.run_command(cmd)
        try:
            doc = json.loads(stdout)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get('profiles'), list) and 'error' not in doc:
            return dict((p.get('path'), p) for p in doc['profiles'])
        if len(paths) == 1:
            return {os.path.abspath(paths[0]): None}
        found = {}
        for path in paths:
            found.update(self.states([path]))
        return found


def pending_of(states):
    """Copies whose last update waits on conflicts, each with its files and where each resolution goes."""
    pending = []
    for copy, s in sorted(states.items()):
        if s and s.get('status') == 'conflicts':
            pending.append(conflict_entry(copy, s.get('profile'), s.get('conflicts') or []))
    return pending


def conflict_entry(copy, profile, files):
    return dict(copy=copy, profile=profile, files=list(files),
                save_as=[os.path.join(copy, f) + '.final' for f in files])


def conflict_message(pending):
    """Short: which copies wait, how many files, and what to do (the files are in pending_conflicts)."""
    what = ', '.join('%s (%d file%s)' % (p['copy'], len(p['files']), '' if len(p['files']) == 1 else 's')
                     for p in pending)
    if NAMES['prefix']:
        todo = 'run the play again with %s (and the same credentials)' % option_named('continue', 'true')
    else:
        todo = 'run this task with state: update, continue: true on these copies (and the same credentials)'
    return ('the update stopped on conflicts that a person must resolve (it stays failed until continued): %s\n'
            'hint: save each resolved file as <file>.final (pending_conflicts lists them), then %s' % (what, todo))


def failed_copies(profiles):
    return [dict(profile=p.get('profile'), path=p.get('path'), error=in_our_words(p.get('error') or 'failed'))
            for p in profiles if p.get('status') == 'failed']


def failure_message(failed, rc):
    if not failed:
        return 'apim-profiles failed (exit %d)' % rc
    first = failed[0]
    more = ' (and %d more: see failed)' % (len(failed) - 1) if len(failed) > 1 else ''
    return '%s: %s%s' % (first['profile'] or first['path'], first['error'].split('\n')[0], more)


def report_conflicts(profiles):
    """Copies this run's report says stopped on conflicts."""
    return [conflict_entry(p.get('path'), p.get('profile'), (p.get('update') or {}).get('conflicts') or [])
            for p in profiles if p.get('status') == 'conflicts' and p.get('path')]


def labelled_diff(profile, home):
    """The tool's unified diff, each file's headers labelled before (home) and after (copy)."""
    copy = profile.get('path', '')
    name = profile.get('profile', '')
    out = []
    for line in (profile.get('diff') or '').splitlines():
        if line.startswith('--- a/'):
            rel = line[len('--- a/'):]
            line = '--- %s before: %s' % (name, os.path.join(home, rel) if home else rel)
        elif line.startswith('+++ b/'):
            rel = line[len('+++ b/'):]
            line = '+++ %s after: %s' % (name, os.path.join(copy, rel))
        out.append(line)
    removed = profile.get('removed') or []
    if removed:
        out.append('%s: removed (%d entries):' % (name, profile.get('entries_removed', len(removed))))
        for r in removed:
            out.append('  - %s%s' % (r['path'], '/' if r.get('dir') else ''))
    text = '\n'.join(out)
    return {
        'before_header': '%s before: %s' % (name, home),
        'after_header': '%s after: %s' % (name, copy),
        'prepared': text + '\n' if text else '',
    }


def do_split(run, params):
    module = run.module
    base = common_args(params)
    dry_cmd = split_command(module, params, run.handover, True) + base
    preview = None
    if module._diff or module.check_mode:
        rc, preview = run.tool(dry_cmd)
        if rc != 0:
            run.fail('the dry run of split failed (exit %d)' % rc, rc, dry_cmd, failed=failed_copies(
                preview.get('profiles') or []))
    if module.check_mode:
        report, rc, cmd = preview, 0, dry_cmd
        profiles = report.get('profiles') or []
        changed = any(p.get('status') in ('would-create', 'would-replace') for p in profiles)
    else:
        cmd = split_command(module, params, run.handover, False) + base
        rc, report = run.tool(cmd)
        profiles = report.get('profiles') or []
        changed = bool(report.get('changed'))
        if rc not in (0, 3):
            failed = failed_copies(profiles)
            run.fail(failure_message(failed, rc), rc, cmd, changed=changed, failed=failed)
    result = dict(changed=changed, cmd=cmd, rc=rc, report=report, profiles=profiles)
    if module._diff and preview is not None:
        changing = [p for p in preview.get('profiles') or [] if p.get('status') in ('would-create', 'would-replace')]
        if changed or module.check_mode:
            result['diff'] = [labelled_diff(p, params['home']) for p in changing]
    # Copies this run left alone may still wait on conflicts of an earlier run: status says.
    pending = report_conflicts(profiles)
    left = [p['path'] for p in profiles if p.get('path') and p.get('status') == 'current']
    pending += pending_of(run.states(left)) if left else []
    if pending:
        run.fail(conflict_message(pending), rc, cmd, changed=changed, pending_conflicts=pending)
    return result


def do_update(run, params):
    module = run.module
    copies = params['copies']
    if module.check_mode or params['continue']:
        states = run.states(copies)
        pending = pending_of(states)
        # A copy status cannot read is left to the update itself to refuse.
        unknown = [c for c in copies if states.get(os.path.abspath(c)) is None]
    if module.check_mode:
        unresolved = [p for p in pending if any(not os.path.exists(f) for f in p['save_as'])]
        if params['continue']:
            if unresolved:
                run.fail(conflict_message(unresolved), 3, None, changed=False, pending_conflicts=unresolved)
            if not pending and not unknown:
                return dict(changed=False, profiles=[dict(path=c, status='current') for c in copies],
                            msg='no update waits on conflicts in these copies: nothing to continue')
            copies = [p['copy'] for p in pending] + unknown
        elif pending:
            run.fail(conflict_message(pending), 3, None, changed=False, pending_conflicts=pending)
        return dict(changed=True, profiles=[dict(path=c, status='would-update') for c in copies],
                    msg='check mode: the update tool cannot preview; a real run would update %d copies' % len(copies))
    if params['continue']:
        # Only copies whose update waits on conflicts have something to continue.
        copies = [p['copy'] for p in pending] + unknown
        if not copies:
            return dict(changed=False, profiles=[dict(path=c, status='current') for c in params['copies']],
                        msg='no update waits on conflicts in these copies: nothing to continue')
    cmd = [params['binary'], 'update'] + list(copies) + ['--json']
    if params['continue']:
        cmd.append('--continue')
    cmd += update_args(params, run.handover) + common_args(params)
    rc, report = run.tool(cmd)
    profiles = report.get('profiles') or []
    changed = bool(report.get('changed'))
    if rc not in (0, 3):
        failed = failed_copies(profiles)
        run.fail(failure_message(failed, rc), rc, cmd, changed=changed, failed=failed)
    pending = report_conflicts(profiles)
    if pending:
        run.fail(conflict_message(pending), rc, cmd, changed=changed, pending_conflicts=pending)
    return dict(changed=changed, cmd=cmd, rc=rc, report=report, profiles=profiles)


KIND_WORDS = {'d': 'directory', 'l': 'link', 's': 'special file'}


def drift_line(d):
    """One difference of a report's drift (schema_version 2: an object) in
    the words apim-profiles prints it."""
    if not isinstance(d, dict):
        return str(d)
    if d.get('change') == 'profile':
        return d.get('message') or ''
    if d.get('change') == 'changed':
        return '%s: %s' % (d.get('path'), ', '.join(d.get('what') or []))
    return '%s: %s %s' % (d.get('path'), KIND_WORDS.get(d.get('kind'), 'file'), d.get('change'))


def do_verify(run, params):
    cmd = [params['binary'], 'verify'] + list(params['copies']) + ['--json'] + common_args(params)
    rc, report = run.tool(cmd)
    profiles = report.get('profiles') or []
    drift = ['%s: %s' % (p.get('path'), drift_line(d)) for p in profiles for d in p.get('drift') or []]
    drifted = [p.get('path') for p in profiles if p.get('drift')]
    if rc == 4 or drift:
        more = ' (and %d more: see drift)' % (len(drift) - 1) if len(drift) > 1 else ''
        run.module.fail_json(msg='%d of %d copies no longer match their profiles: %s%s'
                             % (len(drifted), len(profiles), drift[0] if drift else '', more),
                             rc=rc, cmd=cmd, drift=drift, drifted=drifted)
    unproven = [dict(copy=p.get('path'), reason=p.get('reason')) for p in profiles
                if p.get('status') == 'unverifiable']
    if unproven:
        run.module.fail_json(msg='%d of %d copies cannot be proven by their records: %s: %s'
                             % (len(unproven), len(profiles), unproven[0]['copy'], unproven[0]['reason']),
                             rc=rc, cmd=cmd, unverifiable=unproven)
    if rc != 0:
        run.fail('apim-profiles verify failed (exit %d)' % rc, rc, cmd)
    return dict(changed=False, cmd=cmd, rc=rc, report=report, profiles=profiles, drift=drift)


def do_profiles(run, params):
    cmd = [params['binary'], 'profiles', '--json'] + common_args(params)
    rc, report = run.tool(cmd)
    if rc != 0:
        run.fail('apim-profiles profiles failed (exit %d)' % rc, rc, cmd)
    profiles = report.get('profiles') or []
    names = []
    for p in profiles:
        if p.get('name') not in names:
            names.append(p.get('name'))
    return dict(changed=False, cmd=cmd, rc=rc, report=report, profiles=profiles, known_profiles=names)


ARGUMENT_SPEC = dict(
    state=dict(type='str', default='split', choices=['split', 'update', 'verify', 'profiles']),
    binary=dict(type='path', default='apim-profiles'),
    home=dict(type='path'),
    out=dict(type='path'),
    copies=dict(type='list', elements='path'),
    profiles=dict(type='list', elements='str'),
    update=dict(type='bool', default=False),
    credentials=dict(type='dict', options=dict(
        username=dict(type='str', required=True),
        password=dict(type='str', required=True, no_log=True),
    )),
    update_tool=dict(type='path'),
    update_zip=dict(type='path'),
    update_level=dict(type='str'),
    update_timeout=dict(type='int'),
    update_jobs=dict(type='int'),
    update_order=dict(type='str', choices=['once', 'each']),
    jobs=dict(type='int'),
    reflink=dict(type='str', choices=['auto', 'always', 'never']),
    profile_dir=dict(type='path'),
    archive=dict(type='str', choices=['zip', 'tar.gz']),
    force=dict(type='bool', default=False),
    skip_config_optimization=dict(type='bool', default=False),
    carry=dict(type='list', elements='str'),
    carry_common=dict(type='bool', default=False),
    set=dict(type='dict', no_log=True),
    overlay=dict(type='dict'),
    variable_prefix=dict(type='str'),
    **{'continue': dict(type='bool', default=False)}
)
# What each state needs, and what never goes together (checked by Ansible before the module runs, and by
# ansible-test's validate-modules against the documentation); the rest is STATES_OF.
REQUIRED_IF = [
    ('state', 'split', ['home', 'out']),
    ('state', 'update', ['copies']),
    ('state', 'verify', ['copies']),
    ('continue', True, ['copies']),
]
MUTUALLY_EXCLUSIVE = [['copies', 'home'], ['copies', 'out'], ['update_zip', 'update_level']]


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF,
                           mutually_exclusive=MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    protect_secrets(module)
    params = module.params
    NAMES['prefix'] = params.get('variable_prefix')
    check_states(module, params)
    check_credentials(module, params)
    params['binary'] = find_binary(module, params['binary'])
    handover = Handover(module)
    run = Run(module, params, handover)
    try:
        state = params['state']
        result = dict(split=do_split, update=do_update, verify=do_verify, profiles=do_profiles)[state](run, params)
    finally:
        handover.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
