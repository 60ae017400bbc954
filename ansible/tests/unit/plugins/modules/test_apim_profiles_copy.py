# The transport module's own cases, on real files in temp directories (pytest, run by ansible/test.sh with the
# virtual environment's python): a delta moves only what differs and never writes into the live copy,
# and an archive that names a path outside the copy, an absolute path or a link member is refused
# with nothing written outside; a node's copy is verified against the controller's manifest.
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import unittest

from module_loader import load

mod = load('apim_profiles_copy')


class Failed(Exception):
    pass


class Module(object):
    check_mode = False
    _diff = False

    def __init__(self, diff=False, check=False):
        self._diff, self.check_mode = diff, check

    def fail_json(self, msg, **kw):
        self.failed = kw
        raise Failed(msg)


def params(**kw):
    p = dict(path=None, src=None, fingerprint=None, cache=None, node=None, wanted=None, return_manifest=True,
             remove_src=True,
             compress=False, archive_dir=None, keep=[], exclude=[])
    p.update(kw)
    return p


def write(path, text, mode=0o644, mtime=1700000000):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, mode)
    os.utime(path, (mtime, mtime))


class Delta(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.ctl = os.path.join(self.tmp, 'ctl', 'home')
        self.dest = os.path.join(self.tmp, 'node')
        self.node = os.path.join(self.dest, 'home')
        os.makedirs(self.dest)
        write(os.path.join(self.ctl, 'conf', 'deployment.toml'), 'a = 1\n')
        write(os.path.join(self.ctl, 'lib', 'big.jar'), 'x' * 100000)
        write(os.path.join(self.ctl, 'lib', 'gone.jar'), 'old')
        write(os.path.join(self.ctl, 'bin', 'run.sh'), '#!/bin/sh\n', 0o750)
        os.symlink('run.sh', os.path.join(self.ctl, 'bin', 'start.sh'))
        os.utime(os.path.join(self.ctl, 'bin', 'start.sh'), ns=(1600000000000000001, 1600000000000000001),
                 follow_symlinks=False)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def roll(self):
        """The role's steps: the node's manifest, the delta, the install."""
        m = Module()
        want = mod.do_manifest(m, params(path=self.ctl, return_manifest=False), set())
        cache = os.path.join(self.dest, '.home.manifest.json')
        there = mod.do_manifest(m, params(path=self.node, cache=cache, fingerprint=want['fingerprint']), set())
        if there['fingerprint'] == want['fingerprint']:
            return None, None
        delta = mod.do_delta(m, params(path=self.ctl, node=there, archive_dir=os.path.join(self.tmp, 'dist')), set())
        src = os.path.join(self.dest, '.home.delta.tar')
        shutil.copy(delta['archive'], src)
        done = mod.install(m, params(path=self.node, src=src, fingerprint=want['fingerprint'], cache=cache), set())
        return delta, done

    def test_only_what_differs_moves_and_the_rest_keeps_its_inode(self):
        delta, done = self.roll()
        self.assertTrue(delta['full'])
        big = os.path.join(self.node, 'lib', 'big.jar')
        toml = os.path.join(self.node, 'conf', 'deployment.toml')
        before = os.stat(big)
        live_toml = os.open(toml, os.O_RDONLY)
        write(os.path.join(self.ctl, 'conf', 'deployment.toml'), 'a = 2\n', mtime=1700000100)
        os.unlink(os.path.join(self.ctl, 'lib', 'gone.jar'))
        os.chmod(os.path.join(self.ctl, 'bin', 'run.sh'), 0o700)
        delta, done = self.roll()
        self.assertFalse(delta['full'])
        self.assertEqual((delta['files_sent'], delta['removed']), (1, 1))
        self.assertLess(delta['bytes_moved'], 20000)
        self.assertGreater(delta['copy_bytes'], 100000)
        after = os.stat(big)
        self.assertEqual((before.st_ino, before.st_mtime_ns), (after.st_ino, after.st_mtime_ns))
        # The live file was never written: the old inode still holds the old content.
        self.assertEqual(os.read(live_toml, 100), b'a = 1\n')
        os.close(live_toml)
        with open(toml) as f:
            self.assertEqual(f.read(), 'a = 2\n')
        self.assertFalse(os.path.exists(os.path.join(self.node, 'lib', 'gone.jar')))
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.node, 'bin', 'run.sh')).st_mode), 0o700)
        self.assertEqual(os.readlink(os.path.join(self.node, 'bin', 'start.sh')), 'run.sh')
        link_times = [os.lstat(os.path.join(d, 'bin', 'start.sh')).st_mtime_ns for d in (self.ctl, self.node)]
        self.assertEqual(link_times[0], link_times[1])
        self.assertEqual(sorted(os.listdir(self.dest)), ['.home.manifest.json', 'home'])
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.dest, '.home.manifest.json')).st_mode), 0o600)
        self.assertEqual(self.roll(), (None, None))

    def test_cached_hashes_are_read_again_for_an_edited_file(self):
        self.roll()
        cache = os.path.join(self.dest, '.home.manifest.json')
        node_toml = os.path.join(self.node, 'conf', 'deployment.toml')
        st = os.stat(node_toml)
        with open(node_toml, 'w') as f:
            f.write('a = 9\n')  # the same size
        os.utime(node_toml, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same time: only ctime tells
        got = mod.do_manifest(Module(), params(path=self.node, cache=cache), set())
        self.assertEqual(got['hashed'], 1)
        self.assertNotEqual(got['manifest']['conf/deployment.toml'][7],
                            mod.do_manifest(Module(), params(path=self.ctl), set())['manifest']['conf/deployment.toml'][7])

    def crafted(self, changes, members=(), base=''):
        """An archive as an attacker would make it, for the copy the node expects."""
        want = mod.fingerprint(self.ctl)[0]
        doc = dict(format=mod.FORMAT, version=1, name='home', fingerprint=want, base=base, root=[0o755, 0, 0],
                   changes=changes, remove=[], copy_bytes=0)
        src = os.path.join(self.dest, '.home.delta.tar')
        with tarfile.open(src, 'w') as tar:
            data = json.dumps(doc).encode()
            info = tarfile.TarInfo('delta.json')
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            for m in members:
                tar.addfile(m, io.BytesIO(b'evil') if m.isreg() else None)
        return src, want

    def refused(self, src, want, words):
        before = sorted(os.listdir(self.tmp))
        with self.assertRaises((mod.Refused, Failed, OSError)) as e:
            mod.install(Module(), params(path=self.node, src=src, fingerprint=want), set())
        self.assertIn(words, str(e.exception))
        self.assertEqual(sorted(os.listdir(self.tmp)), before)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'escaped')))
        self.assertFalse(any('incoming' in n for n in os.listdir(self.dest)))

    def test_a_path_leaving_the_copy_is_refused(self):
        e = ['../../escaped', 'f', 0o644, 0, 0, 4, 0, '', 'x', 'data']
        self.refused(*self.crafted([e], [tarfile.TarInfo('data/0')]), words='outside the copy')

    def test_an_absolute_path_is_refused(self):
        e = [os.path.join(self.tmp, 'escaped'), 'f', 0o644, 0, 0, 4, 0, '', 'x', 'data']
        self.refused(*self.crafted([e]), words='outside the copy')

    def test_a_link_member_is_refused(self):
        link = tarfile.TarInfo('data/0')
        link.type, link.linkname = tarfile.SYMTYPE, '/etc/passwd'
        self.refused(*self.crafted([], [link]), words='a link')

    def test_a_link_in_the_node_copy_is_never_followed(self):
        self.roll()
        outside = os.path.join(self.tmp, 'outside')
        os.mkdir(outside)
        os.symlink(outside, os.path.join(self.node, 'lib', 'evil'))
        base = mod.fingerprint(self.node)[0]
        m = tarfile.TarInfo('data/0')
        m.size = 4
        e = ['lib/evil/x', 'f', 0o644, 0, 0, 4, 0, '', 'x', 'data']
        src, want = self.crafted([e], [m], base=base)
        with self.assertRaises(OSError):
            mod.install(Module(), params(path=self.node, src=src, fingerprint=want), set())
        self.assertEqual(os.listdir(outside), [])
        self.assertTrue(os.path.islink(os.path.join(self.node, 'lib', 'evil')))


class NodeSide(Delta):
    """What a node can check and show with Python only: its copy against the controller's manifest (state verify),
    and what differs, by path, in check mode with --diff."""

    def verify(self, cache=None):
        m = Module()
        wanted = mod.do_manifest(m, params(path=self.ctl), set())
        try:
            return mod.do_verify(m, params(path=self.node, wanted=wanted, cache=cache), set()), None
        except Failed as e:
            return m.failed, str(e)

    def test_verify_finds_content_mode_and_planted_entries(self):
        cache = os.path.join(self.dest, '.home.manifest.json')
        self.roll()
        result, msg = self.verify(cache)
        self.assertIsNone(msg)
        self.assertEqual(result['differences'], [])
        # An edit that keeps the size and the time (the cache's inode and change time give it away), a mode
        # change, a planted file: each named, by path.
        toml = os.path.join(self.node, 'conf', 'deployment.toml')
        write(toml, 'a = 9\n')
        os.chmod(os.path.join(self.node, 'bin', 'run.sh'), 0o755)
        write(os.path.join(self.node, 'lib', 'planted.jar'), 'x')
        result, msg = self.verify(cache)
        got = dict((d['path'], d.get('what') or d['change']) for d in result['differences'])
        self.assertEqual(got, {'conf/deployment.toml': ['content'], 'bin/run.sh': ['mode (755, not 750)'],
                               'lib/planted.jar': 'added'})
        self.assertIn('differs from the copy made on the controller: bin/run.sh mode (755, not 750) (and 2 more', msg)
        # A node without the copy.
        shutil.rmtree(self.node)
        result, msg = self.verify(cache)
        self.assertIn('there is no copy on this host', msg)

    def test_check_mode_diff_lists_the_changed_paths(self):
        self.roll()
        write(os.path.join(self.node, 'conf', 'deployment.toml'), 'tampered\n')
        os.unlink(os.path.join(self.node, 'lib', 'gone.jar'))
        write(os.path.join(self.node, 'lib', 'extra.jar'), 'x')
        m = Module(diff=True, check=True)
        want = mod.do_manifest(m, params(path=self.ctl, return_manifest=False), set())
        there = mod.do_manifest(m, params(path=self.node, fingerprint=want['fingerprint']), set())
        delta = mod.do_delta(m, params(path=self.ctl, node=there, archive_dir=os.path.join(self.tmp, 'd')), set())
        text = delta['diff']['prepared']
        self.assertIn('3 paths to change on the node', text)
        for line in ('conf/deployment.toml: content', 'lib/extra.jar: removed', 'lib/gone.jar: added'):
            self.assertIn('  ' + line + '\n', text)
        self.assertNotIn(want['fingerprint'], text)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'd')))
