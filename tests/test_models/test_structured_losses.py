"""Pixel-wise and pair-wise losses of structured KD against hand-computed values."""
import math

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmstructkd.models.losses import PairWiseLoss, PixelWiseLoss
from mmstructkd.models.stages import stack_seg_labels

KL_HAND = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)


def seg_sample(labels):
    return SegDataSample(gt_sem_seg=PixelData(data=torch.tensor(labels)[None]))


def test_pixel_wise_ignores_pixels_and_matches_hand_value():
    # Two pixels; the second is ignored, so only the first one's KL counts.
    s = torch.zeros(1, 2, 1, 2)
    t = torch.zeros(1, 2, 1, 2)
    t[0, :, 0, 0] = torch.tensor([0.0, math.log(3.0)])
    t[0, :, 0, 1] = torch.tensor([5.0, -5.0])
    loss = PixelWiseLoss(loss_weight=10.0)(s, t, stack_seg_labels([seg_sample([[1, 255]])]))
    assert loss.item() == pytest.approx(10 * KL_HAND, rel=1e-5)
    # Without an ignore index both pixels count.
    both = PixelWiseLoss(ignore_index=None)(s, t)
    p = torch.softmax(torch.tensor([5.0, -5.0]), 0)
    kl1 = float((p * (p / 0.5).log()).sum())
    assert both.item() == pytest.approx((KL_HAND + kl1) / 2, rel=1e-5)
    # Everything ignored: zero, not NaN.
    assert PixelWiseLoss()(s, t, stack_seg_labels([seg_sample([[255, 255]])])).item() == 0.0


def binary_kl(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def test_pixel_wise_sigmoid_sums_binary_kls_over_classes_and_student_is_resized():
    # Two classes: teacher p = (3/4, 1/4) everywhere (logits +-ln 3); the student's 1x2 map
    # (logits 0 | ln 3 per class 0, 0 | 0 per class 1) is resized (bilinear) to 2x4: its
    # class-0 columns become 0, ln3/4, 3 ln3/4, ln 3 (align_corners=False).
    ln3 = math.log(3.0)
    t = torch.tensor([ln3, -ln3]).view(1, 2, 1, 1).expand(1, 2, 2, 4).contiguous()
    s = torch.tensor([[[[0.0, ln3]], [[0.0, 0.0]]]])
    columns = [0.0, ln3 / 4, 3 * ln3 / 4, ln3]
    class0 = [binary_kl(0.75, 1 / (1 + math.exp(-x))) for x in columns]
    class1 = binary_kl(0.25, 0.5)
    hand = sum(c + class1 for c in class0) / 4  # summed over classes, mean over pixels
    loss = PixelWiseLoss(activation='sigmoid', ignore_index=None)(s, t)
    assert loss.item() == pytest.approx(hand, rel=1e-5)


def test_pixel_wise_gradient_reaches_student_only():
    s = torch.randn(2, 3, 4, 4, requires_grad=True)
    t = torch.randn(2, 3, 4, 4, requires_grad=True)
    PixelWiseLoss(ignore_index=None)(s, t).backward()
    assert s.grad.abs().sum() > 0 and t.grad is None


# Four nodes with 2 channels: v1=[1,0], v2=[0,1], v3=[1,1], v4=[1,0] (teacher) against a
# student whose nodes are all [1,0]. Cosine affinities differ by 1 in 4 entries and by
# 1 - 1/sqrt(2) in 6 entries of the 4x4 matrix.
PAIR_HAND = (4 + 6 * (1 - 1 / math.sqrt(2))**2) / 16
TEACHER_NODES = torch.tensor([[1., 0.], [0., 1.], [1., 1.], [1., 0.]]).T.reshape(1, 2, 2, 2)


def test_pair_wise_matches_hand_value_with_pixel_nodes():
    student = torch.zeros(1, 2, 2, 2)
    student[:, 0] = 1.0
    loss = PairWiseLoss(node_size=1)(student, TEACHER_NODES)
    assert loss.item() == pytest.approx(PAIR_HAND, rel=1e-6)


def test_pair_wise_average_and_max_pooling_of_patches():
    # 4x4 maps whose 2x2 patches average (or max) to the four node vectors above.
    avg_teacher = TEACHER_NODES.repeat_interleave(2, 2).repeat_interleave(2, 3)
    student = torch.zeros(1, 3, 4, 4)  # another width: affinities are still 4x4
    student[:, 1] = 2.0
    assert PairWiseLoss(node_size=2, pool='avg')(student, avg_teacher).item() == \
        pytest.approx(PAIR_HAND, rel=1e-6)
    assert PairWiseLoss(node_scale=0.5, pool='avg')(student, avg_teacher).item() == \
        pytest.approx(PAIR_HAND, rel=1e-6)
    max_teacher = torch.zeros(1, 2, 4, 4)
    max_teacher[:, :, ::2, ::2] = TEACHER_NODES  # one non-zero corner per patch
    assert PairWiseLoss(node_size=2, pool='max')(student, max_teacher).item() == \
        pytest.approx(PAIR_HAND, rel=1e-6)
    # The average of such a patch is the vector / 4: same direction, same affinities.
    assert PairWiseLoss(node_size=2, pool='avg')(student, max_teacher).item() == \
        pytest.approx(PAIR_HAND, rel=1e-6)


def test_pair_wise_gradients_and_options():
    s = torch.randn(2, 8, 6, 6, requires_grad=True)
    t = torch.randn(2, 16, 6, 6, requires_grad=True)
    PairWiseLoss(node_size=2)(s, t).backward()
    assert s.grad.abs().sum() > 0 and t.grad is None
    assert PairWiseLoss(node_size=2)(t.detach(), t.detach()).item() == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match='not both'):
        PairWiseLoss(node_size=2, node_scale=0.5)
    with pytest.raises(ValueError, match='pool'):
        PairWiseLoss(pool='median')


# ---------------------------------------------------------------- the official forms
def _softmax(values):
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def test_pixel_wise_official_form_value_and_gradient():
    # Official code: sum over batch and pixels of -sum_c p_t log p_s, divided by H*W (not N*H*W),
    # every pixel kept (255 labels too). Odd, non-square maps, N = 2.
    torch.manual_seed(0)
    n, c, h, w = 2, 3, 3, 5
    s = torch.randn(n, c, h, w, requires_grad=True)
    t = torch.randn(n, c, h, w)
    labels = [[[255] * w] * h] * n  # every label ignored: the official form keeps them
    loss = PixelWiseLoss(loss_weight=10.0, divergence='ce', normalize='image_area',
                         ignore_index=None)(s, t,
                                            stack_seg_labels([seg_sample(lab) for lab in labels]))
    hand = 0.0
    for i in range(n):
        for y in range(h):
            for x in range(w):
                p_t = _softmax([float(t[i, k, y, x]) for k in range(c)])
                p_s = _softmax([float(s.detach()[i, k, y, x]) for k in range(c)])
                hand -= sum(a * math.log(b) for a, b in zip(p_t, p_s))
    assert loss.item() == pytest.approx(10.0 * hand / (h * w), rel=1e-6)
    # d/ds of -sum p_t log softmax(s) is softmax(s) - p_t, per pixel, times 10 / (H*W).
    loss.backward()
    expected = 10.0 * (torch.softmax(s.detach(), 1) - torch.softmax(t, 1)) / (h * w)
    torch.testing.assert_close(s.grad, expected)


def test_pixel_wise_official_normalisation_is_batch_times_the_paper_mean():
    torch.manual_seed(1)
    s, t = torch.randn(4, 5, 7, 3), torch.randn(4, 5, 7, 3)
    paper = PixelWiseLoss(ignore_index=None)(s, t)
    kl_image_area = PixelWiseLoss(ignore_index=None, normalize='image_area')(s, t)
    assert kl_image_area.item() == pytest.approx(4 * paper.item(), rel=1e-5)
    # Cross-entropy minus KL is the teacher's entropy (no gradient): summed / (H*W).
    ce = PixelWiseLoss(ignore_index=None, normalize='image_area', divergence='ce')(s, t)
    p_t = torch.softmax(t, 1)
    entropy = -(p_t * p_t.log()).sum() / (7 * 3)
    assert (ce - kl_image_area).item() == pytest.approx(entropy.item(), rel=1e-4)
    with pytest.raises(ValueError, match='image_area'):
        PixelWiseLoss(normalize='batch')
    with pytest.raises(ValueError, match='divergence'):
        PixelWiseLoss(divergence='js')


def _max_pool_nodes(feat, kh, kw):
    """Nodes of the official pooling by hand: windows of kh x kw, stride = window, ceil mode
    (a last, narrower window where the side does not divide). Returns per node the vector
    and the (y, x) of the maximum of each channel."""
    n, c, h, w = feat.shape
    rows = [(y, min(y + kh, h)) for y in range(0, h, kh)]
    cols = [(x, min(x + kw, w)) for x in range(0, w, kw)]
    nodes = []
    for i in range(n):
        per_image = []
        for y0, y1 in rows:
            for x0, x1 in cols:
                vec, where = [], []
                for ch in range(c):
                    best = max(((float(feat[i, ch, y, x]), (y, x)) for y in range(y0, y1)
                                for x in range(x0, x1)))
                    vec.append(best[0])
                    where.append(best[1])
                per_image.append((vec, where))
        nodes.append(per_image)
    return nodes


def test_pair_wise_official_form_value_and_gradient():
    # node_scale 0.5 on a 5x7 map: kernel (int(2.5), int(3.5)) = (2, 3), stride = kernel,
    # ceil mode: 3 x 3 = 9 nodes (the last row and column narrower). Norms + 1e-8, detached;
    # loss = sum (a_s - a_t)^2 / M^2 / N.
    torch.manual_seed(2)
    n, h, w = 2, 5, 7
    s = torch.randn(n, 4, h, w, requires_grad=True)
    t = torch.randn(n, 6, h, w)
    loss = PairWiseLoss(node_scale=0.5, pool='max', detach_norm=True, loss_weight=0.5)(s, t)
    s_nodes, t_nodes = _max_pool_nodes(s.detach(), 2, 3), _max_pool_nodes(t, 2, 3)
    m = len(s_nodes[0])
    assert m == 9

    def affinity(nodes):
        norms = [math.sqrt(sum(v * v for v in vec)) + 1e-8 for vec, _ in nodes]
        return [[sum(a * b for a, b in zip(nodes[i][0], nodes[j][0])) / (norms[i] * norms[j])
                 for j in range(m)] for i in range(m)], norms

    hand, grad = 0.0, torch.zeros_like(s)
    scale = 0.5 / (m * m * n)
    for i in range(n):
        a_s, norms = affinity(s_nodes[i])
        a_t, _ = affinity(t_nodes[i])
        hand += scale * sum((a_s[p][q] - a_t[p][q])**2 for p in range(m) for q in range(m))
        # dL/df_k = 4 * scale * sum_j (a_kj - t_kj) f_j / (n_k n_j) (norms held constant),
        # routed to the maximum of each channel of node k.
        for k in range(m):
            for ch in range(4):
                g = 4 * scale * sum((a_s[k][j] - a_t[k][j]) * s_nodes[i][j][0][ch] /
                                    (norms[k] * norms[j]) for j in range(m))
                y, x = s_nodes[i][k][1][ch]
                grad[i, ch, y, x] += g
    assert loss.item() == pytest.approx(hand, rel=1e-5)
    loss.backward()
    torch.testing.assert_close(s.grad, grad, rtol=1e-4, atol=1e-7)


def test_pair_wise_detached_norms_change_the_gradient_not_the_value():
    torch.manual_seed(3)
    s = torch.randn(1, 3, 4, 6, requires_grad=True)
    t = torch.randn(1, 3, 4, 6)
    plain = PairWiseLoss(node_size=2)(s, t)
    g_plain, = torch.autograd.grad(plain, s)
    detached = PairWiseLoss(node_size=2, detach_norm=True)(s, t)
    g_detached, = torch.autograd.grad(detached, s)
    assert plain.item() == pytest.approx(detached.item(), rel=1e-6)
    assert not torch.allclose(g_plain, g_detached)


def test_pair_wise_graph_of_one_node_is_an_error():
    # A 2x2 map pooled by 2x2 patches is one node: its affinity is 1 whatever the features,
    # so the loss would be 0 without a gradient. Said, not silently returned.
    with pytest.raises(ValueError, match='one node'):
        PairWiseLoss(node_size=2)(torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match='one node'):
        PairWiseLoss(node_scale=1.0)(torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4))
