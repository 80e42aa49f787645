"""The CLI as users run it: tools/train.py, dist_train.sh (2 CPU processes, gloo), and the
training script that ships inside mmseg, through custom_imports alone."""
import os
import os.path as osp
import subprocess
import sys

import mmseg
import pytest
import torch

from tests.conftest import CONFIG_DIR, REPO_ROOT, free_port, save_teacher


def data_options(data_root: str, ckpt: str, iters: int = 4) -> list:
    return [
        f'model.teacher_ckpt={ckpt}', f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}', f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={iters}',
        'param_scheduler=[]'
    ]


def run(cmd, **kwargs):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def test_train_then_test_with_the_cli(data_roots, tmp_path):
    ckpt = save_teacher('tiny_seg_teacher', str(tmp_path / 'teacher.pth'))
    config = osp.join(CONFIG_DIR, 'tiny_seg_distill.py')
    work = str(tmp_path / 'work')
    run([sys.executable, 'tools/train.py', config, '--work-dir', work, '--cfg-options',
         *data_options(data_roots['seg'], ckpt)])
    assert osp.isfile(osp.join(work, 'iter_4.pth'))
    # Testing needs no teacher checkpoint: the tested checkpoint holds every weight.
    missing = str(tmp_path / 'teacher_deleted.pth')
    result = run([sys.executable, 'tools/test.py', config, osp.join(work, 'iter_4.pth'),
                  '--work-dir', work, '--cfg-options', *data_options(data_roots['seg'], missing)])
    assert 'mIoU' in result.stdout + result.stderr


@pytest.mark.parametrize('config', ['tiny_seg_distill', 'tiny_seg_adversarial'])
def test_dist_train_two_cpu_processes(config, data_roots, tmp_path):
    ckpt = save_teacher('tiny_seg_teacher', str(tmp_path / 'teacher.pth'))
    work = str(tmp_path / 'work')
    os.environ['PORT'] = str(free_port())
    try:
        result = run(['bash', 'tools/dist_train.sh', osp.join(CONFIG_DIR, f'{config}.py'),
                      '2', '--work-dir', work, '--cfg-options',
                      *data_options(data_roots['seg'], ckpt)])
    finally:
        os.environ.pop('PORT')
    assert osp.isfile(osp.join(work, 'iter_4.pth')), result.stderr[-3000:]
    assert 'Distributed training is not used' not in result.stdout + result.stderr
    state = torch.load(osp.join(work, 'iter_4.pth'), map_location='cpu', weights_only=True)
    assert state['meta']['iter'] == 4
    if config == 'tiny_seg_adversarial':  # both optimizers of the DDP run are saved
        assert set(state['optimizer']) == {'generator', 'discriminator'}


def test_mmseg_own_train_script_runs_a_mmstructkd_config(data_roots, tmp_path):
    script = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')
    assert osp.isfile(script), 'mmseg ships its tools under .mim/tools'
    ckpt = save_teacher('tiny_seg_teacher', str(tmp_path / 'teacher.pth'))
    work = str(tmp_path / 'work')
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)  # only the installed mmstructkd, found by custom_imports
    result = subprocess.run(
        [sys.executable, script, osp.join(CONFIG_DIR, 'tiny_seg_distill.py'), '--work-dir',
         work, '--cfg-options', *data_options(data_roots['seg'], ckpt)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    assert osp.isfile(osp.join(work, 'iter_4.pth'))
