# The collection's modules as the tests load them: from APIM_MODULES (ansible/test.sh points it at the
# collection installed from its tarball), else from this repository's plugins/modules; the update tool double
# and apim-profiles from APIM_BIN, for the tests that run the real binary (skipped, visibly, without it).
import importlib.util
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..', '..'))
MODULES = os.environ.get('APIM_MODULES') or os.path.join(ROOT, 'ansible', 'plugins', 'modules')
DOUBLE = os.path.join(ROOT, 'fixtures', 'update-tool', 'wso2update_linux')
FIXTURE = os.path.join(ROOT, 'fixtures', 'wso2am-4.2.0')


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(MODULES, name + '.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def path_of(name):
    return os.path.join(MODULES, name + '.py')


def spawn(name, args, env=None, **internal):
    """The module run as Ansible runs it on a host: its own process, the arguments on standard input (to write)."""
    params = dict(args)
    params.update(('_ansible_' + k, v) for k, v in internal.items())
    proc = subprocess.Popen([sys.executable, path_of(name)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, **(env or {})))
    return proc, json.dumps(dict(ANSIBLE_MODULE_ARGS=params)).encode('utf-8')


def start(name, args, env=None, **internal):
    proc, data = spawn(name, args, env, **internal)
    proc.stdin.write(data)
    proc.stdin.close()
    return proc


def run(name, args, env=None, **internal):
    """(result, stdout, stderr) of one module run."""
    proc, data = spawn(name, args, env, **internal)
    out, err = proc.communicate(data, timeout=120)
    try:
        result = json.loads(out)
    except ValueError:
        raise AssertionError('no JSON from the module: %s %s' % (out, err))
    return result, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
