"""Channel-wise distillation against hand-computed values."""
import math

import pytest
import torch

from mmstructkd.models.losses import ChannelWiseDivergence


def test_cwd_matches_hand_value_and_gradient_on_a_non_square_map():
    # N = 2, C = 3, a 2x3 map: per (image, channel) a distribution over 6 positions.
    torch.manual_seed(0)
    tau = 2.0
    s = torch.randn(2, 3, 2, 3, requires_grad=True)
    t = torch.randn(2, 3, 2, 3)
    loss = ChannelWiseDivergence(tau=tau, loss_weight=3.0)(s, t)
    hand = 0.0
    for n in range(2):
        for c in range(3):
            xs = [float(v) / tau for v in s.detach()[n, c].flatten()]
            xt = [float(v) / tau for v in t[n, c].flatten()]
            zs, zt = sum(math.exp(v) for v in xs), sum(math.exp(v) for v in xt)
            ps, pt = [math.exp(v) / zs for v in xs], [math.exp(v) / zt for v in xt]
            hand += sum(b * math.log(b / a) for a, b in zip(ps, pt))
    assert loss.item() == pytest.approx(3.0 * tau**2 * hand / (2 * 3), rel=1e-6)
    # d/ds of tau^2 KL(p_t || softmax(s / tau)) = tau (softmax(s / tau) - p_t) per position.
    loss.backward()
    p_s = torch.softmax(s.detach().flatten(2) / tau, 2).view_as(s)
    p_t = torch.softmax(t.flatten(2) / tau, 2).view_as(t)
    torch.testing.assert_close(s.grad, 3.0 * tau * (p_s - p_t) / (2 * 3))


def test_cwd_is_zero_for_equal_maps_resizes_the_student_and_needs_equal_channels():
    t = torch.randn(2, 4, 6, 10)
    assert ChannelWiseDivergence()(t.clone(), t).item() == pytest.approx(0, abs=1e-6)
    # A constant student map resized to the teacher's size is uniform over positions.
    s = torch.zeros(2, 4, 3, 5, requires_grad=True)
    loss = ChannelWiseDivergence()(s, t)
    p_t = torch.softmax(t.flatten(2), 2)
    uniform_kl = (p_t * (p_t.log() + math.log(60))).sum() / 8
    assert loss.item() == pytest.approx(uniform_kl.item(), rel=1e-5)
    loss.backward()
    assert s.grad.abs().sum() > 0
    # A non-constant student (0 | 4) resized (bilinear, corners not aligned) to the teacher's
    # 1x4 is 0, 1, 3, 4; a constant teacher is uniform: KL = sum 1/4 (ln 1/4 - ln q_s).
    logits = [0.0, 1.0, 3.0, 4.0]
    log_z = math.log(sum(math.exp(x) for x in logits))
    hand = sum(0.25 * (math.log(0.25) - (x - log_z)) for x in logits)
    value = ChannelWiseDivergence()(torch.tensor([[[[0.0, 4.0]]]]), torch.zeros(1, 1, 1, 4))
    assert value.item() == pytest.approx(hand, rel=1e-5)
    with pytest.raises(ValueError, match='connector'):
        ChannelWiseDivergence()(torch.randn(2, 3, 6, 10), t)
    with pytest.raises(ValueError, match='tau'):
        ChannelWiseDivergence(tau=0)
