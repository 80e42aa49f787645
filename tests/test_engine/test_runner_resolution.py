"""SafeRunner.from_cfg (what a toolbox's own train.py builds with runner_type=
'mmstructkd.SafeRunner', and tools/train.py) resolves the config's top-level variables and
checks the schedule."""
import os.path as osp

from mmengine.config import Config

from mmstructkd.engine import SafeRunner
from mmstructkd.engine.hooks import ScheduleCheckHook
from tests.conftest import CONFIG_DIR


def test_from_cfg_resolves_a_child_config(data_roots, tmp_path):
    child = tmp_path / 'mine.py'
    child.write_text(f"_base_ = [{osp.join(CONFIG_DIR, 'tiny_seg_distill.py')!r}]\n"
                     f"data_root = {data_roots['seg']!r}\n")
    cfg = Config.fromfile(str(child))
    cfg.work_dir = str(tmp_path / 'work')
    assert cfg.train_dataloader.dataset.data_root == 'data/shapes_seg'  # the base's
    runner = SafeRunner.from_cfg(cfg)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert runner.cfg[loader].dataset.data_root == data_roots['seg']
    assert len(runner.train_dataloader.dataset) == 16  # the generated data was found
    assert cfg.train_dataloader.dataset.data_root == 'data/shapes_seg'  # the caller's: a copy
    assert any(isinstance(hook, ScheduleCheckHook) for hook in runner.hooks)
