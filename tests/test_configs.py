"""Every shipped config builds with the stock toolboxes and runs one distillation step."""
import copy
import glob
import os.path as osp
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from mmstructkd.testing.fake_batch import fake_batch
from tests.conftest import REPO_ROOT

ALL_CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', '*', '*.py')))
#: Distillation configs, by their method (the name's first field, variants after a hyphen:
#: ``kd-teacher-cache_...``, ``stkd-clean_...``); the rest are plain teacher/student configs.
KD_METHODS = ('kd', 'fitnets', 'structkd', 'cwd', 'reviewkd', 'stkd', 'cls2det')
KD_CONFIGS = [p for p in ALL_CONFIGS
              if osp.basename(p).split('_')[0].split('-')[0] in KD_METHODS]
PLAIN_CONFIGS = [p for p in ALL_CONFIGS if p not in KD_CONFIGS]


def fake_input_size(cfg) -> int:
    """Side of the fake images: SSD300's VGG needs its ``input_size``; a pair-wise term on every
    FPN level needs P7 (1/128) of at least 2x2 (a one-node graph is an error); else 64."""
    if 'input_size' in cfg:
        return cfg.input_size
    losses = cfg.model.get('distill_losses') or {}
    pair_on_fpn = cfg.default_scope == 'mmdet' and any(
        loss.get('type') == 'PairWiseLoss' for loss in losses.values())
    return 256 if pair_on_fpn else 64


def build_kd_model(path, tmp_path, init_weights=False):
    """The config's distiller, as the Runner builds it, in train mode (teacher without its
    released checkpoint, which needs internet). ``init_weights``: initialise as the Runner does
    (the configs' own init schemes; ``Pretrained`` weights, which need internet, not loaded)."""
    cfg = Config.fromfile(path)
    assert cfg.model.type.startswith('mmstructkd.')
    cfg.model.teacher_ckpt = None
    if cfg.model.get('teacher_cache'):
        cfg.model.teacher_cache.dir = str(tmp_path / 'teacher_cache')
    if cfg.get('data_preprocessor'):  # mmpretrain keeps it at the top level: as the Runner does
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    if cfg.default_scope == 'mmseg':  # keep the time small: pad to 64x64, not 512x1024
        student = cfg.model.student
        if 'data_preprocessor' not in student:  # student given by cfg_path: an override
            student.data_preprocessor = dict()
        student.data_preprocessor.size = (64, 64)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        if init_weights:
            from mmengine.model.weight_init import PretrainedInit
            with mock.patch.object(PretrainedInit, '__call__', lambda self, module: None):
                model.init_weights()
    model.train()
    return cfg, model


@pytest.mark.parametrize('path', KD_CONFIGS, ids=osp.basename)
def test_kd_config_builds_and_runs_one_step(path, tmp_path):
    # Initialised as the Runner would: SSD300's VGG at PyTorch's default init gives logits of
    # 1e28-1e36 that can overflow.
    cfg, model = build_kd_model(path, tmp_path, init_weights=True)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        batch = fake_batch(cfg, model, size=fake_input_size(cfg))
        losses = model(**batch, mode='loss')
    distill = [k for k in losses if k.startswith('distill.')]
    assert distill and all(torch.isfinite(losses[k]) for k in distill)


def set_warmup_lr(cfg, optim_wrapper):
    """Scale the learning rates to what the config's LinearLR warm-up sets at iteration 0, as
    the Runner would (SSD300 from scratch diverges within two steps at its full rate)."""
    schedulers = cfg.get('param_scheduler') or []
    factor = next((s.get('start_factor', 1 / 3) for s in schedulers
                   if isinstance(s, dict) and s.get('type') == 'LinearLR'), 1.0)
    wrappers = getattr(optim_wrapper, 'optim_wrappers', {'': optim_wrapper}).values()
    for wrapper in wrappers:
        for group in wrapper.optimizer.param_groups:
            group['lr'] *= factor


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
@pytest.mark.parametrize('path', KD_CONFIGS, ids=osp.basename)
def test_kd_config_trains_on_cuda(path, tmp_path):
    train_three_steps(path, tmp_path, 'cuda')


#: Small configs whose training steps also run on the CPU, so CI exercises the check above.
CPU_TRAIN_CONFIGS = [p for p in KD_CONFIGS if osp.basename(p).startswith(
    ('kd_resnet18-w32', 'reviewkd_retinanet-mnv2', 'structkd_pixel-pair-holistic_aspp'))]


@pytest.mark.parametrize('path', CPU_TRAIN_CONFIGS, ids=osp.basename)
def test_kd_config_trains_on_cpu(path, tmp_path):
    train_three_steps(path, tmp_path, 'cpu')


def train_three_steps(path, tmp_path, device):
    """Three optimizer steps of a config on ``device``, through ``train_step`` with the config's
    own optimizer wrapper (two for adversarial configs) at its warm-up learning rate: finite
    losses, the student moves, the teacher (weights and BN statistics) does not, and every
    parameter stays on ``device``."""
    from mmengine.optim import build_optim_wrapper

    # initialised as the Runner would: SSD's VGG (no BN) explodes from PyTorch's default init
    cfg, model = build_kd_model(path, tmp_path, init_weights=True)
    model.to(device)
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in model.student.named_parameters()}
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        set_warmup_lr(cfg, optim_wrapper)
        # one batch, three times: a teacher cache checks that a key's images stay the same
        batch = fake_batch(cfg, model, size=fake_input_size(cfg), preprocess=False)
        for _ in range(3):
            log_vars = model.train_step(copy.deepcopy(batch), optim_wrapper)
    assert log_vars and all(np.isfinite(float(v)) for v in log_vars.values()), log_vars
    assert any(k.startswith('distill.') for k in log_vars)
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), f'teacher {k} changed'
    moved = [k for k, p in model.student.named_parameters()
             if not torch.equal(p, student_before[k])]
    assert moved, 'no student parameter was updated'
    assert all(p.device.type == device for p in model.parameters())


@pytest.mark.parametrize('path', PLAIN_CONFIGS, ids=osp.basename)
def test_plain_configs_build(path):
    cfg = Config.fromfile(path)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize(
    'path', sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'blockwise', 'blockwise_*.py'))),
    ids=osp.basename)
def test_compression_configs_split_their_teacher_and_list_candidates(path):
    from mmstructkd.compression import (build_candidates, build_classifier, compression_settings,
                                        split_backbone)
    cfg = Config.fromfile(path)
    settings = compression_settings(cfg)  # unknown settings are errors
    split = split_backbone(build_classifier(cfg).backbone)
    candidates = build_candidates(split, settings['search_space'])
    assert list(candidates) == split.searchable_names
    assert sum(len(c) for c in candidates.values()) > len(candidates)  # something to choose
