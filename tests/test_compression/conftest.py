"""Tiny teachers for the compression tests: configs on a generated 3-class dataset; the
``main`` of tools/compress.py."""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmstructkd.compression import build_classifier
from mmstructkd.testing import make_cls_dataset
from tests.conftest import CONFIG_DIR, REPO_ROOT

#: Backbones of the tiny teachers (head input channels follow).
BACKBONES = dict(
    resnet_cifar=(dict(type='ResNet_CIFAR', depth=18, stem_channels=8, base_channels=8), 64),
    mobilenet_v2=(dict(type='MobileNetV2', widen_factor=0.25), 1280),
)


@pytest.fixture(scope='session')
def cls_root(tmp_path_factory):
    """A generated 3-class dataset (16x16 shapes: cheap on a busy CPU), 16 train / 8 val."""
    return make_cls_dataset(str(tmp_path_factory.mktemp('bw_cls')), dict(train=16, val=8),
                            size=16, seed=3)


def write_teacher(kind: str, root: str, out_dir: str) -> tuple:
    """Write a tiny teacher config (with a fast ``compression`` section) and a checkpoint of
    its initial weights; return (config path, checkpoint path)."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_cls_student.py'))
    backbone, channels = BACKBONES[kind]
    cfg.model.backbone = backbone
    cfg.model.head.in_channels = channels
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
    cfg.train_dataloader.batch_size = 4
    cfg.val_dataloader.batch_size = cfg.test_dataloader.batch_size = 8
    cfg.train_cfg.max_iters = 2
    # A small search space and two block-wise iterations: the tests check the plumbing.
    cfg.compression = dict(
        input_size=(16, 16),
        search_space=dict(
            ResidualStage=dict(type='ResidualSpace', bottleneck_expansions=(4, ),
                               separable_expand_ratios=(1, )),
            InvertedResidualStage=dict(type='InvertedResidualSpace', expand_ratios=(6, 1)),
            ConvModule=dict(type='PointwiseSpace', rank_ratios=(0.25, ))),
        block_training=dict(iters=2, eval_iters=1, log_interval=0))
    path = osp.join(out_dir, f'{kind}_teacher.py')
    cfg.dump(path)
    torch.manual_seed(0)
    model = build_classifier(cfg)
    model.init_weights()
    ckpt = osp.join(out_dir, f'{kind}_teacher.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return path, ckpt


def compress_main():
    """``main`` of tools/compress.py (a script, not a module of the package)."""
    spec = importlib.util.spec_from_file_location(
        'compress_tool', osp.join(REPO_ROOT, 'tools', 'compress.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main
