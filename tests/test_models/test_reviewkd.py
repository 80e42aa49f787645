"""ReviewKD: ABF, the review path (ReviewKDConnector) and the hierarchical context loss."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmstructkd.models import ABF, HCLLoss, ReviewKDConnector
from mmstructkd.registry import MODELS, build_own
from tests.conftest import CONFIG_DIR


# ------------------------------------------------------------------ ABF
@pytest.mark.parametrize('size,residual_size', [((7, 11), (4, 6)), ((5, 5), (5, 5)),
                                                ((9, 4), (1, 1))])
def test_abf_shapes_for_odd_non_square_maps_and_other_widths(size, residual_size):
    abf = ABF(in_channels=5, mid_channels=3, out_channels=7, fuse=True)
    out, fused = abf(torch.randn(2, 5, *size), torch.randn(2, 3, *residual_size))
    assert out.shape == (2, 7, *size)
    assert fused.shape == (2, 3, *size)


def test_abf_attention_mixes_the_stage_and_the_residual_by_its_two_maps():
    torch.manual_seed(0)
    abf = ABF(in_channels=4, mid_channels=2, out_channels=3, fuse=True).eval()
    x, residual = torch.randn(1, 4, 3, 5), torch.randn(1, 2, 3, 5)
    _, fused = abf(x, residual)
    reduced = abf.reduce(x)
    att = torch.sigmoid(abf.attention(torch.cat([reduced, residual], 1)))
    expected = reduced * att[:, :1] + residual * att[:, 1:]
    assert torch.allclose(fused, expected, atol=1e-6)


@pytest.mark.parametrize('mode', ['nearest', 'bilinear'])
@pytest.mark.parametrize('residual_size', [(3, 5), (2, 3), (1, 1), (4, 4)])
def test_abf_fusion_equals_the_concatenating_form_in_both_memory_formats(mode, residual_size):
    # The fusion splits the attention conv and resizes its logits instead of concatenating
    # the resized residual (1x1 conv commutes with resizing); channels_last changes the layout
    # only. Reference: the paper's form, written out.
    torch.manual_seed(0)
    x, residual = torch.randn(2, 4, 6, 10), torch.randn(2, 3, *residual_size)
    outs = {}
    for channels_last in (False, True):
        torch.manual_seed(1)
        abf = ABF(4, 3, 5, fuse=True, upsample_mode=mode, channels_last=channels_last).eval()
        outs[channels_last] = abf(x, residual)
    reduced = abf.reduce(x)
    up = torch.nn.functional.interpolate(residual, size=(6, 10), mode=mode)
    att = torch.sigmoid(abf.attention(torch.cat([reduced, up], 1)))
    fused = reduced * att[:, :1] + up * att[:, 1:]
    for out, fused_out in outs.values():
        assert torch.allclose(fused_out, fused, atol=1e-5)
        assert torch.allclose(out, abf.project(fused), atol=1e-5)
    assert outs[True][1].is_contiguous(memory_format=torch.channels_last)


def test_abf_errors_name_the_fix():
    abf = ABF(in_channels=5, mid_channels=3, out_channels=7, fuse=True)
    with pytest.raises(ValueError, match=r'\(N, 5, H, W\).*in_channels'):
        abf(torch.randn(1, 6, 4, 4), torch.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match='needs the fused deeper stage'):
        abf(torch.randn(1, 5, 4, 4))
    with pytest.raises(ValueError, match='only the deepest stage'):
        ABF(5, 3, 7, fuse=False)(torch.randn(1, 5, 4, 4), torch.randn(1, 3, 2, 2))


# ------------------------------------------------------------------ review path
def stages(seed=0, n=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 4, 16, 12, generator=g), torch.randn(n, 8, 8, 6, generator=g),
            torch.randn(n, 16, 3, 3, generator=g)]


def connector():
    torch.manual_seed(0)
    return ReviewKDConnector(in_channels=[4, 8, 16], out_channels=[6, 10, 20],
                             mid_channels=5).eval()


def test_review_runs_deepest_first_and_only_the_deepest_stage_does_not_fuse():
    review = connector()
    calls = []
    for i, abf in enumerate(review.abfs):
        abf.register_forward_hook(lambda m, a, o, i=i: calls.append(i))
    outs = review(stages())
    assert calls == [2, 1, 0]
    assert [abf.fuse for abf in review.abfs] == [True, True, False]
    assert [tuple(o.shape) for o in outs] == [(2, 6, 16, 12), (2, 10, 8, 6), (2, 20, 3, 3)]


def test_each_output_reviews_its_stage_and_the_deeper_ones_only():
    review = connector()
    base = review(stages())
    shallow_changed = stages()
    shallow_changed[0] = shallow_changed[0] + 1
    outs = review(shallow_changed)
    assert not torch.allclose(outs[0], base[0])
    assert torch.equal(outs[1], base[1]) and torch.equal(outs[2], base[2])
    deep_changed = stages()
    deep_changed[2] = deep_changed[2] + 1
    outs = review(deep_changed)
    assert all(not torch.allclose(o, b) for o, b in zip(outs, base))


def test_pooled_embedding_is_a_1x1_stage_and_wrong_stage_counts_are_refused():
    review = ReviewKDConnector(in_channels=[4, 8], out_channels=[6, 12], mid_channels=4)
    outs = review([torch.randn(2, 4, 5, 7), torch.randn(2, 8)])
    assert outs[1].shape == (2, 12, 1, 1) and outs[0].shape == (2, 6, 5, 7)
    with pytest.raises(ValueError, match='expects 2 student stages.*got 3 tensors'):
        review([torch.randn(2, 4, 5, 7)] * 3)
    with pytest.raises(ValueError, match='same \\(non-zero\\) number of stages'):
        ReviewKDConnector(in_channels=[4, 8], out_channels=[6])


# ------------------------------------------------------------------ HCL
def test_hcl_matches_a_hand_computed_value():
    # Stage 1: s = 0..15 on a 4x4 map, t = 0. Full MSE = sum(i^2)/16 = 1240/16 = 77.5.
    # 4x4 pooling is skipped (4 >= H); 2x2 means 2.5, 4.5, 10.5, 12.5 -> MSE 73.25 (w 1/2);
    # 1x1 mean 7.5 -> 56.25 (w 1/4). (77.5 + 36.625 + 14.0625) / 1.75 = 73.25.
    # Stage 2: a (N, C) embedding 3 vs 1 -> a 1x1 map, every pooling skipped: 4.
    s = [torch.arange(16.).view(1, 1, 4, 4), torch.tensor([[3.]])]
    t = [torch.zeros(1, 1, 4, 4), torch.tensor([[1.]])]
    assert HCLLoss()(s, t).item() == pytest.approx(73.25 + 4.0)
    assert HCLLoss(loss_weight=0.5)(s, t).item() == pytest.approx(0.5 * 77.25)
    # Without skipping, the 4x4 level (= the full map) gets weight 1/2 and the rest halve on:
    # (77.5 + 38.75 + 0.25 * 73.25 + 0.125 * 56.25) / 1.875 = 141.59375 / 1.875
    assert HCLLoss(skip_large_pools=False)(s[:1], t[:1]).item() == pytest.approx(
        141.59375 / 1.875)


def test_hcl_resizes_the_student_and_asks_for_a_connector_on_channel_mismatch():
    loss = HCLLoss()
    value = loss([torch.ones(1, 2, 4, 6)], [torch.ones(1, 2, 8, 12)])
    assert value.item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match='stage 0.*connector'):
        loss([torch.ones(1, 3, 4, 4)], [torch.ones(1, 2, 4, 4)])
    with pytest.raises(ValueError, match='2 student stages but 1 teacher'):
        loss([torch.ones(1, 2, 4, 4)] * 2, [torch.ones(1, 2, 4, 4)])


# ------------------------------------------------------------------ in the distiller
def build_distiller(name, **overrides):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
    model = copy.deepcopy(cfg.model)
    model.type = 'SingleTeacherDistiller'
    model.update(overrides)
    model.student['_scope_'] = cfg.default_scope  # the student's toolbox builds it
    torch.manual_seed(0)
    return build_own(MODELS, model)


def cls_batch(n=8, seed=0):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, 255, (n, 3, 32, 32), generator=g).float()
    labels = torch.randint(0, 3, (n, ), generator=g)
    return dict(inputs=list(inputs), data_samples=[DataSample().set_gt_label(int(y))
                                                   for y in labels])


def test_gradients_reach_student_and_abf_but_not_the_teacher():
    model = build_distiller('tiny_cls_reviewkd')
    model.train()
    data = model.data_preprocessor(cls_batch(), True)
    losses = model(**data, mode='loss')
    assert set(losses) >= {'distill.loss_hcl', 'student.loss'}
    losses['distill.loss_hcl'].backward()
    assert all(abf.project.conv.weight.grad.abs().sum() > 0
               for abf in model.connectors.review.abfs)
    assert model.student.backbone.layer1[0].conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_a_list_of_recorders_gives_the_connector_one_tensor_per_stage():
    model = build_distiller('tiny_cls_reviewkd')
    seen = []
    model.connectors.review.register_forward_pre_hook(
        lambda m, args: seen.append([tuple(f.shape) for f in args[0]]))
    model.train()
    model(**model.data_preprocessor(cls_batch(n=2), True), mode='loss')
    assert seen == [[(2, 8, 32, 32), (2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4)]]


def test_unknown_recorder_in_a_list_names_the_loss_and_the_defined_recorders():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_cls_reviewkd.py'))
    model = copy.deepcopy(cfg.model)
    model.type = 'SingleTeacherDistiller'
    model.student['_scope_'] = 'mmpretrain'
    model.loss_forward_mappings.loss_hcl.preds_T.recorder = ['layer1', 'layer9']
    with pytest.raises(ValueError, match=r'loss_hcl.*preds_T.*"layer9".*layer1'):
        build_own(MODELS, model)


@pytest.mark.parametrize('name', ['tiny_cls_reviewkd', 'tiny_det_reviewkd'])
def test_a_few_iterations_lower_the_hcl_loss(name):
    # The HCL alone (a tiny random detector's own loss diverges at this learning rate).
    model = build_distiller(name, calculate_student_loss=False)
    model.train()
    if name == 'tiny_cls_reviewkd':
        batch = cls_batch()
    else:
        from tests.test_configs import fake_batch
        cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
        data = fake_batch(cfg, model)
        batch = dict(inputs=list(data['inputs']), data_samples=data['data_samples'])
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    values = []
    for _ in range(12):
        log = model.train_step(copy.deepcopy(batch), optim)
        values.append(float(log['distill.loss_hcl'].detach()))
    # Same batch each step, frozen teacher: without gradients into the student and the ABFs
    # the loss would stay where it started.
    assert values[-1] < 0.85 * values[0], values
