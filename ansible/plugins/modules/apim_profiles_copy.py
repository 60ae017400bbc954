#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, apim-profiles developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: apim_profiles_copy
short_description: Move an optimized API-M copy to a node, only the files that differ
version_added: "1.0.0"
description:
  - The transport of the C(distribute) role - moves a copy made by M(apim_profiles.fleet.apim_profiles) from the
    controller to a node without the apim-profiles binary on the node.
  - A copy's fingerprint is the SHA-256 of, for every entry below it in path order, its relative path, type and
    permission bits, and for a file its size and modification time (whole seconds), for a link its target.
    Directory times and owners are left out, so a copy unpacked elsewhere has the same fingerprint. Only
    metadata is read.
  - A copy's manifest lists every entry with its type, permission bits, owner, size, modification time (ns),
    link target and, for a file, the SHA-256 of its content. The content hash of a file is read again only
    when its inode, size, modification or change time differ from the manifest kept in O(cache) - the change
    time cannot be set back by a process, so an edit is never mistaken for an unchanged file, and a second run
    does not read the copy's gigabytes again.
  - C(state=fingerprint) reports the fingerprint of O(path) (read-only).
  - C(state=manifest) reports the fingerprint of O(path) and, when it differs from O(fingerprint), the manifest.
  - C(state=delta) (on the controller) writes into O(archive_dir) an archive of the copy at O(path) holding
    only what differs from the O(node) manifest - files whose content differs, the new metadata of files whose
    content is the same, links, directories, and the entries to remove. Against an empty manifest (a node
    without a copy) it holds the whole copy. One archive per (node copy, wanted copy) pair.
  - C(state=present) applies the archive O(src) at O(path) when the fingerprint there differs from
    O(fingerprint) - into a staging copy beside the final place, files unchanged hard-linked from the current
    copy (they keep their inode and times; a changed file is never written into the live copy), checked
    against O(fingerprint), then exchanged with the old copy in one rename (C(renameat2) with
    C(RENAME_EXCHANGE) where the kernel has it) and the old copy removed.
  - C(state=verify) (on a node) compares the copy at O(path) with O(wanted), the manifest of the copy made (and
    verified with C(apim-profiles verify)) on the controller - every path, its type, permission bits, link target
    and, for a file, the SHA-256 of its content (read again only where O(cache) does not vouch for it) - and
    fails listing RV(differences). Only Python is needed on the node; times and owners are not compared.
  - C(state=prune) (on the controller) removes, under the work directory O(path), the unzipped packs in
    C(pack/) other than those in O(keep) and every archive in C(dist/).
author:
  - apim-profiles developers (@apim-profiles)
requirements:
  - Python on the host; nothing else (no apim-profiles, no tar command)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is written; the task reports whether a real run would write an archive, install or remove.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: C(state=delta) (in check mode too) lists each path of the node's copy that differs from the
      controller's copy and how (content, added, removed, mode or owner), or says the whole copy is sent;
      C(state=present) lists the paths it wrote or removed.
options:
  state:
    description: What to do.
    type: str
    choices: [fingerprint, manifest, delta, present, prune, verify]
    default: fingerprint
  path:
    description:
      - The copy - the one to fingerprint, list or archive, or the final place to install at (C(<dest>/<home name>)).
      - With O(state=prune), the work directory.
    type: path
    required: true
  archive_dir:
    description: With O(state=delta), the directory that receives the archive.
    type: path
  src:
    description: With O(state=present), the archive on this host, made by O(state=delta) for this copy.
    type: path
  fingerprint:
    description:
      - With O(state=present), the fingerprint the installed copy must have.
      - With O(state=manifest), the fingerprint wanted - the manifest is returned only when O(path) has another.
    type: str
  cache:
    description:
      - With O(state=manifest), O(state=delta), O(state=present) and O(state=verify), a file (outside the copy) that keeps the
        copy's manifest with each file's inode and change time, so that only files changed since are read again.
        Written (mode 0600, under a new name, then renamed) by a real run only; O(state=verify) only reads it.
    type: path
  node:
    description:
      - With O(state=delta), what O(state=manifest) returned on the node (its C(fingerprint), C(manifest),
        C(can_chown)); an empty manifest stands for a node without a usable copy.
    type: dict
  wanted:
    description:
      - With O(state=verify), what O(state=manifest) returned for the copy on the controller (with
        O(return_manifest=true) and no O(fingerprint), so that it holds the C(manifest)).
    type: dict
  return_manifest:
    description: With O(state=manifest), return the manifest (when the fingerprint differs from O(fingerprint)).
    type: bool
    default: true
  remove_src:
    description: With O(state=present), remove O(src) afterwards.
    type: bool
    default: true
  compress:
    description:
      - With O(state=delta), compress the archive with gzip (level 1). Off by default - the jars that make most of
        an API-M home are compressed already, so gzip mostly costs CPU; turn it on for slow links.
    type: bool
    default: false
  keep:
    description: With O(state=prune), the unzipped packs (paths) still in use.
    type: list
    elements: path
    default: []
  exclude:
    description:
      - Paths relative to the copy (a directory with everything below it) left out of the fingerprint - files the
        play manages on each node itself, such as a C(deployment.toml) it templates per node. Give the same list
        everywhere the same copy is handled. A node that has such a path keeps its own; one that has not gets the
        copy's.
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: The controller's gateway copy
  apim_profiles.fleet.apim_profiles_copy:
    state: manifest
    path: /srv/apim-work/copies/gateway-worker/wso2am-4.2.0
    cache: /srv/apim-work/dist/gateway-worker.manifest.json
    return_manifest: false
  delegate_to: localhost
  register: wanted

- name: What this node has (its manifest only when it differs)
  apim_profiles.fleet.apim_profiles_copy:
    state: manifest
    path: /opt/wso2/wso2am-4.2.0
    cache: /opt/wso2/.wso2am-4.2.0.apim-profiles-manifest.json
    fingerprint: "{{ wanted.fingerprint }}"
  register: there

- name: The archive of what differs
  apim_profiles.fleet.apim_profiles_copy:
    state: delta
    path: /srv/apim-work/copies/gateway-worker/wso2am-4.2.0
    cache: /srv/apim-work/dist/gateway-worker.manifest.json
    node: "{{ there }}"
    archive_dir: /srv/apim-work/dist
  delegate_to: localhost
  register: delta
  when: there.fingerprint != wanted.fingerprint
'''

RETURN = r'''
fingerprint:
  description: The fingerprint of O(path) after the task (empty when there is no copy there).
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
manifest:
  description:
    - With O(state=manifest), relative path to C([type, mode, uid, gid, size, mtime_ns, link target, sha256]);
      empty when there is no usable copy. Left out when the fingerprint is the one wanted.
  type: dict
  returned: when O(state=manifest)
can_chown:
  description: With O(state=manifest), whether this host can give files their owners (it runs as root).
  type: bool
  returned: when O(state=manifest)
hashed:
  description: With O(state=manifest) and O(state=delta), files whose content was read (the others came from O(cache)).
  type: int
  returned: when a manifest was read
archive:
  description: With O(state=delta), the archive (empty in check mode).
  type: str
  returned: when O(state=delta)
full:
  description: With O(state=delta), whether the archive holds the whole copy (the node had none).
  type: bool
  returned: when O(state=delta)
files_sent:
  description: Files whose content is in the archive.
  type: int
  returned: when O(state=delta) or O(state=present)
files_kept:
  description: With O(state=present), files and links of the old copy hard-linked into the new (same inode, same times).
  type: int
  returned: when O(state=present)
removed:
  description: Entries of the node's copy that the new copy drops (O(state=delta), O(state=present)), or paths pruned.
  type: raw
  returned: when O(state=delta), O(state=present) or O(state=prune)
bytes_moved:
  description: The archive's size - the bytes that travel to the node (in check mode, the content to send).
  type: int
  returned: when O(state=delta) or O(state=present)
differences:
  description:
    - With O(state=verify), each difference of the copy here from O(wanted) - C(path), C(change) (C(added),
      C(removed), C(changed)), and C(kind) of an added or removed entry or C(what) changed (C(content), C(mode),
      C(type), C(link target)).
  type: list
  elements: dict
  returned: when O(state=verify)
copy_bytes:
  description: Bytes of the files of the whole copy.
  type: int
  returned: when O(state=delta) or O(state=present)
'''

import errno
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile

from ansible.module_utils.basic import AnsibleModule

FORMAT = 'apim-profiles-delta'
CACHE_FORMAT = 'apim-profiles-manifest'
CHUNK = 1 << 20
NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) | NOFOLLOW
DATA_NAME = re.compile(r'^data/([0-9]+)$')
HOWS = ('data', 'local', 'dir', 'link')


class Refused(Exception):
    """What is wrong (one line) and what to do (one line)."""

    def __init__(self, what, hint):
        Exception.__init__(self, what)
        self.what, self.hint = what, hint


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


def safe_rel(rel):
    """A relative path that stays below the copy: not absolute, no empty, `.` or `..` part, no NUL."""
    if not isinstance(rel, str) or not rel or rel.startswith('/') or '\0' in rel:
        return False
    return all(p not in ('', '.', '..') for p in rel.split('/'))


def walk(fd, rel=''):
    """(rel, lstat) of every entry below the directory fd, parents first, links never followed."""
    for name in sorted(os.listdir(fd)):
        r = rel + '/' + name if rel else name
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        yield r, st
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, DIR_FLAGS, dir_fd=fd)
            try:
                for item in walk(sub, r):
                    yield item
            finally:
                os.close(sub)


def open_dir(root_fd, rel):
    """A new fd of the directory rel below root_fd, opened part by part without following a link."""
    fd = os.dup(root_fd)
    for part in [p for p in rel.split('/') if p]:
        try:
            nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = nxt
    return fd


def sha_of_fd(fd, out=None):
    """(sha256 hex, size) of what fd reads; each chunk also written to the fd out."""
    h = hashlib.sha256()
    size = 0
    while True:
        chunk = os.read(fd, CHUNK) if isinstance(fd, int) else fd.read(CHUNK)
        if not chunk:
            return h.hexdigest(), size
        h.update(chunk)
        size += len(chunk)
        if out is not None:
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]


def load_cache(path):
    """rel -> [ino, size, mtime_ns, ctime_ns, mode, sha] of a manifest kept before ({} when none or unreadable)."""
    if not path:
        return {}
    try:
        with open(path) as f:
            doc = json.load(f)
    except (IOError, OSError, ValueError):
        return {}
    entries = doc.get('entries') if isinstance(doc, dict) and doc.get('format') == CACHE_FORMAT else None
    return entries if isinstance(entries, dict) else {}


def save_cache(path, entries):
    """The cache written under a new private name (O_EXCL, mode 0600) beside it, then renamed over it."""
    parent = os.path.dirname(path) or '.'
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o700)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=parent)
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(dict(format=CACHE_FORMAT, version=1, entries=entries), f, separators=(',', ':'))
        os.rename(tmp, path)
        tmp = None
    finally:
        if tmp:
            os.unlink(tmp)


def cache_key(st):
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, stat.S_IMODE(st.st_mode)]


def read_manifest(root, cache):
    """(manifest, cache entries, files hashed) of the copy at root; a file's hash comes from cache when its
    inode, size, times and mode are those the cache recorded."""
    manifest, fresh, hashed = {}, {}, 0
    root_fd = os.open(root, DIR_FLAGS)
    try:
        for rel, st in walk(root_fd):
            mode, ids = stat.S_IMODE(st.st_mode), [st.st_uid, st.st_gid]
            if stat.S_ISDIR(st.st_mode):
                manifest[rel] = ['d', mode] + ids + [0, 0, '', '']
            elif stat.S_ISLNK(st.st_mode):
                manifest[rel] = ['l', 0] + ids + [0, st.st_mtime_ns, os.readlink(rel, dir_fd=root_fd), '']
            elif stat.S_ISREG(st.st_mode):
                known = cache.get(rel)
                if isinstance(known, list) and known[:5] == cache_key(st) and len(known) == 6:
                    sha = known[5]
                else:
                    sha = hash_file(root_fd, rel, st)
                    hashed += 1
                manifest[rel] = ['f', mode] + ids + [st.st_size, st.st_mtime_ns, '', sha]
                fresh[rel] = cache_key(st) + [sha]
            else:
                manifest[rel] = ['o', mode] + ids + [0, 0, '', '']
    finally:
        os.close(root_fd)
    return manifest, fresh, hashed


def hash_file(root_fd, rel, st):
    pfd = open_dir(root_fd, os.path.dirname(rel))
    try:
        fd = os.open(os.path.basename(rel), os.O_RDONLY | NOFOLLOW, dir_fd=pfd)
    finally:
        os.close(pfd)
    try:
        after = os.fstat(fd)
        if after.st_ino != st.st_ino:
            raise Refused('%s changed while it was read' % rel, 'run again once nothing writes to the copy')
        return sha_of_fd(fd)[0]
    finally:
        os.close(fd)


def manifest_of(module, path, cache_path):
    """(manifest, files hashed) of the copy at path, the cache refreshed by a real run."""
    cache = load_cache(cache_path)
    manifest, fresh, hashed = read_manifest(path, cache)
    if cache_path and fresh != cache and not module.check_mode:
        save_cache(cache_path, fresh)
    return manifest, hashed


def do_manifest(module, p, exclude):
    path = p['path'].rstrip('/')
    fp, count = fingerprint(path, exclude)
    result = dict(changed=False, fingerprint=fp, entries=count, can_chown=os.geteuid() == 0)
    if p['fingerprint'] and fp == p['fingerprint']:
        return result
    manifest, hashed = manifest_of(module, path, p['cache']) if fp else ({}, 0)
    result.update(hashed=hashed, copy_bytes=sum(e[4] for e in manifest.values() if e[0] == 'f'))
    if p['return_manifest']:
        result['manifest'] = manifest
    return result


def how_to_send(w, n, chown):
    """How an entry the copy wants reaches the node: None (the node has it), or one of HOWS."""
    same_ids = not chown or (n is not None and n[2:4] == w[2:4])
    kind = w[0]
    if kind == 'd':
        return None if n and n[0] == 'd' and n[1] == w[1] and same_ids else 'dir'
    if kind == 'l':
        # A link's own time too: apim-profiles verify compares it.
        return None if n and n[0] == 'l' and n[6] == w[6] and n[5] == w[5] and same_ids else 'link'
    if not (n and n[0] == 'f' and n[4] == w[4] and n[7] == w[7]):
        return 'data'
    return None if n[1] == w[1] and n[5] == w[5] and same_ids else 'local'


def node_manifest(node):
    """The node's manifest, each path checked (a node's answer is data, not trusted to stay below the copy)."""
    manifest = (node or {}).get('manifest') or {}
    if not isinstance(manifest, dict):
        raise Refused('the node manifest is not a mapping', 'pass the result of state: manifest as node')
    for rel, e in manifest.items():
        if not safe_rel(rel) or not isinstance(e, list) or len(e) != 8 or e[0] not in ('d', 'f', 'l', 'o'):
            raise Refused('the node manifest has a bad entry %r' % rel, 'pass the result of state: manifest as node')
    return manifest


def plan_delta(wanted, have, exclude, chown):
    """(changes, removals): each change [rel, type, mode, uid, gid, size, mtime_ns, target, sha, how]."""
    kept = [e for e in exclude if e in have]

    def under_kept(rel):
        return any(rel == k or rel.startswith(k + '/') for k in kept)

    changes = []
    for rel in sorted(wanted):
        w = wanted[rel]
        if under_kept(rel):
            continue
        if w[0] == 'o':
            raise Refused('%s is a special file (not a file, directory or link)' % rel,
                          'remove it from the copy on the controller; a copy holds files, directories and links')
        how = how_to_send(w, have.get(rel), chown)
        if how:
            changes.append([rel] + list(w) + [how])
    removals = sorted(rel for rel, n in have.items()
                      if not under_kept(rel) and (rel not in wanted or wanted[rel][0] != n[0]))
    return changes, removals


KIND_WORDS = {'d': 'directory', 'f': 'file', 'l': 'link', 'o': 'special file'}
DIFF_SHOWN = 200


def what_differs(changes, removals, have):
    """(path, what) of each entry the node's copy has otherwise than the wanted copy, in path order."""
    out = [(r, 'removed') for r in removals]
    for c in changes:
        rel, how, n = c[0], c[9], have.get(c[0])
        if n is None:
            what = 'added'
        elif n[0] != c[1]:
            what = 'a %s where the node has a %s' % (KIND_WORDS[c[1]], KIND_WORDS.get(n[0], 'entry'))
        elif how == 'data':
            what = 'content'
        elif how == 'local':
            what = 'mode, owner or time (same content)'
        elif how == 'dir':
            what = 'mode or owner'
        else:
            what = 'link target, owner or time'
        out.append((rel, what))
    return sorted(out)


def diff_of(name, changes, removals, have):
    """What --diff shows for a node: the paths that differ and how (the whole copy for a node without one)."""
    if not have:
        return dict(prepared='%s: not on this node; the whole copy is sent (%d entries)\n' % (name, len(changes)))
    lines = ['%s: %s' % d for d in what_differs(changes, removals, have)]
    more = ['... and %d more' % (len(lines) - DIFF_SHOWN)] if len(lines) > DIFF_SHOWN else []
    return dict(before_header='%s on the node' % name, after_header='%s as made on the controller' % name,
                prepared='%s: %d paths to change on the node to match the copy made on the controller:\n%s\n'
                % (name, len(lines), '\n'.join(['  ' + line for line in lines[:DIFF_SHOWN]] + more)))


def differences(wanted, have, exclude):
    """Each difference of the copy here (have) from the wanted manifest, content by its hash, as
    dict(path, change (added, removed, changed), what); times and owners are not compared."""
    def excluded(rel):
        return any(rel == e or rel.startswith(e + '/') for e in exclude)

    out = []
    for rel in sorted(set(wanted) | set(have)):
        if excluded(rel):
            continue
        w, n = wanted.get(rel), have.get(rel)
        if w is None or n is None:
            out.append(dict(path=rel, change='added' if w is None else 'removed', kind=KIND_WORDS[(n or w)[0]]))
            continue
        what = []
        if w[0] != n[0]:
            what.append('type (%s, not %s)' % (KIND_WORDS[n[0]], KIND_WORDS[w[0]]))
        elif w[0] == 'l':
            what += ['link target'] if w[6] != n[6] else []
        else:
            what += ['mode (%o, not %o)' % (n[1], w[1])] if w[1] != n[1] else []
            what += ['content'] if w[0] == 'f' and (w[4] != n[4] or w[7] != n[7]) else []
        if what:
            out.append(dict(path=rel, change='changed', what=what))
    return out


def do_verify(module, p, exclude):
    """The copy here against the manifest of the copy made (and verified) on the controller: every path, type,
    mode, link target and content hash - with nothing but Python on this host."""
    path = p['path'].rstrip('/')
    wanted = node_manifest(dict(manifest=(p['wanted'] or {}).get('manifest')))
    if not wanted:
        raise Refused('wanted holds no manifest', "pass the controller's state: manifest result (return_manifest: "
                      "true, no fingerprint) of this copy as wanted")
    fp, count = fingerprint(path, exclude)
    result = dict(changed=False, fingerprint=fp, entries=count)
    if not fp:
        module.fail_json(msg='%s: there is no copy on this host\nhint: run the play (without verify) to install '
                         'it' % path, differences=[dict(path='', change='removed', kind='directory')], **result)
    # The kept manifest is read, never written: verify changes nothing.
    have, _, hashed = read_manifest(path, load_cache(p['cache']))
    found = differences(wanted, have, exclude)
    result.update(hashed=hashed, differences=found)
    if found:
        d = found[0]
        first = '%s %s' % (d['path'], ', '.join(d['what']) if d['change'] == 'changed' else d['change'])
        more = ' (and %d more: see differences)' % (len(found) - 1) if len(found) > 1 else ''
        module.fail_json(msg='%s differs from the copy made on the controller: %s%s\nhint: run the play '
                         '(without verify) to put it back' % (path, first, more), **result)
    return result


def write_archive(path, dest, doc, changes, compress):
    """The archive: delta.json, then data/<i> with the content of each change i sent as data."""
    parent = os.path.dirname(dest)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(dest), suffix='.tmp', dir=parent)
    root_fd = os.open(path, DIR_FLAGS)
    try:
        with os.fdopen(fd, 'wb') as f:
            kw = dict(compresslevel=1) if compress else {}
            with tarfile.open(fileobj=f, mode='w:gz' if compress else 'w', format=tarfile.PAX_FORMAT, **kw) as tar:
                add_member(tar, 'delta.json', json.dumps(doc).encode('utf-8'))
                for i, c in enumerate(changes):
                    if c[9] == 'data':
                        add_file(tar, root_fd, i, c)
        os.rename(tmp, dest)
        tmp = None
    finally:
        os.close(root_fd)
        if tmp:
            os.unlink(tmp)


def add_member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, 0
    tar.addfile(info, io.BytesIO(data))


def add_file(tar, root_fd, i, c):
    pfd = open_dir(root_fd, os.path.dirname(c[0]))
    try:
        fd = os.open(os.path.basename(c[0]), os.O_RDONLY | NOFOLLOW, dir_fd=pfd)
    finally:
        os.close(pfd)
    with os.fdopen(fd, 'rb') as f:
        if os.fstat(f.fileno()).st_size != c[5]:
            raise Refused('%s changed while it was archived' % c[0], 'run again once nothing writes to the copy')
        info = tarfile.TarInfo('data/%d' % i)
        info.size, info.mode, info.mtime = c[5], 0o600, 0
        tar.addfile(info, f)


def do_delta(module, p, exclude):
    path = p['path'].rstrip('/')
    wanted_fp, _ = fingerprint(path, exclude)
    if not wanted_fp:
        if module.check_mode:
            return dict(changed=True, fingerprint='', entries=0, archive='', full=True, files_sent=0, removed=0,
                        bytes_moved=0, copy_bytes=0)
        raise Refused('%s is not a directory: there is no copy to send' % path, 'split first')
    node = p['node'] or {}
    have = node_manifest(node)
    wanted, hashed = manifest_of(module, path, p['cache'])
    changes, removals = plan_delta(wanted, have, exclude, bool(node.get('can_chown')))
    base = (node.get('fingerprint') or '') if have else ''
    top = os.lstat(path)
    doc = dict(format=FORMAT, version=1, name=os.path.basename(path), fingerprint=wanted_fp, base=base,
               root=[stat.S_IMODE(top.st_mode), top.st_uid, top.st_gid], changes=changes, remove=removals,
               copy_bytes=sum(e[4] for e in wanted.values() if e[0] == 'f'))
    key = hashlib.sha256(json.dumps(doc, sort_keys=True).encode('utf-8')).hexdigest()[:20]
    suffix = '.delta.tar.gz' if p['compress'] else '.delta.tar'
    dest = os.path.join(p['archive_dir'], '%s-%s%s' % (doc['name'], key, suffix))
    sent = [c for c in changes if c[9] == 'data']
    result = dict(changed=False, fingerprint=wanted_fp, entries=len(wanted), archive=dest, full=not have,
                  files_sent=len(sent), removed=len(removals), hashed=hashed, copy_bytes=doc['copy_bytes'])
    if module._diff:
        result['diff'] = diff_of(doc['name'], changes, removals, have)
    if module.check_mode:
        result.update(changed=not os.path.exists(dest), archive='', bytes_moved=sum(c[5] for c in sent))
        return result
    if not os.path.exists(dest):
        if not os.path.isdir(p['archive_dir']):
            os.makedirs(p['archive_dir'], 0o700)
        write_archive(path, dest, doc, changes, p['compress'])
        if fingerprint(path, exclude)[0] != wanted_fp:
            os.unlink(dest)
            raise Refused('%s changed while it was archived' % path, 'run again once nothing writes to it')
        result['changed'] = True
    result['bytes_moved'] = os.path.getsize(dest)
    return result


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


def read_delta(src, name, wanted):
    """(doc, tar, data members by index) of the archive src, every name and path in it checked."""
    tar = tarfile.open(src, 'r:*')
    try:
        doc, data = checked_delta(tar, src, name, wanted)
    except Exception:
        tar.close()
        raise
    return doc, tar, data


def checked_delta(tar, src, name, wanted):
    first = tar.next()
    if first is None or first.name != 'delta.json' or not first.isreg() or first.size > (1 << 30):
        raise Refused('%s is not an archive made by state: delta' % src, 'run the play again (it makes the archive)')
    doc = json.loads(tar.extractfile(first).read().decode('utf-8'))
    if not isinstance(doc, dict) or doc.get('format') != FORMAT or doc.get('version') != 1:
        raise Refused('%s is not an archive made by state: delta' % src, 'run the play again (it makes the archive)')
    if doc.get('name') != name or doc.get('fingerprint') != wanted:
        raise Refused('%s holds a copy of %s with fingerprint %s, not %s with %s'
                      % (src, doc.get('name'), doc.get('fingerprint'), name, wanted),
                      'give the archive made for this copy')
    for c in doc.get('changes') or []:
        if not (isinstance(c, list) and len(c) == 10 and safe_rel(c[0]) and c[9] in HOWS):
            raise Refused('%s names an entry outside the copy or of no known kind: %r' % (src, c[:1]),
                          'give the archive made for this copy')
    for rel in doc.get('remove') or []:
        if not safe_rel(rel):
            raise Refused('%s removes %r, a path outside the copy' % (src, rel), 'give the archive made for this copy')
    data = {}
    for m in tar:
        if m is first:
            continue
        match = DATA_NAME.match(m.name)
        if not match or not m.isreg():
            raise Refused('%s holds %s (%s), which is not content of the copy' % (src, m.name, 'a link' if m.islnk()
                                                                                    or m.issym() else 'an entry'),
                          'give the archive made for this copy')
        data[int(match.group(1))] = m
    return doc, data


class Stage(object):
    """The new copy built beside the old: the old's unchanged entries hard-linked, the delta applied."""

    def __init__(self, doc, tar, data, cur_fd, new_fd, chown):
        self.doc, self.tar, self.data, self.cur_fd, self.new_fd, self.chown = doc, tar, data, cur_fd, new_fd, chown
        changes = doc.get('changes') or []
        self.remove = set(doc.get('remove') or [])
        self.dirs = dict((c[0], c) for c in changes if c[9] == 'dir')
        self.replaced = set(c[0] for c in changes if c[9] != 'dir')
        self.dir_modes = []
        self.kept_stats = {}
        self.shas = {}
        self.linked = 0

    def carry(self, cur, new, rel=''):
        for name in sorted(os.listdir(cur)):
            r = rel + '/' + name if rel else name
            if r in self.remove:
                continue
            st = os.stat(name, dir_fd=cur, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                d = self.dirs.get(r)
                self.make_dir(new, name, r, d[2:5] if d else [stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid])
                sub_cur, sub_new = os.open(name, DIR_FLAGS, dir_fd=cur), os.open(name, DIR_FLAGS, dir_fd=new)
                try:
                    self.carry(sub_cur, sub_new, r)
                finally:
                    os.close(sub_cur)
                    os.close(sub_new)
            elif r in self.replaced:
                continue
            elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                os.link(name, name, src_dir_fd=cur, dst_dir_fd=new, follow_symlinks=False)
                self.kept_stats[r] = st
                self.linked += 1
            else:
                raise Refused('%s in the copy on this host is a special file' % r, 'remove it, then run the play again')

    def make_dir(self, parent_fd, name, rel, mode_ids):
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        self.dir_modes.append((rel, mode_ids))

    def apply(self):
        for i, c in enumerate(self.doc.get('changes') or []):
            rel, how = c[0], c[9]
            pfd = open_dir(self.new_fd, os.path.dirname(rel))
            name = os.path.basename(rel)
            try:
                if how == 'dir':
                    self.apply_dir(pfd, name, c)
                elif how == 'link':
                    os.symlink(c[7], name, dir_fd=pfd)
                    if self.chown:
                        os.chown(name, c[3], c[4], dir_fd=pfd, follow_symlinks=False)
                    os.utime(name, ns=(c[6], c[6]), dir_fd=pfd, follow_symlinks=False)
                else:
                    self.write_file(pfd, name, c, i)
            finally:
                os.close(pfd)

    def apply_dir(self, pfd, name, c):
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            self.make_dir(pfd, name, c[0], c[2:5])
            return
        if not stat.S_ISDIR(st.st_mode):
            raise Refused('%s: the archive makes a directory where the copy on this host has something else' % c[0],
                          'run the play again (the archive is made anew from what the node has)')

    def source(self, c, i):
        """What a changed file's content is read from: its data member, or the old copy's file (local)."""
        if c[9] == 'data':
            m = self.data.get(i)
            if m is None:
                raise Refused('the archive has no content for %s' % c[0], 'run the play again')
            return self.tar.extractfile(m), None
        pfd = open_dir(self.cur_fd, os.path.dirname(c[0]))
        try:
            fd = os.open(os.path.basename(c[0]), os.O_RDONLY | NOFOLLOW, dir_fd=pfd)
        finally:
            os.close(pfd)
        return None, fd

    def write_file(self, pfd, name, c, i):
        reader, fd_in = self.source(c, i)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600, dir_fd=pfd)
        try:
            sha, size = sha_of_fd(reader if reader is not None else fd_in, fd)
            if sha != c[8] or size != c[5]:
                raise Refused('%s: its content (sha256 %s, %d bytes) is not the one wanted (%s, %d bytes)'
                              % (c[0], sha, size, c[8], c[5]), 'run the play again (the archive is made anew)')
            if self.chown:
                os.fchown(fd, c[3], c[4])
            os.fchmod(fd, c[2])
            os.utime(fd, ns=(c[6], c[6]))
        finally:
            os.close(fd)
            if fd_in is not None:
                os.close(fd_in)
        self.shas[c[0]] = sha

    def finish_dirs(self, root_mode_ids):
        """Each directory's mode and owner, set last and deepest first (a read-only directory is filled first)."""
        for rel, (mode, uid, gid) in sorted(self.dir_modes, key=lambda d: d[0], reverse=True):
            fd = open_dir(self.new_fd, rel)
            try:
                if self.chown:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        mode, uid, gid = root_mode_ids
        if self.chown:
            os.fchown(self.new_fd, uid, gid)
        os.fchmod(self.new_fd, mode)


def check_installable(module, path, result):
    try:
        st = os.lstat(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
        return
    if not stat.S_ISDIR(st.st_mode):
        module.fail_json(msg='%s is there and is not a directory (a %s)\nhint: move it away; the copy is '
                         'installed only over a directory' % (path, 'link' if stat.S_ISLNK(st.st_mode)
                                                                else 'file'), **result)


def build(doc, tar, data, path, new, before):
    """Fill new from the old copy at path (when the delta is against it) and the archive."""
    chown = os.geteuid() == 0
    new_fd = os.open(new, DIR_FLAGS)
    cur_fd = os.open(path, DIR_FLAGS) if doc['base'] else None
    try:
        if doc['base'] and doc['base'] != before:
            raise Refused('%s changed since its manifest was read (fingerprint %s, not %s)' % (path, before, doc['base']),
                          'run the play again (the archive is made anew from what the node has)')
        stage = Stage(doc, tar, data, cur_fd, new_fd, chown)
        if cur_fd is not None:
            stage.carry(cur_fd, new_fd)
        stage.apply()
        stage.finish_dirs(doc['root'])
        return stage
    finally:
        os.close(new_fd)
        if cur_fd is not None:
            os.close(cur_fd)


def kept_cache(path, stage, old_cache):
    """The new copy's manifest cache: hashes of the files sent, and of the files kept whose old inode, size,
    times and mode were still those the old cache recorded when they were linked."""
    shas = dict(stage.shas)
    for rel, st in stage.kept_stats.items():
        known = old_cache.get(rel)
        if stat.S_ISREG(st.st_mode) and isinstance(known, list) and known[:5] == cache_key(st):
            shas[rel] = known[5]
    entries = {}
    root_fd = os.open(path, DIR_FLAGS)
    try:
        for rel, st in walk(root_fd):
            if stat.S_ISREG(st.st_mode) and rel in shas:
                entries[rel] = cache_key(st) + [shas[rel]]
    finally:
        os.close(root_fd)
    return entries


def install(module, p, exclude):
    path, src, wanted = p['path'].rstrip('/'), p['src'], p['fingerprint']
    name, parent = os.path.basename(path), os.path.dirname(path)
    before, count = fingerprint(path, exclude)
    result = dict(changed=False, fingerprint=before, previous=before, entries=count, bytes_moved=0)
    check_installable(module, path, result)
    if before == wanted:
        if p['remove_src'] and src and os.path.exists(src) and not module.check_mode:
            os.unlink(src)
        return result
    result['changed'] = True
    if module.check_mode:
        # What differs is listed by the delta task (on the controller), which has both manifests.
        result['fingerprint'] = wanted
        return result
    if not src or not os.path.isfile(src):
        module.fail_json(msg='the archive %s is not on this host\nhint: copy it first' % src, **result)
    result['bytes_moved'] = os.path.getsize(src)
    doc, tar, data = read_delta(src, name, wanted)
    if module._diff:
        how = dict(data='content sent', local='same content, new mode, owner or time', dir='directory', link='link')
        lines = sorted(['%s: %s' % (c[0], how[c[9]]) for c in doc.get('changes') or []]
                       + ['%s: removed' % r for r in doc.get('remove') or []])
        more = ['... and %d more' % (len(lines) - DIFF_SHOWN)] if len(lines) > DIFF_SHOWN else []
        result['diff'] = dict(prepared='%s: %d paths written or removed:\n%s\n' % (
            path, len(lines), '\n'.join(['  ' + line for line in lines[:DIFF_SHOWN]] + more)))
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    old_cache = load_cache(p['cache'])
    staging = tempfile.mkdtemp(prefix='.%s.apim-profiles-incoming-' % name, dir=parent)
    try:
        new = os.path.join(staging, name)
        os.mkdir(new, 0o700)
        stage = build(doc, tar, data, path, new, before)
        got, count = fingerprint(new, exclude)
        if got != wanted:
            raise Refused('the staged copy has fingerprint %s, not %s: the archive does not make the expected copy'
                          % (got, wanted), 'run the play again (the archive is made anew)')
        # The old copy ends up inside staging, which goes below.
        if not before:
            os.rename(new, path)
        elif not exchange(new, path):
            os.rename(path, os.path.join(staging, '.old'))
            os.rename(new, path)
    finally:
        tar.close()
        shutil.rmtree(staging, ignore_errors=True)
    if p['remove_src']:
        os.unlink(src)
    # Written once the old copy is gone: unlinking it changed the kept files' link counts (and change times).
    if p['cache']:
        save_cache(p['cache'], kept_cache(path, stage, old_cache))
    result.update(fingerprint=wanted, entries=count, files_sent=len(stage.data), files_kept=stage.linked,
                  removed=len(doc.get('remove') or []), copy_bytes=doc.get('copy_bytes', 0), full=not doc['base'])
    return result


PACK_NAME = re.compile(r'^[0-9]+-[0-9]+(\.incoming)?$')
ARCHIVE_NAME = re.compile(r'\.(tar|tar\.gz)(\.tmp)?$|^\..*\.tar(\.gz)?\..*\.tmp$')


def prune(module, p):
    """Unzipped packs no copy is made from any more, and every archive (made per run, sent, done with)."""
    work = p['path'].rstrip('/')
    keep = set(os.path.normpath(k) for k in p['keep'])
    gone = []
    pack = os.path.join(work, 'pack')
    for name in sorted(os.listdir(pack)) if os.path.isdir(pack) else []:
        full = os.path.join(pack, name)
        if PACK_NAME.match(name) and full not in keep and not any(k.startswith(full + '/') for k in keep):
            gone.append(full)
    dist = os.path.join(work, 'dist')
    for name in sorted(os.listdir(dist)) if os.path.isdir(dist) else []:
        full = os.path.join(dist, name)
        st = os.lstat(full)
        if stat.S_ISREG(st.st_mode) and ARCHIVE_NAME.search(name):
            gone.append(full)
        elif stat.S_ISDIR(st.st_mode):
            # The archives of each whole copy that earlier versions of the role kept (dist/<profile>/).
            gone.extend(os.path.join(full, n) for n in sorted(os.listdir(full)) if ARCHIVE_NAME.search(n))
    if not module.check_mode:
        for g in gone:
            if stat.S_ISDIR(os.lstat(g).st_mode):
                shutil.rmtree(g)
            else:
                os.unlink(g)
        for name in sorted(os.listdir(dist)) if os.path.isdir(dist) else []:
            full = os.path.join(dist, name)
            if stat.S_ISDIR(os.lstat(full).st_mode) and not os.listdir(full):
                os.rmdir(full)
    return dict(changed=bool(gone), removed=gone, fingerprint='', entries=0)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='fingerprint', choices=['fingerprint', 'manifest', 'delta', 'present',
                                                                   'prune', 'verify']),
            path=dict(type='path', required=True),
            archive_dir=dict(type='path'),
            src=dict(type='path'),
            fingerprint=dict(type='str'),
            cache=dict(type='path'),
            node=dict(type='dict'),
            wanted=dict(type='dict'),
            return_manifest=dict(type='bool', default=True),
            remove_src=dict(type='bool', default=True),
            exclude=dict(type='list', elements='str', default=[]),
            compress=dict(type='bool', default=False),
            keep=dict(type='list', elements='path', default=[]),
        ),
        required_if=[
            ('state', 'delta', ['archive_dir', 'node']),
            ('state', 'present', ['src', 'fingerprint']),
            ('state', 'verify', ['wanted']),
        ],
        supports_check_mode=True,
    )
    p = module.params
    exclude = set(os.path.normpath(e.strip('/')) for e in p['exclude'])
    try:
        if p['state'] == 'fingerprint':
            fp, count = fingerprint(p['path'], exclude)
            module.exit_json(changed=False, fingerprint=fp, entries=count)
        if p['state'] == 'manifest':
            module.exit_json(**do_manifest(module, p, exclude))
        if p['state'] == 'delta':
            module.exit_json(**do_delta(module, p, exclude))
        if p['state'] == 'verify':
            module.exit_json(**do_verify(module, p, exclude))
        if p['state'] == 'prune':
            module.exit_json(**prune(module, p))
        module.exit_json(**install(module, p, exclude))
    except Refused as e:
        module.fail_json(msg='%s\nhint: %s' % (e.what, e.hint))
    except (OSError, IOError, tarfile.TarError, ValueError) as e:
        # A link where a directory was expected (ELOOP, ENOTDIR), a name already there (EEXIST), a broken archive.
        module.fail_json(msg='%s %s failed: %s\nhint: nothing was installed; check %s, then run the play again'
                         % (p['state'], p['path'], e, p['path']))


if __name__ == '__main__':
    main()
