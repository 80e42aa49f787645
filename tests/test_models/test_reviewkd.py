"""ReviewKD: ABF, the review path (ReviewKDConnector) and the hierarchical context loss."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmstructkd.models import ABF, HCLLoss, ReviewKDConnector
from mmstructkd.registry import MODELS, build_own
from tests.conftest import CONFIG_DIR, REPO_ROOT


# ------------------------------------------------------------------ ABF
@pytest.mark.parametrize('size,residual_size', [((7, 11), (4, 6)), ((5, 5), (5, 5)),
                                                ((9, 4), (1, 1))])
def test_abf_shapes_for_odd_non_square_maps_and_other_widths(size, residual_size):
    abf = ABF(in_channels=5, mid_channels=3, out_channels=7, fuse=True)
    out, fused = abf(torch.randn(2, 5, *size), torch.randn(2, 3, *residual_size))
    assert out.shape == (2, 7, *size)
    assert fused.shape == (2, 3, *size)


@pytest.mark.parametrize('out_size', [(9, 13), (2, 3), (5, 5)])
def test_abf_out_size_sets_both_outputs_sizes(out_size):
    abf = ABF(in_channels=5, mid_channels=3, out_channels=7, fuse=True)
    out, fused = abf(torch.randn(2, 5, 5, 5), torch.randn(2, 3, 3, 2), out_size=out_size)
    assert out.shape == (2, 7, *out_size) and fused.shape == (2, 3, *out_size)


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


def test_abf_initialises_as_the_official_code_also_after_init_weights():
    # Official: conv weights kaiming_uniform_(a=1): U(+-sqrt(3 / fan_in)), std 1 / sqrt(fan_in);
    # attention conv at PyTorch's default: weight and bias within +-1 / sqrt(fan_in), bias not 0.
    # (mmcv's ConvModule.init_weights would give Kaiming-normal fan-out: std sqrt(2 / fan_out),
    # here 0.177 for the 1x1 conv and 0.059 for the 3x3 conv, against 0.0625 and 0.0417.)
    torch.manual_seed(0)
    connector = ReviewKDConnector([256, 256], [64, 64], mid_channels=64)
    connector.init_weights()  # what the Runner calls; runs ConvModule.init_weights by default
    for abf in connector.abfs:
        for conv, fan_in in ((abf.reduce.conv, 256), (abf.project.conv, 64 * 9)):
            w = conv.weight
            assert w.abs().max() <= (3 / fan_in) ** 0.5
            assert w.std().item() == pytest.approx(fan_in ** -0.5, rel=0.05)
        assert abf.reduce.norm.weight.eq(1).all() and abf.reduce.norm.bias.eq(0).all()
    att = connector.abfs[0].attention
    assert att.weight.abs().max() <= 128 ** -0.5 and att.bias.abs().max() <= 128 ** -0.5
    assert att.bias.ne(0).all()
    assert att.weight.std().item() == pytest.approx((1 / 3) ** 0.5 * 128 ** -0.5, rel=0.2)


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


def connector(**kwargs):
    torch.manual_seed(0)
    return ReviewKDConnector(in_channels=[4, 8, 16], out_channels=[6, 10, 20],
                             mid_channels=5, **kwargs).eval()


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


# ------------------------------------------------------------------ official form (output_size)
# The official code (CIFAR-100/model/reviewkd.py) resizes (nearest) each ABF's fused feature to
# the teacher stage's size before the 3x3 conv and passes it on at that size; the next stage
# resizes it (nearest) to its own size for the fusion. Nearest resizing from n to m picks source
# index floor(i * n / m); the index lists below are worked out by hand from that rule.
ROWS_1_TO_2, COLS_2_TO_3 = [0, 0], [0, 0, 1]            # deep stage 1x2 -> teacher 2x3
ROWS_2_TO_3, COLS_3_TO_4 = [0, 0, 1], [0, 0, 1, 2]      # residual 2x3 -> shallow stage 3x4
ROWS_3_TO_5, COLS_4_TO_6 = [0, 0, 1, 1, 2], [0, 0, 1, 2, 2, 3]  # shallow 3x4 -> teacher 5x6


def _pick(t, rows, cols):
    """Nearest resizing written as indexing: t[..., rows[i], cols[j]]."""
    return t[..., rows, :][..., cols]


def _plus_right_neighbour(f):
    """The hand-set 3x3 conv (centre 1, right neighbour 1, zero padding): f[i, j] + f[i, j+1]."""
    return f + torch.nn.functional.pad(f[..., 1:], (0, 1))


def _identity_bn(bn):
    # eval mode, mean 0, var + eps = 1, weight 1, bias 0: y = x (up to float rounding)
    bn.eval()
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)
    bn.weight.data.fill_(1.0)
    bn.bias.data.zero_()


def hand_set_review(channels_last):
    """A 2-stage, 1-channel review path whose weights make every step hand-computable: the 1x1
    convs are identities, the attention maps are sigmoid(x) (stage) and sigmoid(r) (residual),
    so the fusion is x * sigmoid(x) + r * sigmoid(r), and the 3x3 conv adds the right neighbour."""
    review = ReviewKDConnector([1, 1], [1, 1], mid_channels=1, output_size='teacher',
                               channels_last=channels_last)
    with torch.no_grad():
        for abf in review.abfs:
            abf.reduce.conv.weight.fill_(1.0)
            abf.project.conv.weight.zero_()
            abf.project.conv.weight[0, 0, 1, 1] = 1.0
            abf.project.conv.weight[0, 0, 1, 2] = 1.0
            _identity_bn(abf.reduce.norm)
            _identity_bn(abf.project.norm)
        att = review.abfs[0].attention
        att.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(2, 2, 1, 1))
        att.bias.zero_()
    return review


DEEP = [[0.5, -1.0]]  # the deep student stage, 1x2
SHALLOW = [[0.0, 1.0, -1.0, 2.0], [0.5, -0.5, 1.5, -2.0], [3.0, 0.0, -3.0, 1.0]]  # 3x4


def hand_reference(shallow, deep):
    """The official computation for ``hand_set_review``, written out with the index lists."""
    fused_deep = _pick(deep, ROWS_1_TO_2, COLS_2_TO_3)             # to the teacher's 2x3
    residual = _pick(fused_deep, ROWS_2_TO_3, COLS_3_TO_4)         # to the shallow stage's 3x4
    fused = shallow * torch.sigmoid(shallow) + residual * torch.sigmoid(residual)
    fused_up = _pick(fused, ROWS_3_TO_5, COLS_4_TO_6)              # to the teacher's 5x6
    return [_plus_right_neighbour(fused_up), _plus_right_neighbour(fused_deep)]


@pytest.mark.parametrize('channels_last', [False, True])
def test_official_form_matches_hand_computed_values_and_gradients(channels_last):
    review = hand_set_review(channels_last)
    deep = torch.tensor(DEEP).view(1, 1, 1, 2).requires_grad_()
    shallow = torch.tensor(SHALLOW).view(1, 1, 3, 4).requires_grad_()
    teacher = [torch.zeros(1, 7, 5, 6), torch.zeros(1, 9, 2, 3)]  # only the sizes are read
    out_shallow, out_deep = review([shallow, deep], teacher_feats=teacher)

    # Deep stage: [a, b] = [0.5, -1] -> 2x3 [[a, a, b]] * 2 -> + right neighbour
    # [2a, a + b, b] = [1, -0.5, -1] on both rows.
    assert out_deep.shape == (1, 1, 2, 3)
    assert torch.allclose(out_deep, torch.tensor([[1.0, -0.5, -1.0]] * 2).view(1, 1, 2, 3),
                          atol=1e-5)
    # Shallow stage, first output: up[0, 0] = up[0, 1] = fused[0, 0] = 0 * s(0) + a * s(a), so
    # out[0, 0] = 2 * 0.5 * sigmoid(0.5) = sigmoid(0.5) = 0.6224593.
    assert out_shallow.shape == (1, 1, 5, 6)
    assert out_shallow[0, 0, 0, 0].item() == pytest.approx(0.6224593, abs=1e-5)
    # Row 0 of the residual is [a, a, a, b]: the fused deep feature passed on at the teacher's
    # 2x3, then resized to 3x4. Resizing the student's 1x2 straight to 3x4 would give
    # [a, a, b, b]: out[0, 2] = fused[0, 1] + fused[0, 2] with residual a at [0, 2], not b.
    s = torch.sigmoid
    fused_01 = 1.0 * s(torch.tensor(1.0)) + 0.5 * s(torch.tensor(0.5))
    fused_02 = -1.0 * s(torch.tensor(-1.0)) + 0.5 * s(torch.tensor(0.5))
    assert out_shallow[0, 0, 0, 2].item() == pytest.approx(float(fused_01 + fused_02), abs=1e-5)
    expected = hand_reference(torch.tensor(SHALLOW).view(1, 1, 3, 4),
                              torch.tensor(DEEP).view(1, 1, 1, 2))
    assert torch.allclose(out_shallow, expected[0], atol=1e-5)

    # Gradient of sum(out_deep) alone: 2 rows of 3a + 2b -> d/da = 6, d/db = 4; none to the
    # shallow stage (it only enters the shallow output).
    grad_deep, grad_shallow = torch.autograd.grad(out_deep.sum(), [deep, shallow],
                                                  retain_graph=True, allow_unused=True)
    assert torch.allclose(grad_deep, torch.tensor([[6.0, 4.0]]).view(1, 1, 1, 2), atol=1e-5)
    assert grad_shallow is None or not grad_shallow.any()
    # Gradient of sum(out_shallow) at shallow[0, 0] = 0: up[i, j] gets 1 (out[i, j]) + 1 if
    # j >= 1 (out[i, j-1]); fused[0, 0] is picked by rows 0, 1 and cols 0, 1: 2 * (1 + 2) = 6;
    # d(x sigmoid(x))/dx at 0 is 1/2 -> 3.
    (grad_shallow, ) = torch.autograd.grad(out_shallow.sum(), [shallow], retain_graph=True)
    assert grad_shallow[0, 0, 0, 0].item() == pytest.approx(3.0, abs=1e-5)

    # Every gradient, against the written-out reference, for a weighted loss.
    g = torch.Generator().manual_seed(0)
    weights = [torch.randn(1, 1, 5, 6, generator=g), torch.randn(1, 1, 2, 3, generator=g)]
    loss = sum((o * w).sum() for o, w in zip([out_shallow, out_deep], weights))
    grads = torch.autograd.grad(loss, [shallow, deep])
    ref_inputs = [torch.tensor(SHALLOW).view(1, 1, 3, 4).requires_grad_(),
                  torch.tensor(DEEP).view(1, 1, 1, 2).requires_grad_()]
    ref_loss = sum((o * w).sum() for o, w in zip(hand_reference(*ref_inputs), weights))
    ref_grads = torch.autograd.grad(ref_loss, ref_inputs)
    for grad, ref in zip(grads, ref_grads):
        assert torch.allclose(grad, ref, atol=1e-5)


def _bn_train(x, norm):
    return torch.nn.functional.batch_norm(x, None, None, norm.weight, norm.bias, training=True,
                                          eps=norm.eps)


def official_reference(review, feats, teacher_sizes):
    """ReviewKD's review path as the official code computes it, in NCHW with the
    concatenation, BN in training mode, on the parameters of ``review``."""
    F = torch.nn.functional
    outputs, residual = [None] * len(feats), None
    for i in reversed(range(len(feats))):
        abf = review.abfs[i]
        x = feats[i][:, :, None, None] if feats[i].dim() == 2 else feats[i]
        x = _bn_train(F.conv2d(x, abf.reduce.conv.weight), abf.reduce.norm)
        if residual is not None:
            residual = F.interpolate(residual, size=x.shape[-2:], mode='nearest')
            att = torch.sigmoid(F.conv2d(torch.cat([x, residual], 1), abf.attention.weight,
                                         abf.attention.bias))
            x = x * att[:, 0:1] + residual * att[:, 1:2]
        if tuple(x.shape[-2:]) != teacher_sizes[i]:
            x = F.interpolate(x, size=teacher_sizes[i], mode='nearest')
        outputs[i] = _bn_train(F.conv2d(x, abf.project.conv.weight, padding=1),
                               abf.project.norm)
        residual = x
    return outputs


@pytest.mark.parametrize('channels_last', [False, True])
def test_official_form_matches_the_written_out_official_computation_in_training(channels_last):
    # Three stages, student smaller than the teacher at the two spatial ones, odd and
    # non-square sizes, an (N, C) embedding as the deepest; the teacher's stage 1 (5x7) is
    # larger than the student's stage 0 (4x6), so the residual shrinks there.
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 3, 4, 6, generator=g), torch.randn(2, 4, 3, 4, generator=g),
             torch.randn(2, 6, generator=g)]
    teacher = [torch.randn(2, 5, 9, 13, generator=g), torch.randn(2, 6, 5, 7, generator=g),
               torch.randn(2, 8, generator=g)]
    sizes = [(9, 13), (5, 7), (1, 1)]
    torch.manual_seed(0)
    review = ReviewKDConnector([3, 4, 6], [5, 6, 8], mid_channels=4, output_size='teacher',
                               channels_last=channels_last).train()
    with torch.no_grad():  # non-trivial norms
        for p in review.parameters():
            if p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=g))
    inputs = [f.clone().requires_grad_() for f in feats]
    outs = review(inputs, teacher_feats=teacher)
    ref_inputs = [f.clone().requires_grad_() for f in feats]
    refs = official_reference(review, ref_inputs, sizes)
    assert [tuple(o.shape[-2:]) for o in outs] == sizes
    for out, ref in zip(outs, refs):
        assert torch.allclose(out, ref, atol=1e-5)
    weights = [torch.randn(r.shape, generator=g) for r in refs]
    params = list(review.parameters())
    grads = torch.autograd.grad(sum((o * w).sum() for o, w in zip(outs, weights)),
                                inputs + params)
    ref_grads = torch.autograd.grad(sum((r * w).sum() for r, w in zip(refs, weights)),
                                    ref_inputs + params)
    for grad, ref in zip(grads, ref_grads):
        assert torch.allclose(grad, ref, atol=1e-4), (grad - ref).abs().max()
    if channels_last:
        assert all(o.is_contiguous(memory_format=torch.channels_last) for o in outs[:2])


def test_student_output_size_keeps_the_student_sizes_and_equals_the_official_form_at_equal_sizes():
    feats = stages()
    official = connector(output_size='teacher')
    kept = connector()  # same seed, same weights; output_size='student' (the class default)
    assert kept.output_size == 'student'
    same_size_teacher = [torch.zeros(2, 1, *f.shape[-2:]) for f in feats]
    # At equal sizes nothing is resized: the same computation, bit for bit.
    for a, b in zip(official(feats, teacher_feats=same_size_teacher), kept(feats)):
        assert torch.equal(a, b)
    # At other sizes 'student' keeps the student's (teacher_feats are ignored) and 'teacher'
    # takes the teacher's.
    larger = [torch.zeros(2, 1, 2 * f.shape[-2] + 1, f.shape[-1] + 3) for f in feats]
    kept_outs = kept(feats, teacher_feats=larger)
    assert [o.shape[-2:] for o in kept_outs] == [f.shape[-2:] for f in feats]
    official_outs = official(feats, teacher_feats=larger)
    assert [o.shape[-2:] for o in official_outs] == [t.shape[-2:] for t in larger]


def test_official_form_errors_name_the_fix():
    review = ReviewKDConnector([4, 8], [6, 12], mid_channels=4, output_size='teacher')
    feats = [torch.randn(2, 4, 5, 7), torch.randn(2, 8)]
    with pytest.raises(ValueError, match=r'connector_kwargs=dict\(teacher_feats=.*'
                                         r"output_size='student'"):
        review(feats)
    with pytest.raises(ValueError, match=r'expects 2 teacher stages \(teacher_feats\).*got 1'):
        review(feats, teacher_feats=[torch.randn(2, 6, 9, 9)])
    with pytest.raises(ValueError, match=r'teacher stage 0 has shape \(2, 6, 9\)'):
        review(feats, teacher_feats=[torch.randn(2, 6, 9), torch.randn(2, 12)])
    with pytest.raises(ValueError, match=r"output_size must be one of \('teacher', 'student'\)"):
        ReviewKDConnector([4], [6], output_size='official')
    with pytest.raises(ValueError, match=r'out_size must be \(H, W\)'):
        ABF(4, 3, 5, fuse=False)(torch.randn(1, 4, 3, 3), out_size=(3, 3, 3))


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
    # a non-constant student (0 | 4) to the teacher's 1x4: bilinear, corners not aligned,
    # gives 0, 1, 3, 4 (every pooling level skipped at height 1): MSE 26 / 4 (nearest: 8)
    value = loss([torch.tensor([[[[0.0, 4.0]]]])], [torch.zeros(1, 1, 1, 4)])
    assert value.item() == pytest.approx(6.5)
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
        from mmstructkd.testing.fake_batch import fake_batch
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


def test_official_form_in_the_distiller_gets_the_teacher_sizes_through_connector_kwargs():
    # Student stages layer2-4 (16, 32, 64 channels at 16, 8, 4) against the teacher's layer1-3
    # (16, 32, 64 at 32, 16, 8): every student stage is half the teacher's size.
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_cls_reviewkd.py'))
    student_stages, teacher_stages = ['layer2', 'layer3', 'layer4'], ['layer1', 'layer2',
                                                                      'layer3']
    connectors = dict(review=dict(type='ReviewKDConnector', in_channels=[16, 32, 64],
                                  out_channels=[16, 32, 64], mid_channels=8,
                                  output_size='teacher'))
    teacher_feats = dict(from_student=False, recorder=teacher_stages)
    mappings = dict(loss_hcl=dict(
        preds_S=dict(from_student=True, recorder=student_stages, connector='review',
                     connector_kwargs=dict(teacher_feats=teacher_feats)),
        preds_T=dict(from_student=False, recorder=teacher_stages)))
    model = build_distiller('tiny_cls_reviewkd', connectors=connectors,
                            loss_forward_mappings=mappings)
    seen = []
    model.distill_losses.loss_hcl.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(
            [[tuple(f.shape) for f in kwargs[k]] for k in ('preds_S', 'preds_T')]),
        with_kwargs=True)
    model.train()
    losses = model(**model.data_preprocessor(cls_batch(n=2), True), mode='loss')
    expected = [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert seen == [[expected, expected]]
    losses['distill.loss_hcl'].backward()
    assert model.student.backbone.layer2[0].conv1.weight.grad.abs().sum() > 0

    # The mapping is checked when the distiller is built.
    bad = copy.deepcopy(mappings)
    bad['loss_hcl']['preds_S']['connector_kwargs'] = dict(teacher=teacher_feats)
    with pytest.raises(ValueError, match=r'connector "review".*no argument "teacher".*'
                                         r'teacher_feats'):
        build_distiller('tiny_cls_reviewkd', connectors=connectors, loss_forward_mappings=bad)
    bad['loss_hcl']['preds_S']['connector_kwargs'] = dict(
        teacher_feats=dict(from_student=False, recorder=['layer1', 'layer7']))
    with pytest.raises(ValueError, match=r'connector_kwargs.*teacher_feats.*"layer7"'):
        build_distiller('tiny_cls_reviewkd', connectors=connectors, loss_forward_mappings=bad)


SHIPPED = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'reviewkd', 'reviewkd_*.py')))


@pytest.mark.parametrize('path', SHIPPED, ids=osp.basename)
def test_shipped_configs_use_the_official_form(path):
    model = Config.fromfile(path).model
    assert model.connectors.review.output_size == 'teacher'
    preds_s = model.loss_forward_mappings.loss_hcl.preds_S
    assert preds_s.connector_kwargs.teacher_feats == model.loss_forward_mappings.loss_hcl.preds_T


#: The tensor of each stage the official code reviews, per shipped classification config
#: (student, teacher): 'pre' the stage's last block's sum before its ReLU, 'post' the stage's
#: output (after the ReLU), 'linear' the output of a stage without a final activation
#: (MobileNetV2); with the backbone layers of the stages (the embedding is the pooled output).
OFFICIAL_STAGE_TENSORS = {
    'reviewkd_resnet34_resnet18_8xb32_in1k.py': ('pre', 'pre', [1, 2, 3, 4], [1, 2, 3, 4]),
    'reviewkd_resnet50_mobilenet-v2_8xb32_in1k.py': ('linear', 'pre', [2, 3, 5, 7],
                                                     [1, 2, 3, 4]),
    'reviewkd_resnet50_resnet18_8xb16_cifar100.py': ('post', 'pre', [1, 2, 3, 4], [1, 2, 3, 4]),
    'reviewkd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py': ('post', 'pre',
                                                                     [1, 2, 3, 4], [1, 2, 3, 4]),
}


@pytest.mark.parametrize('name', sorted(OFFICIAL_STAGE_TENSORS))
def test_shipped_classification_configs_review_the_official_stage_tensors(name, tmp_path):
    from mmengine.registry import DefaultScope

    from mmstructkd.testing.fake_batch import fake_batch
    from tests.test_configs import build_kd_model
    student_form, teacher_form, student_layers, teacher_layers = OFFICIAL_STAGE_TENSORS[name]
    cfg, model = build_kd_model(osp.join(REPO_ROOT, 'configs', 'reviewkd', name), tmp_path)
    outputs = {}
    for side, layers in (('student', student_layers), ('teacher', teacher_layers)):
        backbone = getattr(model, side).backbone
        for i in layers:
            getattr(backbone, f'layer{i}').register_forward_hook(
                lambda m, args, out, key=(side, i): outputs.__setitem__(key, out.clone()))
    seen = {}
    model.connectors.review.register_forward_pre_hook(
        lambda m, args: seen.__setitem__('student', args[0]))
    model.distill_losses.loss_hcl.register_forward_pre_hook(
        lambda m, args, kwargs: seen.__setitem__('teacher', kwargs['preds_T']), with_kwargs=True)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model(**fake_batch(cfg, model, size=64), mode='loss')
    for side, form, layers in (('student', student_form, student_layers),
                               ('teacher', teacher_form, teacher_layers)):
        stages = seen[side]
        assert len(stages) == 5 and stages[4].shape[-2:] == (1, 1)  # + the pooled embedding
        for tensor, i in zip(stages, layers):
            output = outputs[(side, i)]
            where = f'{side} layer{i}'
            if form == 'pre':
                assert tensor.min() < 0, where  # before the ReLU
                assert torch.allclose(torch.relu(tensor), output, atol=1e-5), where
            else:
                assert torch.equal(tensor, output), where
                if form == 'post':
                    assert tensor.min() >= 0, where


# ------------------------------------------------------------------ which tensor of a stage
def pre_activation_by_hand(block, x):
    """The sum a mmpretrain BasicBlock feeds its last ReLU, computed from its layers."""
    identity = x if block.downsample is None else block.downsample(x)
    return block.norm2(block.conv2(block.relu(block.norm1(block.conv1(x))))) + identity


def test_per_recorder_indices_take_the_teachers_pre_activation_stages():
    # The official CIFAR-100 form: the teacher's stages before their last ReLU, recorded as the
    # input of the last block's ReLU (second call: the first is inside the block) next to a
    # stage recorded as an output, which needs neither index.
    stages = ['layer1', 'layer2', 'layer3', 'layer4']
    teacher_recorders = {s: dict(type='ModuleInputs', source=f'backbone.{s}.1.relu', clone=True)
                         for s in stages[:3]}
    teacher_recorders['layer4'] = dict(type='ModuleOutputs', source='backbone.layer4')
    teacher_stages = dict(from_student=False, recorder=stages, record_idx=[-1, -1, -1, None],
                          data_idx=[0, 0, 0, None])
    mappings = dict(loss_hcl=dict(
        preds_S=dict(from_student=True, recorder=stages, connector='review'),
        preds_T=teacher_stages))
    model = build_distiller('tiny_cls_reviewkd', teacher_recorders=teacher_recorders,
                            loss_forward_mappings=mappings)
    model.train()
    block_inputs, stage_outputs, seen = {}, {}, []
    for s in stages:
        layer = getattr(model.teacher.backbone, s)
        layer[1].register_forward_pre_hook(
            lambda m, args, s=s: block_inputs.__setitem__(s, args[0].clone()))
        layer.register_forward_hook(lambda m, args, out, s=s: stage_outputs.__setitem__(s, out))
    model.distill_losses.loss_hcl.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs['preds_T']), with_kwargs=True)
    model(**model.data_preprocessor(cls_batch(n=2), True), mode='loss')
    preds_t, = seen
    for i, s in enumerate(stages[:3]):
        block = getattr(model.teacher.backbone, s)[1]
        with torch.no_grad():
            expected = pre_activation_by_hand(block, block_inputs[s])
        assert torch.allclose(preds_t[i], expected, atol=1e-5), s
        assert preds_t[i].min() < 0  # before the ReLU
        assert torch.allclose(torch.relu(preds_t[i]), stage_outputs[s], atol=1e-5), s
    assert preds_t[3] is stage_outputs['layer4']


@pytest.mark.parametrize('key', ['record_idx', 'data_idx'])
def test_a_per_recorder_index_list_of_another_length_names_the_mapping(key):
    mappings = dict(loss_hcl=dict(
        preds_S=dict(from_student=True, recorder=['layer1', 'layer2', 'layer3', 'layer4'],
                     connector='review'),
        preds_T=dict(from_student=False, recorder=['layer1', 'layer2', 'layer3', 'layer4'],
                     **{key: [0, 0, 0]})))
    with pytest.raises(ValueError, match=rf'loss_hcl.*preds_T.*{key}=\[0, 0, 0\].*one entry '
                                         r'per recorder.*4 here'):
        build_distiller('tiny_cls_reviewkd', loss_forward_mappings=mappings)
    mappings['loss_hcl']['preds_T'] = dict(from_student=False, recorder='layer1',
                                           **{key: [0]})
    with pytest.raises(ValueError, match=rf'preds_T.*{key}=\[0\] is a list'):
        build_distiller('tiny_cls_reviewkd', loss_forward_mappings=mappings)
