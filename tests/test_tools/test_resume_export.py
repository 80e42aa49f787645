"""Resume continues exactly; the student exports into the stock model with strict=True."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from mmstructkd.engine import SafeRunner

from tests.conftest import CONFIG_DIR, REPO_ROOT, load_config, save_teacher

MAX_ITERS = 8


@pytest.fixture(scope='module')
def seg_run(data_roots, tmp_path_factory):
    """An uninterrupted 8-iteration distillation with checkpoints at 4 and 8."""
    tmp = tmp_path_factory.mktemp('seg_run')
    ckpt = save_teacher('tiny_seg_teacher', str(tmp / 'teacher.pth'))
    options = {'model.teacher_ckpt': ckpt, 'train_cfg.max_iters': MAX_ITERS,
               'train_cfg.val_interval': MAX_ITERS, 'default_hooks.checkpoint.interval': 4}
    runner = SafeRunner.from_cfg(load_config('tiny_seg_distill', data_roots['seg'],
                                             str(tmp / 'full'), **options))
    runner.train()
    return dict(runner=runner, options=options, tmp=tmp,
                state={k: v.clone() for k, v in runner.model.state_dict().items()})


def test_resume_continues_with_identical_state(seg_run, data_roots):
    ckpt4 = osp.join(seg_run['tmp'], 'full', 'iter_4.pth')
    # SafeRunner's checkpoints are plain data: torch's default weights_only=True reads them,
    # with nothing added to its allow-list.
    checkpoint = torch.load(ckpt4, map_location='cpu', weights_only=True)
    assert checkpoint['meta']['iter'] == 4
    cfg = load_config('tiny_seg_distill', data_roots['seg'], str(seg_run['tmp'] / 'resumed'),
                      **seg_run['options'])
    cfg.resume, cfg.load_from = True, ckpt4
    runner = SafeRunner.from_cfg(cfg)
    runner.train()
    assert runner.iter == MAX_ITERS
    # Only iterations 5..8 ran after the resume.
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == MAX_ITERS
    # The same weights as the uninterrupted run: model, momentum and LR schedule restored.
    for k, v in runner.model.state_dict().items():
        assert torch.equal(v, seg_run['state'][k]), k
    full_opt = seg_run['runner'].optim_wrapper.state_dict()
    resumed_opt = runner.optim_wrapper.state_dict()
    for idx, state in full_opt['state'].items():
        assert torch.equal(resumed_opt['state'][idx]['momentum_buffer'],
                           state['momentum_buffer'])
    assert runner.param_schedulers[0].last_step == seg_run['runner'].param_schedulers[0].last_step
    # The resumed run writes its own student files and leaves those of the first run alone.
    assert osp.isfile(osp.join(seg_run['tmp'], 'resumed', f'iter_{MAX_ITERS}_student.pth'))
    first = torch.load(osp.join(seg_run['tmp'], 'full', 'iter_4_student.pth'), weights_only=True)
    assert first['meta']['iter'] == 4


def build_stock_student() -> torch.nn.Module:
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_seg_student.py'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg.model)


def test_export_student_loads_strictly_into_the_stock_model(seg_run):
    ckpt = osp.join(seg_run['tmp'], 'full', f'iter_{MAX_ITERS}.pth')
    out = osp.join(seg_run['tmp'], 'student.pth')
    subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'export_student.py'), ckpt,
                    out, '--config', osp.join(CONFIG_DIR, 'tiny_seg_distill.py')],
                   check=True, cwd=REPO_ROOT)
    student = build_stock_student()
    exported = torch.load(out, map_location='cpu', weights_only=True)
    student.load_state_dict(exported['state_dict'], strict=True)
    # The export carries no config text from the checkpoint, but the student's config as data.
    assert 'cfg' not in exported['meta'] and 'config' not in exported['meta']
    assert exported['meta']['student_config']['type'] == 'EncoderDecoder'
    assert exported['meta']['student_config']['decode_head']['num_classes'] == 4
    trained = seg_run['runner'].model.student.state_dict()
    for k, v in student.state_dict().items():
        assert torch.equal(v, trained[k]), k


def test_student_checkpoint_hook_writes_loadable_student_files(seg_run):
    for it in (4, MAX_ITERS):
        path = osp.join(seg_run['tmp'], 'full', f'iter_{it}_student.pth')
        state = torch.load(path, map_location='cpu', weights_only=True)
        assert state['meta']['iter'] == it
        build_stock_student().load_state_dict(state['state_dict'], strict=True)


def test_export_refuses_a_checkpoint_that_is_not_a_distillers(seg_run, tmp_path):
    plain = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=build_stock_student().state_dict()), plain)
    result = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'export_student.py'),
                             plain, str(tmp_path / 'out.pth')], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode != 0
    assert 'not a checkpoint of a mmstructkd distiller' in result.stderr
