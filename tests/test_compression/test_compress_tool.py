"""tools/compress.py end to end on tiny teachers; the emitted student is stock-buildable."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from tests.test_compression.conftest import compress_main, write_teacher


def test_resnet_cifar_end_to_end_meets_the_flops_budget(cls_root, tmp_path):
    config, ckpt = write_teacher('resnet_cifar', cls_root, str(tmp_path))
    out = str(tmp_path / 'out')
    report = compress_main()([config, '--checkpoint', ckpt, '--flops-budget', '0.5',
                              '--work-dir', out])
    assert report['student']['flops'] <= 0.5 * report['teacher']['flops']
    assert report['flops_ratio'] == pytest.approx(
        report['student']['flops'] / report['teacher']['flops'])
    assert [row['unit'] for row in report['units']] == ['layer1', 'layer2', 'layer3', 'layer4']
    assert sum(row['flops_after'] for row in report['units']) < sum(
        row['flops_before'] for row in report['units'])
    for key in ('teacher', 'student', 'student_without_distillation'):
        assert 0 <= report[key]['top1'] <= 100
    assert json.load(open(osp.join(out, 'report.json')))['units'] == report['units']
    assert '| layer1 |' in open(osp.join(out, 'report.md')).read()

    # The emitted config builds with stock MMPretrain (after its custom_imports) and loads the
    # emitted checkpoint strictly.
    import mmpretrain.registry
    cfg = Config.fromfile(osp.join(out, 'student.py'))
    assert cfg.custom_imports.imports == ['mmstructkd']
    assert cfg.model.backbone.type == 'mmstructkd.CompressedBackbone'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        student = mmpretrain.registry.MODELS.build(cfg.model)
    for name in ('student.pth', 'student_blockwise.pth', 'student_init.pth'):
        state = torch.load(osp.join(out, name), map_location='cpu', weights_only=True)
        student.load_state_dict(state['state_dict'], strict=True)
    # The stock test loop runs it from the emitted files.
    cfg.work_dir = str(tmp_path / 'test')
    cfg.load_from = osp.join(out, 'student.pth')
    metrics = Runner.from_cfg(cfg).test()
    assert metrics['accuracy/top1'] == pytest.approx(report['student']['top1'])
    # The fine-tune config is a SingleTeacherDistiller starting from the block-wise weights.
    kd = Config.fromfile(osp.join(out, 'kd.py'))
    assert kd.model.type == 'mmstructkd.SingleTeacherDistiller'
    assert kd.model.student.init_cfg.checkpoint == osp.join(out, 'student_blockwise.pth')
    assert kd.model.teacher_ckpt == osp.abspath(ckpt)


def test_mobilenet_v2_end_to_end_meets_the_params_budget(cls_root, tmp_path, monkeypatch):
    config, ckpt = write_teacher('mobilenet_v2', cls_root, str(tmp_path))
    out = str(tmp_path / 'out')
    # Only the search, the choice and the emitted files (the fine-tune is the ResNet test's).
    report = compress_main()([config, '--checkpoint', ckpt, '--params-budget', '0.4',
                              '--work-dir', out, '--skip-baseline', '--skip-teacher-eval',
                              '--skip-finetune',
                              '--cfg-options', 'compression.finetune.feature_hints=True'])
    assert report['student']['params'] <= 0.4 * report['teacher']['params']
    # counted again on the emitted student and the teacher's config, not from the report
    import mmpretrain.registry
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        built = {name: mmpretrain.registry.MODELS.build(Config.fromfile(path).model)
                 for name, path in (('student', osp.join(out, 'student.py')),
                                    ('teacher', config))}
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in built.items()}
    assert params == {k: report[k]['params'] for k in params}
    assert params['student'] <= 0.4 * params['teacher']
    units = [row['unit'] for row in report['units']]
    assert units == [f'layer{i}' for i in range(1, 8)] + ['conv2']
    kd = Config.fromfile(osp.join(out, 'kd.py'))
    replaced = [row['unit'] for row in report['units'] if row['candidate'] != 0]
    assert replaced and sorted(k for k in kd.model.distill_losses if 'hint' in k) == sorted(
        f'loss_hint_{u}' for u in replaced)
    # A second run reuses the block-wise results (it trains no block) and may choose for
    # another budget.
    from mmstructkd.compression.block_trainer import BlockwiseTrainer

    def trains_again(*args, **kwargs):
        raise AssertionError('the second run trained the blocks again')

    monkeypatch.setattr(BlockwiseTrainer, 'run', trains_again)
    report2 = compress_main()([config, '--checkpoint', ckpt, '--params-budget', '0.7',
                               '--work-dir', out, '--skip-baseline', '--skip-teacher-eval',
                               '--skip-finetune'])
    assert report['params_ratio'] <= report2['params_ratio'] <= 0.7
    # Same block-wise results (the cache): a unit with the same choice has the same error.
    same = [(a['error'], b['error']) for a, b in zip(report['units'], report2['units'])
            if a['candidate'] == b['candidate']]
    assert same and all(x == y for x, y in same)
