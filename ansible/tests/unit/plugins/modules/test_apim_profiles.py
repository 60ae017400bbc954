# The apim_profiles module's own cases (pytest, run by ansible/test.sh): its option rules as Ansible checks them
# (argument_spec) and as the module refuses what argument_spec cannot say; the TOML it writes for set, read back
# by a TOML parser; and, with the real binary (APIM_BIN) and the update tool double, how failures come back
# (a short message and fields, not the tool's report) and that the password leaves nothing behind on disk, in
# argv or in the result, even when the module is killed with SIGKILL while the update runs.
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from module_loader import DOUBLE, FIXTURE, load, run, start

mod = load('apim_profiles')
PASSWORD = 'Module-Pw-Kill-9q'
BIN = os.environ.get('APIM_BIN')
needs_bin = pytest.mark.skipif(not (BIN and os.access(BIN, os.X_OK)), reason='APIM_BIN (the apim-profiles binary) not set')


@pytest.mark.parametrize('args, words', [
    (dict(), 'state is split but all of the following are missing: home, out'),
    (dict(state='verify'), 'state is verify but all of the following are missing: copies'),
    (dict(home='/h', out='/o', copies=['/c']), 'parameters are mutually exclusive: copies|home'),
    (dict(state='update', copies=['/c'], update_zip='/z.zip', update_level='5'),
     'parameters are mutually exclusive: update_zip|update_level'),
    (dict(state='update', copies=['/c'], reflink='sometimes'), 'value of reflink must be one of: auto, always, never'),
    (dict(state='verify', copies=['/c'], **{'continue': True}),
     "the argument 'continue' (--continue) cannot be used with 'state: verify'"),
    (dict(home='/h', out='/o', update_tool='/t'),
     "the argument 'update: false' (--no-update) cannot be used with 'update_tool' (--update-tool)"),
    (dict(state='profiles', profiles=['gateway-worker']),
     "the argument 'profiles' (--profiles) cannot be used with 'state: profiles'"),
    (dict(state='update', copies=['/c'], credentials=dict(username='u', password='a\nb')),
     'credentials: the password is empty'),
])
def test_option_rules_refuse_before_the_tool_runs(args, words):
    result, out, _ = run('apim_profiles', dict(args, binary='/nonexistent/apim-profiles'))
    assert result.get('failed') and words in result['msg'], result
    assert 'does not exist' not in result['msg']


def test_the_toml_written_for_set_reads_back_as_given():
    tomllib = pytest.importorskip('tomllib')
    values = {
        'server.offset': 3, 'apim.ratio': 0.5, 'a.flag': True, 'b.list': [1, 'two', False],
        'c.inline': {'x': 1, 'odd key': 'v'}, 'd.odd key': 'q',
        'e.text': 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f é',
    }

    class Module(object):
        def fail_json(self, **kw):
            raise AssertionError(kw)

    text = mod.set_overlay(Module(), 'all', values)
    got = tomllib.loads(text)
    assert got['server']['offset'] == 3 and got['apim']['ratio'] == 0.5 and got['a']['flag'] is True
    assert got['b']['list'] == [1, 'two', False] and got['c']['inline'] == {'x': 1, 'odd key': 'v'}
    assert got['d']['odd key'] == 'q'
    assert got['e']['text'] == values['e.text']


def test_a_handed_over_file_has_no_name_on_disk(tmp_path):
    class Module(object):
        tmpdir = str(tmp_path)

    h = mod.Handover(Module())
    path = h.file('secret = "x"\n')
    fd = int(path.rsplit('/', 1)[1])
    target = os.readlink('/proc/self/fd/%d' % fd)
    assert target.startswith('/memfd:') or target.endswith('(deleted)'), target
    assert os.listdir(str(tmp_path)) == []
    # A child reads it by that name, as apim-profiles does.
    out = subprocess.check_output(['cat', path], pass_fds=[fd])
    assert out == b'secret = "x"\n'
    h.close()


@pytest.fixture
def world(tmp_path):
    """A copy of the fixture home, a split of it without the update, and a private remote temp directory."""
    home = tmp_path / 'wso2am-4.2.0'
    shutil.copytree(FIXTURE, str(home), symlinks=True)
    out = tmp_path / 'out'
    remote = tmp_path / 'remote'
    remote.mkdir()
    return dict(home=str(home), out=str(out), remote=str(remote), tmp=str(tmp_path))


def split_args(w, **kw):
    args = dict(binary=BIN, home=w['home'], out=w['out'], profiles=['gateway-worker'])
    args.update(kw)
    return args


def holds(root, secret):
    """Files below root whose bytes hold secret."""
    found = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, 'rb') as fh:
                    if secret.encode() in fh.read():
                        found.append(p)
    return found


def children(pid):
    with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
        return [int(c) for c in f.read().split()]


@needs_bin
def test_a_conflict_fails_with_a_short_message_and_the_files(world):
    creds = dict(username='ops@example.com', password=PASSWORD)
    args = split_args(world, update=True, update_order='each', update_tool=DOUBLE, credentials=creds)
    env = dict(APIM_DOUBLE_SCENARIO='conflicts', APIM_DOUBLE_EXPECT_PASSWORD=PASSWORD)
    for attempt in (1, 2):
        result, out, err = run('apim_profiles', args, env, remote_tmp=world['remote'])
        assert result.get('failed'), result
        assert 'report' not in result and 'profiles' not in result, sorted(result)
        assert len(result['msg']) < 600 and result['msg'].count('\n') <= 1, result['msg']
        assert 'stopped on conflicts' in result['msg'] and 'state: update, continue: true' in result['msg']
        assert result['rc'] in (2, 3), result
        copy = os.path.join(world['out'], 'gateway-worker', 'wso2am-4.2.0')
        p = result['pending_conflicts'][0]
        assert p['copy'] == copy and p['profile'] == 'gateway-worker', p
        assert 'repository/conf/deployment.toml' in p['files'], p
        assert os.path.join(copy, 'repository/conf/deployment.toml.final') in p['save_as'], p
        assert PASSWORD not in out + err
    # Check mode of the continue: fails until every file is resolved, then would update.
    upd = dict(binary=BIN, state='update', copies=[copy], update_tool=DOUBLE, credentials=creds,
               **{'continue': True})
    result, _, _ = run('apim_profiles', upd, env, check_mode=True, remote_tmp=world['remote'])
    assert result.get('failed') and result['pending_conflicts'][0]['copy'] == copy, result
    for f in result['pending_conflicts'][0]['save_as']:
        shutil.copy(f[:-len('.final')], f)
    result, _, _ = run('apim_profiles', upd, env, check_mode=True, remote_tmp=world['remote'])
    assert not result.get('failed') and result['profiles'] == [dict(path=copy, status='would-update')], result


@needs_bin
def test_stale_copies_fail_with_their_reasons(world):
    result, _, _ = run('apim_profiles', split_args(world), remote_tmp=world['remote'])
    assert result['changed'] and not result.get('failed'), result
    result, out, _ = run('apim_profiles', split_args(world, set={'all': {'server.offset': 7}}),
                         remote_tmp=world['remote'])
    assert result.get('failed') and result['rc'] == 2, result
    assert 'report' not in result and 'force: true' in result['msg'], result
    # The message is the tool's one line and hint; the reasons, per copy, are a field.
    stale = result['stale']
    assert [s['profile'] for s in stale] == ['gateway-worker'], stale
    assert any('made with other options' in r for r in stale[0]['reasons']), stale
    # A changed source home too: both reasons, each its own line.
    with open(os.path.join(world['home'], 'README.txt'), 'a') as f:
        f.write('changed\n')
    result, out, _ = run('apim_profiles', split_args(world, set={'all': {'server.offset': 7}}),
                         remote_tmp=world['remote'])
    reasons = result['stale'][0]['reasons']
    assert len(reasons) == 2 and any('source home changed' in r for r in reasons), reasons


@needs_bin
def test_sigkill_of_the_module_leaves_no_password_behind(world):
    """#25: the module killed with SIGKILL while the update runs: no file anywhere below the test's directory
    (the module's remote temp included) holds the password, and no process had it in its argv."""
    r = subprocess.run([BIN, 'split', world['home'], '--out', world['out'], '--no-update', '--profiles',
                        'gateway-worker', '--json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    copy = os.path.join(world['out'], 'gateway-worker', 'wso2am-4.2.0')
    args = dict(binary=BIN, state='update', copies=[copy], update_tool=DOUBLE,
                credentials=dict(username='ops@example.com', password=PASSWORD))
    env = dict(APIM_DOUBLE_SLEEP='30', APIM_DOUBLE_EXPECT_PASSWORD=PASSWORD)
    proc = start('apim_profiles', args, env, remote_tmp=world['remote'])
    tool = None
    try:
        deadline = time.time() + 60
        while time.time() < deadline and tool is None:
            time.sleep(0.1)
            for c in children(proc.pid):
                # apim-profiles, once the update tool it launched asked for and got the password.
                if os.path.exists(os.path.join(copy, 'bin', 'wso2update_linux')) and children(c):
                    tool = c
        assert tool is not None, 'the update never started'
        time.sleep(1.5)
        procs = [tool] + children(tool)
        for pid in procs:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                assert PASSWORD.encode() not in f.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        left = holds(world['tmp'], PASSWORD)
        assert left == [], 'the password is on disk after a SIGKILL of the module: %s' % left
    finally:
        if proc.poll() is None:
            proc.kill()
        if tool is not None:
            os.kill(tool, signal.SIGTERM)
            for _ in range(100):
                if not os.path.exists('/proc/%d' % tool):
                    break
                time.sleep(0.1)
