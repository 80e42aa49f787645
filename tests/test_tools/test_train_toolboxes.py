"""A few Runner iterations per toolbox (GENERATED tiny data) that lower the loss, and end with
a student closer to the teacher than the same student trained alone."""
import numpy as np
import pytest
from mmengine.runner import Runner

from tests.conftest import distill_loss_on, load_config, save_teacher


@pytest.mark.parametrize('toolbox,lr', [('seg', 0.05), ('det', 0.01), ('cls', 0.05)])
def test_distillation_lowers_the_loss(toolbox, lr, data_roots, tmp_path):
    ckpt = save_teacher(f'tiny_{toolbox}_teacher', str(tmp_path / 'teacher.pth'))
    runners = {}
    for variant in ('distilled', 'alone'):
        cfg = load_config(
            f'tiny_{toolbox}_distill', data_roots[toolbox], str(tmp_path / variant),
            **{'model.teacher_ckpt': ckpt, 'train_cfg.max_iters': 16,
               'train_cfg.val_interval': 16, 'param_scheduler': [],
               'optim_wrapper.optimizer.lr': lr,
               'train_dataloader.sampler.shuffle': False,
               'default_hooks.checkpoint.interval': 100})
        runner = runners[variant] = Runner.from_cfg(cfg)
        if variant == 'alone':  # the same run, every distillation term off
            runner.model.loss_scales.update({k: 0.0 for k in runner.model.loss_scales})
        runner.train()
    hub = runners['distilled'].message_hub
    history = hub.get_scalar('train/loss').data[0]
    assert len(history) == 16
    assert np.all(np.isfinite(history))
    # Every generated training set is 4 batches; with shuffle off, the first and the last
    # epoch see the same batches, so their mean losses compare fairly.
    assert history[-4:].mean() < history[:4].mean(), history
    distill_keys = [k for k in hub.log_scalars if k.startswith('train/distill.')]
    assert distill_keys, 'distillation losses must be logged'
    # The student's own loss falls without a teacher too (and on these toy teachers the
    # distillation terms can rise while the student leaves its random start): what the terms
    # do shows against the same student trained alone, on a training batch.
    batch = next(iter(runners['distilled'].train_dataloader))
    distilled, alone = (distill_loss_on(runners[v], batch) for v in ('distilled', 'alone'))
    assert distilled < alone, (distilled, alone)
