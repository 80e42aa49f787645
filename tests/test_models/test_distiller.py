import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmstructkd.models import SingleTeacherDistiller
from mmstructkd.registry import MODELS, build_own
from tests.conftest import CONFIG_DIR
from tests.conftest import build_tiny_distiller as build
from tests.conftest import seg_inputs
from tests.conftest import tiny_distiller_cfg as distiller_cfg


def test_teacher_is_frozen_and_stays_in_eval_mode_while_student_trains():
    model = build()
    model.train()
    assert not model.teacher.training
    assert all(not m.training for m in model.teacher.modules())
    assert model.student.training
    assert all(not p.requires_grad for p in model.teacher.parameters())
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    data = seg_inputs()
    student_before = copy.deepcopy(model.student.state_dict())
    for _ in range(3):
        model.train_step(data, optim)
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k  # BN running stats included
    changed = [k for k, v in model.student.state_dict().items()
               if not torch.equal(v, student_before[k])]
    assert changed


def test_losses_are_logged_separately_and_gradients_reach_student_and_connector_only():
    model = build()
    model.train()
    data = model.data_preprocessor(seg_inputs(), True)
    losses = model(**data, mode='loss')
    assert {'student.decode.loss_ce', 'distill.loss_kd', 'distill.loss_feat'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert model.connectors.feat_adapter.conv.conv.weight.grad.abs().sum() > 0
    assert model.student.backbone.stem[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_the_teacher_runs_without_a_graph_even_with_trainable_parameters():
    """The teacher forward runs under no_grad: no graph is kept through it (memory), and no
    gradient reaches it even if something made its parameters trainable again."""
    model = build()
    model.train()
    model.teacher.requires_grad_(True)  # undo the freeze: only no_grad protects it now
    outputs = []
    model.teacher.backbone.register_forward_hook(lambda m, i, out: outputs.extend(
        out if isinstance(out, (list, tuple)) else [out]))
    data = model.data_preprocessor(seg_inputs(), True)
    losses = model(**data, mode='loss')
    assert outputs and not any(o.requires_grad for o in outputs)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is None for p in model.teacher.parameters())


def test_distill_loss_gradient_alone_reaches_the_student():
    model = build(calculate_student_loss=False)
    model.train()
    data = model.data_preprocessor(seg_inputs(), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'distill.loss_kd', 'distill.loss_feat'}
    losses['distill.loss_kd'].backward()
    assert model.student.decode_head.conv_seg.weight.grad.abs().sum() > 0


# Distil layer2 features only: the teacher's layer3, layer4 and head are not needed.
LAYER2_ONLY = dict(
    teacher_recorders=dict(feat=dict(type='ModuleOutputs', source='backbone.layer2')),
    student_recorders=dict(feat=dict(type='ModuleOutputs', source='backbone.layer2')),
    connectors=dict(a=dict(type='ConvConnector', in_channels=16, out_channels=32)),
    distill_losses=dict(loss_feat=dict(type='FeatureMSELoss')),
    loss_forward_mappings=dict(loss_feat=dict(
        s_feature=dict(from_student=True, recorder='feat', connector='a'),
        t_feature=dict(from_student=False, recorder='feat'))))


def test_teacher_runs_only_as_far_as_its_recorders_need():
    model = build(**LAYER2_ONLY)
    calls = []
    # (mmseg calls decode_head.forward directly, which skips hooks: watch its conv_seg)
    model.teacher.decode_head.conv_seg.register_forward_hook(lambda *a: calls.append('head'))
    model.teacher.backbone.layer3.register_forward_hook(lambda *a: calls.append('layer3'))
    data = model.data_preprocessor(seg_inputs(), True)
    model(**data, mode='loss')  # first step: traced, full forward
    assert calls == ['layer3', 'head']
    assert model.teacher_provider.partial_forward.stop_point == ('backbone.layer2', 0)
    calls.clear()
    losses = model(**data, mode='loss')
    assert calls == []  # layer3, layer4 and the decode head were skipped
    full = build(teacher_forward='full', **LAYER2_ONLY)
    full.load_state_dict(model.state_dict())
    assert torch.allclose(full(**data, mode='loss')['distill.loss_feat'],
                          losses['distill.loss_feat'])


def test_predict_runs_the_student_alone():
    model = build()
    model.eval()
    calls = []
    model.teacher.register_forward_hook(lambda *a: calls.append(1))
    data = model.data_preprocessor(seg_inputs(), False)
    out = model(**data, mode='predict')
    expected = model.student(**data, mode='predict')
    assert calls == []
    assert torch.equal(out[0].pred_sem_seg.data, expected[0].pred_sem_seg.data)


def test_loss_scale_zero_skips_the_teacher_and_the_loss():
    model = build()
    calls = []
    model.teacher.register_forward_hook(lambda *a: calls.append(1))
    data = model.data_preprocessor(seg_inputs(), True)
    model.loss_scales['loss_feat'] = 0.0
    losses = model(**data, mode='loss')
    assert 'distill.loss_feat' not in losses and 'distill.loss_kd' in losses
    model.loss_scales['loss_kd'] = 0.0
    calls.clear()
    losses = model(**data, mode='loss')
    assert calls == [] and not any(k.startswith('distill.') for k in losses)


def test_loss_scales_multiply_each_distillation_loss():
    """What a warm-up hook sets (loss_scales) scales the value and so the gradient."""
    model = build()
    data = model.data_preprocessor(seg_inputs(), True)
    unscaled = model(**data, mode='loss')
    model.loss_scales.update(loss_kd=2.5, loss_feat=0.25)
    scaled = model(**data, mode='loss')
    assert scaled['distill.loss_kd'] > 0 and scaled['distill.loss_feat'] > 0
    assert torch.allclose(scaled['distill.loss_kd'], 2.5 * unscaled['distill.loss_kd'])
    assert torch.allclose(scaled['distill.loss_feat'], 0.25 * unscaled['distill.loss_feat'])
    assert torch.equal(scaled['student.decode.loss_ce'], unscaled['student.decode.loss_ce'])


@pytest.mark.parametrize('overrides,error,match', [
    (dict(distill_losses=dict(kd=dict(type='KDLoss'))), ValueError, 'must contain "loss"'),
    (dict(loss_forward_mappings=dict(loss_kd=dict(
        preds_S=dict(from_student=True, recorder='nope'),
        preds_T=dict(from_student=False, recorder='logits')))), ValueError,
     'no student recorder named "nope"'),
    (dict(loss_forward_mappings=dict(loss_kd=dict(
        preds_S=dict(from_student=True, recorder='logits')))), ValueError,
     r"needs arguments \['preds_T'\]"),
    (dict(loss_forward_mappings=dict(loss_kd=dict(
        preds_S=dict(from_student=True, recorder='logits'),
        preds_T=dict(from_student=False, recorder='logits'),
        target=dict(from_student=False, recorder='logits')))), ValueError,
     'has no argument "target"'),
    (dict(loss_forward_mappings=dict(loss_kd=dict(
        preds_S=dict(from_student=True, recorder='logits', connector='x'),
        preds_T=dict(from_student=False, recorder='logits')))), ValueError,
     'no connector named "x"'),
    (dict(teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='decode_head.cls'),
                                 feat=dict(type='ModuleOutputs', source='backbone.layer4'))),
     ValueError, r'recorder "logits": module "decode_head.cls" does not exist'),
])
def test_config_errors_name_the_problem(overrides, error, match):
    with pytest.raises(error, match=match):
        build(**overrides)


def test_teacher_checkpoint_is_loaded_by_init_weights(tmp_path):
    source = build()
    path = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=source.teacher.state_dict()), path)
    # Building needs no checkpoint (tools/test.py never loads it) ...
    model = build(teacher_ckpt=str(tmp_path / 'missing.pth'))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        model.init_weights()
    model = build(teacher_ckpt=path)
    with torch.no_grad():  # make the teacher differ until the checkpoint is loaded
        for p in model.teacher.parameters():
            p.fill_(0.5)
    model.init_weights()
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, source.teacher.state_dict()[k]), k


def test_loss_inputs_are_cast_to_fp32_inside_recorded_method_arguments():
    # A MethodInputsRecorder's record is a dict of the method's arguments (per-level lists of
    # maps, metas, NamedTuples): under AMP every floating tensor in it reaches the loss in fp32.
    from typing import NamedTuple

    from mmstructkd.models.distillers.single_teacher_distiller import _to_fp32

    class Pair(NamedTuple):
        a: torch.Tensor
        b: int

    half = torch.ones(2, dtype=torch.float16, requires_grad=True)
    record = dict(cls_scores=[half, half * 2], labels=torch.tensor([1, 2]),
                  metas=[dict(img_shape=(4, 4))], pair=Pair(half, 3))
    out = _to_fp32(record)
    assert [t.dtype for t in out['cls_scores']] == [torch.float32] * 2
    assert out['labels'].dtype == torch.int64 and out['metas'] == [dict(img_shape=(4, 4))]
    assert isinstance(out['pair'], Pair) and out['pair'].a.dtype == torch.float32
    assert out['pair'].b == 3
    out['cls_scores'][1].sum().backward()  # the cast stays in the graph
    assert torch.equal(half.grad, torch.full((2, ), 2.0, dtype=torch.float16))
