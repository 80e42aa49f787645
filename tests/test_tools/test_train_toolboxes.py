"""A few Runner iterations per toolbox (GENERATED tiny data) that lower the loss."""
import numpy as np
import pytest
from mmengine.runner import Runner

from tests.conftest import load_config, save_teacher


@pytest.mark.parametrize('toolbox,lr', [('seg', 0.05), ('det', 0.01), ('cls', 0.05)])
def test_distillation_lowers_the_loss(toolbox, lr, data_roots, tmp_path):
    ckpt = save_teacher(f'tiny_{toolbox}_teacher', str(tmp_path / 'teacher.pth'))
    cfg = load_config(
        f'tiny_{toolbox}_distill', data_roots[toolbox], str(tmp_path / 'work'),
        **{'model.teacher_ckpt': ckpt, 'train_cfg.max_iters': 16,
           'train_cfg.val_interval': 16, 'param_scheduler': [],
           'optim_wrapper.optimizer.lr': lr,
           'train_dataloader.sampler.shuffle': False,
           'default_hooks.checkpoint.interval': 100})
    runner = Runner.from_cfg(cfg)
    runner.train()
    history = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(history) == 16
    assert np.all(np.isfinite(history))
    # Every generated training set is 4 batches; with shuffle off, the first and the last
    # epoch see the same batches, so their mean losses compare fairly.
    assert history[-4:].mean() < history[:4].mean(), history
    distill_keys = [k for k in runner.message_hub.log_scalars if k.startswith('train/distill.')]
    assert distill_keys, 'distillation losses must be logged'
