"""Pixel-wise and pair-wise losses of structured KD against hand-computed values."""
import math

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmstructkd.models.losses import PairWiseLoss, PixelWiseLoss

KL_HAND = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)


def seg_sample(labels):
    return SegDataSample(gt_sem_seg=PixelData(data=torch.tensor(labels)[None]))


def test_pixel_wise_ignores_pixels_and_matches_hand_value():
    # Two pixels; the second is ignored, so only the first one's KL counts.
    s = torch.zeros(1, 2, 1, 2)
    t = torch.zeros(1, 2, 1, 2)
    t[0, :, 0, 0] = torch.tensor([0.0, math.log(3.0)])
    t[0, :, 0, 1] = torch.tensor([5.0, -5.0])
    loss = PixelWiseLoss(loss_weight=10.0)(s, t, [seg_sample([[1, 255]])])
    assert loss.item() == pytest.approx(10 * KL_HAND, rel=1e-5)
    # Without an ignore index both pixels count.
    both = PixelWiseLoss(ignore_index=None)(s, t)
    p = torch.softmax(torch.tensor([5.0, -5.0]), 0)
    kl1 = float((p * (p / 0.5).log()).sum())
    assert both.item() == pytest.approx((KL_HAND + kl1) / 2, rel=1e-5)
    # Everything ignored: zero, not NaN.
    assert PixelWiseLoss()(s, t, [seg_sample([[255, 255]])]).item() == 0.0


def test_pixel_wise_sigmoid_is_binary_kl_and_student_is_resized():
    s = torch.zeros(1, 1, 2, 2)
    t = torch.full((1, 1, 4, 4), math.log(3.0))  # p = 0.75 everywhere; student q = 0.5
    hand = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
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
