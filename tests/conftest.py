"""Shared fixtures: GENERATED tiny datasets (mmstructkd.testing) and config loading."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmstructkd  # noqa: F401  (registers the modules)
from mmstructkd.testing import make_cls_dataset, make_det_dataset, make_seg_dataset

CONFIG_DIR = osp.join(osp.dirname(__file__), 'data', 'configs')
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

torch.set_num_threads(2)


@pytest.fixture(scope='session')
def data_roots(tmp_path_factory):
    """Tiny generated datasets for the three toolboxes, written once per test session."""
    root = tmp_path_factory.mktemp('shapes')
    return dict(
        seg=make_seg_dataset(str(root / 'seg'), dict(train=16, val=8), size=64, seed=0),
        det=make_det_dataset(str(root / 'det'), dict(train=16, val=8), size=64, seed=1),
        cls=make_cls_dataset(str(root / 'cls'), dict(train=32, val=16), size=32, seed=2))


def load_config(name: str, data_root: str, work_dir: str, **options) -> Config:
    """Load ``tests/data/configs/<name>.py`` pointed at ``data_root`` and ``work_dir``."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        if 'ann_file' in cfg[evaluator]:
            cfg[evaluator].ann_file = osp.join(data_root, 'annotations', 'val.json')
    cfg.work_dir = work_dir
    cfg.merge_from_dict(options)
    return cfg
