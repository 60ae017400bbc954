#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, apim-profiles developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: apim_profiles_copy
short_description: Fingerprint, archive and install an optimized API-M copy, only when it differs
version_added: "1.0.0"
description:
  - The transport of the C(distribute) role - moves a copy made by M(apim_profiles.fleet.apim_profiles) from the
    controller to a node without the apim-profiles binary on the node.
  - A copy's fingerprint is the SHA-256 of, for every entry below it in path order, its relative path, type and
    permission bits, and for a file its size and modification time (whole seconds), for a link its target.
    Directory times and owners are left out, so a copy unpacked elsewhere has the same fingerprint. Only
    metadata is read.
  - C(state=fingerprint) reports the fingerprint of O(path) (read-only).
  - C(state=archive) writes C(<archive_dir>/<name>-<fingerprint 16>.tar) (C(.tar.gz) with O(compress)) of the
    copy at O(path) when no archive of that fingerprint exists yet (older archives of the same name are removed).
  - C(state=present) puts the archive O(src) at O(path) when the fingerprint there differs from O(fingerprint) -
    unpacked beside the final place, checked against O(fingerprint), then exchanged with the old copy in one
    rename (C(renameat2) with C(RENAME_EXCHANGE) where the kernel has it) and the old copy removed.
author:
  - apim-profiles developers (@apim-profiles)
requirements:
  - GNU tar on the host (and gzip with O(compress))
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is written; the task reports whether a real run would archive or install.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: C(state=present) shows the fingerprint and entry count before and after.
options:
  state:
    description: What to do.
    type: str
    choices: [fingerprint, archive, present]
    default: fingerprint
  path:
    description:
      - The copy - the one to fingerprint or archive, or the final place to install at (C(<dest>/<home name>)).
    type: path
    required: true
  archive_dir:
    description: With O(state=archive), the directory that keeps the archives.
    type: path
  src:
    description: With O(state=present), the archive (C(.tar) or C(.tar.gz)) on this host, holding one top directory named as O(path).
    type: path
  fingerprint:
    description: With O(state=present), the fingerprint the installed copy must have.
    type: str
  remove_src:
    description: With O(state=present), remove O(src) afterwards.
    type: bool
    default: true
  compress:
    description:
      - With O(state=archive), compress the archive with C(gzip -1). Off by default - the jars that make most of an
        API-M home are compressed already, so gzip mostly costs CPU; turn it on for slow links.
    type: bool
    default: false
  exclude:
    description:
      - Paths relative to the copy (a directory with everything below it) left out of the fingerprint - files the
        play manages on each node itself, such as a C(deployment.toml) it templates per node. Give the same list
        everywhere the same copy is fingerprinted.
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: The fingerprint of the controller's gateway copy
  apim_profiles.fleet.apim_profiles_copy:
    path: /srv/apim-work/copies/gateway-worker/wso2am-4.2.0
  delegate_to: localhost
  register: wanted

- name: Put the copy in place from an archive already on the node
  apim_profiles.fleet.apim_profiles_copy:
    state: present
    path: /opt/wso2/wso2am-4.2.0
    src: /opt/wso2/.wso2am-4.2.0.apim-profiles.tar.gz
    fingerprint: "{{ wanted.fingerprint }}"
'''

RETURN = r'''
fingerprint:
  description: The fingerprint of O(path) after the task (empty when there is nothing there).
  type: str
  returned: always
previous:
  description: The fingerprint of O(path) before the task (empty when there was nothing there).
  type: str
  returned: when O(state=present)
entries:
  description: Entries below O(path).
  type: int
  returned: always
archive:
  description: With O(state=archive), the archive of the copy.
  type: str
  returned: when O(state=archive)
'''

import errno
import glob
import hashlib
import os
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule


def fingerprint(root, exclude=()):
    """(sha256 hex, entries) of the tree at root, from metadata only; ('', 0) when absent.
    Entries in exclude (relative paths; a directory with everything below it) are left out."""
    try:
        st = os.lstat(root)
    except OSError:
        return '', 0
    if not stat.S_ISDIR(st.st_mode):
        return '', 0
    h = hashlib.sha256()
    count = 0
    stack = ['']
    while stack:
        rel = stack.pop()
        base = os.path.join(root, rel) if rel else root
        names = sorted(os.listdir(base))
        subdirs = []
        for name in names:
            r = os.path.join(rel, name) if rel else name
            if r in exclude:
                continue
            p = os.path.join(root, r)
            s = os.lstat(p)
            mode = stat.S_IMODE(s.st_mode)
            if stat.S_ISDIR(s.st_mode):
                line = 'd\0%s\0%o' % (r, mode)
                subdirs.append(r)
            elif stat.S_ISLNK(s.st_mode):
                line = 'l\0%s\0%s' % (r, os.readlink(p))
            elif stat.S_ISREG(s.st_mode):
                line = 'f\0%s\0%o\0%d\0%d' % (r, mode, s.st_size, int(s.st_mtime))
            else:
                line = 'o\0%s\0%o' % (r, mode)
            h.update(line.encode('utf-8', 'surrogateescape') + b'\n')
            count += 1
        stack.extend(reversed(subdirs))
    return h.hexdigest(), count


def exchange(a, b):
    """Swap two paths in one step where the kernel can; False when it cannot."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, 'renameat2', None)
        if fn is None:
            return False
        at_fdcwd, rename_exchange = -100, 2
        if fn(at_fdcwd, a.encode(), at_fdcwd, b.encode(), rename_exchange) == 0:
            return True
        return False
    except (OSError, AttributeError):
        return False


def archive(module, path, archive_dir, exclude, compress):
    fp, count = fingerprint(path, exclude)
    if not fp and module.check_mode:
        # Check mode before the first split: there is no copy yet, so a real run would make one.
        return dict(changed=True, fingerprint='', entries=0, archive='')
    if not fp:
        module.fail_json(msg='%s is not a directory: there is no copy to archive\nhint: split first' % path)
    name = os.path.basename(path.rstrip('/'))
    suffix = '.tar.gz' if compress else '.tar'
    dest = os.path.join(archive_dir, '%s-%s%s' % (name, fp[:16], suffix))
    result = dict(changed=False, fingerprint=fp, entries=count, archive=dest)
    if os.path.exists(dest):
        return result
    result['changed'] = True
    if module.check_mode:
        return result
    if not os.path.isdir(archive_dir):
        os.makedirs(archive_dir, 0o700)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % name, suffix=suffix + '.tmp', dir=archive_dir)
    os.close(fd)
    try:
        cmd = ['tar', '--create', '--format=posix', '--file', tmp, '--numeric-owner', '-C', os.path.dirname(path.rstrip('/')), name]
        if compress:
            cmd[2:2] = ['--use-compress-program', 'gzip -1']
        rc, out, err = module.run_command(cmd)
        if rc != 0:
            module.fail_json(msg='archiving %s failed: %s' % (path, err.strip()), rc=rc)
        after, _ = fingerprint(path, exclude)
        if after != fp:
            module.fail_json(msg='%s changed while it was archived\nhint: run again once nothing writes to it' % path)
        os.rename(tmp, dest)
        tmp = None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    for old in glob.glob(os.path.join(glob.escape(archive_dir), '%s-*.tar*' % glob.escape(name))):
        if old != dest and (old.endswith('.tar') or old.endswith('.tar.gz')):
            os.unlink(old)
    return result


def install(module, path, src, wanted, remove_src, exclude):
    path = path.rstrip('/')
    name = os.path.basename(path)
    parent = os.path.dirname(path)
    before, count = fingerprint(path, exclude)
    result = dict(changed=False, fingerprint=before, previous=before, entries=count)
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            module.fail_json(msg='%s is there and is not a directory (a %s)\nhint: move it away; the copy is '
                             'installed only over a directory' % (path, 'link' if stat.S_ISLNK(st.st_mode)
                                                                    else 'file'), **result)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
    if before == wanted:
        if remove_src and src and os.path.exists(src) and not module.check_mode:
            os.unlink(src)
        return result
    result['changed'] = True
    result['diff'] = dict(before='%s: %s (%d entries)\n' % (path, before or 'absent', count),
                          after='%s: %s\n' % (path, wanted))
    if module.check_mode:
        result['fingerprint'] = wanted
        return result
    if not src or not os.path.isfile(src):
        module.fail_json(msg='the archive %s is not on this host\nhint: copy it first' % src, **result)
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    staging = tempfile.mkdtemp(prefix='.%s.apim-profiles-incoming-' % name, dir=parent)
    try:
        # GNU tar tells a compressed archive from a plain one by itself.
        rc, out, err = module.run_command(['tar', '--extract', '--file', src, '--numeric-owner', '-C', staging])
        if rc != 0:
            module.fail_json(msg='unpacking %s failed: %s' % (src, err.strip()), rc=rc, **result)
        top = os.listdir(staging)
        if top != [name]:
            module.fail_json(msg='%s holds %s, not one directory named %s\nhint: give the archive made for this '
                             'copy' % (src, ', '.join(sorted(top)) or 'nothing', name), **result)
        new = os.path.join(staging, name)
        got, count = fingerprint(new, exclude)
        if got != wanted:
            module.fail_json(msg='the unpacked copy has fingerprint %s, not %s: the archive does not hold the '
                             'expected copy\nhint: run the play again (the archive is remade from the copy)'
                             % (got, wanted), **result)
        # The old copy ends up inside staging, which goes below.
        if not before:
            os.rename(new, path)
        elif not exchange(new, path):
            os.rename(path, os.path.join(staging, '.old'))
            os.rename(new, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if remove_src:
        os.unlink(src)
    result.update(fingerprint=wanted, entries=count)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='fingerprint', choices=['fingerprint', 'archive', 'present']),
            path=dict(type='path', required=True),
            archive_dir=dict(type='path'),
            src=dict(type='path'),
            fingerprint=dict(type='str'),
            remove_src=dict(type='bool', default=True),
            exclude=dict(type='list', elements='str', default=[]),
            compress=dict(type='bool', default=False),
        ),
        required_if=[
            ('state', 'archive', ['archive_dir']),
            ('state', 'present', ['src', 'fingerprint']),
        ],
        supports_check_mode=True,
    )
    p = module.params
    exclude = set(os.path.normpath(e.strip('/')) for e in p['exclude'])
    if p['state'] == 'fingerprint':
        fp, count = fingerprint(p['path'], exclude)
        module.exit_json(changed=False, fingerprint=fp, entries=count)
    if p['state'] == 'archive':
        module.exit_json(**archive(module, p['path'], p['archive_dir'], exclude, p['compress']))
    module.exit_json(**install(module, p['path'], p['src'], p['fingerprint'], p['remove_src'], exclude))


if __name__ == '__main__':
    main()
