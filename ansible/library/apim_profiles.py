#!/usr/bin/python
# -*- coding: utf-8 -*-
# Ansible module wrapping the apim-profiles binary. Part of apim-profiles.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: apim_profiles
short_description: Split a WSO2 API Manager home into optimized per-profile copies
description:
  - Runs C(apim-profiles split) on the managed host and reports its JSON result.
  - Idempotent - copies made from the same inputs are left alone and the task reports C(changed=false).
  - In check mode the split runs with C(--dry-run); nothing is written, and with C(--diff) the task
    shows each profile's unified diff (secret values masked) and the entries it would remove.
options:
  home:
    description: The unzipped API-M home (never modified).
    type: path
    required: true
  out:
    description: Where the copies go, as C(<out>/<profile>/<home name>).
    type: path
    required: true
  profiles:
    description: Profiles to make. Default is control-plane, gateway-worker, traffic-manager.
    type: list
    elements: str
  update:
    description: Run the WSO2 U2 update in each copy (then optimize again and verify).
    type: bool
    default: false
  update_tool:
    description: An update tool to place in each copy when the home has none.
    type: path
  update_level:
    description: Update to this level instead of the latest.
    type: str
  update_zip:
    description: An update archive to apply offline.
    type: path
  username:
    description: WSO2 account for the update, passed to the tool through the environment only.
    type: str
  password:
    description: Password of the WSO2 account; never logged, never on a command line.
    type: str
  skip_config_optimization:
    description: Keep the home's own deployment.toml.
    type: bool
    default: false
  force:
    description: Replace copies made from other inputs.
    type: bool
    default: false
  archive:
    description: Also write a pack-shaped archive of each copy.
    type: str
    choices: [zip, tar.gz]
  binary:
    description: The apim-profiles executable.
    type: path
    default: apim-profiles
author:
  - apim-profiles developers
'''

EXAMPLES = r'''
- name: Split the pack into the three distributed profiles
  apim_profiles:
    home: /opt/wso2am-4.2.0
    out: /opt/nodes
    profiles: [control-plane, gateway-worker, traffic-manager]
    update: true
    username: "{{ wso2_username }}"
    password: "{{ wso2_password }}"
'''

RETURN = r'''
changed:
  description: Whether the run changed anything on disk.
  type: bool
  returned: always
profiles:
  description: One entry per profile - profile, path, status, changed, removed, rewritten, backups, update, ...
  type: list
  returned: always
report:
  description: The whole JSON document apim-profiles printed.
  type: dict
  returned: always
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule


def build_command(module, params):
    cmd = [params['binary'], 'split', params['home'], '--out', params['out'], '--json']
    if params.get('profiles'):
        cmd += ['--profiles', ','.join(params['profiles'])]
    if params['skip_config_optimization']:
        cmd.append('--skip-config-optimization')
    if params['force']:
        cmd.append('--force')
    if params.get('archive'):
        cmd += ['--archive', params['archive']]
    if not params['update']:
        cmd.append('--no-update')
    else:
        if params.get('update_tool'):
            cmd += ['--update-tool', params['update_tool']]
        if params.get('update_level'):
            cmd += ['--update-level', params['update_level']]
        if params.get('update_zip'):
            cmd += ['--update-zip', params['update_zip']]
    if module.check_mode:
        cmd.append('--dry-run')
    return cmd


def diff_of(profile):
    text = profile.get('diff') or ''
    removed = profile.get('removed') or []
    if removed:
        text += 'removed (%d entries):\n' % profile.get('entries_removed', len(removed))
        for r in removed:
            text += '  - %s%s\n' % (r['path'], '/' if r.get('dir') else '')
    return {
        'before_header': '%s (source home)' % profile['profile'],
        'after_header': profile['path'],
        'prepared': text,
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            home=dict(type='path', required=True),
            out=dict(type='path', required=True),
            profiles=dict(type='list', elements='str'),
            update=dict(type='bool', default=False),
            update_tool=dict(type='path'),
            update_level=dict(type='str'),
            update_zip=dict(type='path'),
            username=dict(type='str'),
            password=dict(type='str', no_log=True),
            skip_config_optimization=dict(type='bool', default=False),
            force=dict(type='bool', default=False),
            archive=dict(type='str', choices=['zip', 'tar.gz']),
            binary=dict(type='path', default='apim-profiles'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    binary = params['binary']
    if os.sep not in binary:
        found = module.get_bin_path(binary)
        if not found:
            module.fail_json(msg='%s not found on PATH - install apim-profiles or set binary' % binary)
        params['binary'] = found

    env = {}
    # Credentials reach the binary through its environment, never its argv.
    if params.get('username'):
        env['WSO2_USERNAME'] = params['username']
    if params.get('password'):
        env['WSO2_PASSWORD'] = params['password']

    cmd = build_command(module, params)
    rc, stdout, stderr = module.run_command(cmd, environ_update=env)
    try:
        report = json.loads(stdout)
    except ValueError:
        module.fail_json(msg='apim-profiles printed no JSON (exit %d): %s' % (rc, stderr.strip()[-2000:]), rc=rc)

    profiles = report.get('profiles') or []
    if rc != 0:
        if 'error' in report:
            msg = report['error']
            if report.get('hint'):
                msg += ' - ' + report['hint']
        elif rc == 3:
            msg = ('the update stopped on conflicts: resolve them (save each resolved file as <file>.final), '
                   'then run apim-profiles update --continue <copy>')
        else:
            failed = [p for p in profiles if p.get('status') == 'failed']
            msg = '; '.join('%s: %s' % (p['profile'], p.get('error', 'failed')) for p in failed) or stderr.strip()
        module.fail_json(msg=msg, rc=rc, report=report, profiles=profiles, stderr=stderr)

    if module.check_mode:
        changed = any(p.get('status') in ('would-create', 'would-replace') for p in profiles)
    else:
        changed = bool(report.get('changed'))
    result = dict(changed=changed, profiles=profiles, report=report)
    if module._diff and module.check_mode:
        result['diff'] = [diff_of(p) for p in profiles if p.get('status') != 'current']
    module.exit_json(**result)


if __name__ == '__main__':
    main()
