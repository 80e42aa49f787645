"""dist_train.sh / dist_test.sh pick the interpreter: $PYTHON, else the checkout's .venv, else
python; one that cannot import torch stops the launch with the fix."""
import os
import os.path as osp
import shutil
import stat
import subprocess

import pytest

from tests.conftest import REPO_ROOT


def executable(path: str, text: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)


# A stand-in interpreter: records its arguments; "import torch" works unless told otherwise.
RECORDER = '''#!/bin/bash
echo "$@" >> "{log}"
[[ "$*" == "-c import torch" ]] && exit {torch_exit}
exit 0
'''


@pytest.fixture
def checkout(tmp_path):
    """A copy of the launchers in a checkout of their own, and a PATH whose python has no
    torch (the system Python of the issue)."""
    root = tmp_path / 'repo'
    for name in ('dist_train.sh', 'dist_test.sh', 'python_env.sh'):
        os.makedirs(root / 'tools', exist_ok=True)
        shutil.copy(osp.join(REPO_ROOT, 'tools', name), root / 'tools' / name)
    executable(str(tmp_path / 'bin' / 'python'),
               RECORDER.format(log=tmp_path / 'system.log', torch_exit=1))
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'VIRTUAL_ENV')}
    env['PATH'] = f'{tmp_path / "bin"}{os.pathsep}/usr/bin{os.pathsep}/bin'
    return root, env


def launch(root, env, *args):
    return subprocess.run(['bash', str(root / 'tools' / 'dist_train.sh'), 'cfg.py', '2', *args],
                          env=env, capture_output=True, text=True, timeout=60)


def test_the_checkout_venv_is_used_without_activation(checkout):
    root, env = checkout
    venv_log = root / 'venv.log'
    executable(str(root / '.venv' / 'bin' / 'python'),
               RECORDER.format(log=venv_log, torch_exit=0))
    result = launch(root, env, '--work-dir', 'w')
    assert result.returncode == 0, result.stderr
    calls = venv_log.read_text().splitlines()
    assert calls[0] == '-c import torch'
    assert calls[1].startswith('-m torch.distributed.run --nnodes=1')
    assert calls[1].endswith('train.py cfg.py --launcher pytorch --work-dir w')
    # dist_test.sh the same way
    result = subprocess.run(['bash', str(root / 'tools' / 'dist_test.sh'), 'cfg.py', 'c.pth',
                             '2'], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert venv_log.read_text().splitlines()[-1].endswith('test.py cfg.py c.pth --launcher pytorch')


def test_an_interpreter_without_torch_stops_with_the_fix(checkout):
    root, env = checkout
    result = launch(root, env)
    assert result.returncode == 1
    assert "'python' cannot import torch" in result.stderr
    assert 'tools/setup_env.sh' in result.stderr and 'PYTHON=' in result.stderr


def test_PYTHON_wins(checkout, tmp_path):
    root, env = checkout
    executable(str(root / '.venv' / 'bin' / 'python'),
               RECORDER.format(log=root / 'venv.log', torch_exit=0))
    executable(str(tmp_path / 'mine' / 'python'),
               RECORDER.format(log=tmp_path / 'mine.log', torch_exit=0))
    result = launch(root, dict(env, PYTHON=str(tmp_path / 'mine' / 'python')))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'mine.log').exists() and not (root / 'venv.log').exists()
