"""Shared fixtures and helpers: GENERATED tiny datasets (mmstructkd.testing), config loading,
tiny models and distillers, teacher checkpoints. Test modules import the helpers from here
(``from tests.conftest import ...``), never from one another."""
import copy
import os.path as osp
import socket

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import mmstructkd  # noqa: F401  (registers the modules)
from mmstructkd import registry as kd_registry
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


def build_tiny_model(name: str, **model_overrides):
    """The model of ``tests/data/configs/<name>.py`` (mmseg scope), ``model_overrides`` merged
    into its ``model`` first."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
    cfg.model.update(model_overrides)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg.model)


def save_teacher(name: str, path: str) -> str:
    """Save a (randomly initialised) teacher checkpoint for config ``name``."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        torch.manual_seed(1)
        teacher = MODELS.build(cfg.model)
        teacher.init_weights()
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), path)
    return path


def seg_inputs(batch_size=2, size=32, seed=0):
    """A raw segmentation batch (random pixels, 4 classes) for the tiny seg distiller."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, 255, (batch_size, 3, size, size), generator=g).float()
    samples = []
    for _ in range(batch_size):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 4, (1, size, size), generator=g))
        sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                                 pad_shape=(size, size)))
        samples.append(sample)
    return dict(inputs=list(inputs), data_samples=samples)


def tiny_distiller_cfg(**overrides):
    """The model config of ``tiny_seg_distill`` as a ``SingleTeacherDistiller``; the keys of
    ``overrides`` replace the model's (not merged into them)."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_seg_distill.py'))
    model = copy.deepcopy(cfg.model)
    model.type = 'SingleTeacherDistiller'
    model.student['_scope_'] = 'mmseg'
    model.teacher['_scope_'] = 'mmseg'
    for key, value in overrides.items():  # replace (ConfigDict.update would merge)
        model[key] = value
    return model


def build_tiny_distiller(**overrides) -> torch.nn.Module:
    """The tiny seg ``SingleTeacherDistiller`` (:func:`tiny_distiller_cfg`), seeded."""
    torch.manual_seed(0)
    return kd_registry.build_own(kd_registry.MODELS, tiny_distiller_cfg(**overrides))


def distill_loss_on(runner, batch: dict, seed: int = 0) -> float:
    """The sum of the distillation terms (every scale 1) of a runner's distiller on a training
    ``batch`` (batch augments drawn from ``seed``): a student trained with the teacher must
    score lower than the same student trained alone."""
    model = runner.model
    model.loss_scales.update({k: 1.0 for k in model.loss_scales})
    torch.manual_seed(seed)
    with torch.no_grad():
        # a copy: a mixing batch augment marks the batch's samples as mixed, in place
        losses = model(**model.data_preprocessor(copy.deepcopy(batch), True), mode='loss')
    return float(sum(v for k, v in losses.items() if k.startswith('distill.')))


def free_port() -> int:
    """A free local TCP port (for a distributed launch)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
