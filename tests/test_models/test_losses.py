import math

import pytest
import torch

from mmstructkd.models.losses import FeatureMSELoss, KDLoss


def test_kd_loss_matches_hand_computed_value():
    # Two classes, one sample: p_t = softmax([0, ln 3]) = [1/4, 3/4], p_s = [1/2, 1/2].
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[0.0, math.log(3.0)]])
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert KDLoss(tau=1.0)(s, t).item() == pytest.approx(expected, rel=1e-6)


def test_kd_loss_temperature_and_weight():
    # With tau=2 the teacher logits [0, 2 ln 3] soften to [0, ln 3]: the same KL as above.
    s = torch.zeros(1, 2)
    t = torch.tensor([[0.0, 2 * math.log(3.0)]])  # /tau -> [0, ln 3]
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert KDLoss(tau=2.0, loss_weight=0.5)(s, t).item() == pytest.approx(0.5 * 4 * kl, rel=1e-6)


def test_kd_loss_dense_averages_over_pixels_and_resizes_student():
    torch.manual_seed(0)
    s = torch.randn(2, 3, 4, 4)
    t = torch.randn(2, 3, 4, 4)
    per_pixel = (t.softmax(1) * (t.log_softmax(1) - s.log_softmax(1))).sum(1)
    assert KDLoss()(s, t).item() == pytest.approx(per_pixel.mean().item(), rel=1e-5)
    # A student map at half resolution is upsampled to the teacher's size.
    small = torch.randn(2, 3, 2, 2)
    up = torch.nn.functional.interpolate(small, size=(4, 4), mode='bilinear',
                                         align_corners=False)
    assert KDLoss()(small, t).item() == pytest.approx(KDLoss()(up, t).item(), rel=1e-6)
    torch.testing.assert_close(KDLoss(reduction='none')(s, t), per_pixel)
    assert KDLoss(reduction='sum')(s, t).item() == pytest.approx(per_pixel.sum().item(),
                                                                 rel=1e-5)


def test_kd_loss_is_zero_for_identical_logits_and_grad_only_to_student():
    s = torch.randn(4, 5, requires_grad=True)
    t = s.detach().clone().requires_grad_(True)
    loss = KDLoss(tau=3.0)(s, t)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    KDLoss(tau=3.0)(s, t + torch.randn_like(t)).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_feature_mse_loss_hand_computed_and_resized():
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    t = torch.zeros(1, 1, 2, 2)
    assert FeatureMSELoss(loss_weight=2.0)(s, t).item() == pytest.approx(2 * 30 / 4)
    assert FeatureMSELoss(reduction='sum')(s, t).item() == pytest.approx(30.0)
    # (1, 1, 1, 1) student of value 2 upsampled to 2x2 is all twos.
    assert FeatureMSELoss()(torch.full((1, 1, 1, 1), 2.0), t).item() == pytest.approx(4.0)
    # The student (0 | 4) is resized to the teacher's 1x4, bilinear without corner alignment:
    # 0, 1, 3, 4 -> MSE 26 / 4 (nearest would give 8, the teacher shrunk to 1x2 too).
    assert FeatureMSELoss()(torch.tensor([[[[0.0, 4.0]]]]), torch.zeros(1, 1, 1, 4)).item() == \
        pytest.approx(6.5)


def test_losses_raise_clear_errors_for_shapes_that_cannot_be_aligned():
    with pytest.raises(ValueError, match='connector'):
        FeatureMSELoss()(torch.randn(2, 8, 4, 4), torch.randn(2, 16, 4, 4))
    with pytest.raises(ValueError, match='batch sizes differ'):
        KDLoss()(torch.randn(2, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match='numbers of dimensions'):
        KDLoss()(torch.randn(2, 3), torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match='tau must be positive'):
        KDLoss(tau=0)
    with pytest.raises(ValueError, match='reduction'):
        FeatureMSELoss(reduction='avg')


def test_losses_compute_in_fp32_for_half_inputs():
    s = torch.randn(2, 4).to(torch.bfloat16)
    t = torch.randn(2, 4).to(torch.bfloat16)
    assert KDLoss()(s, t).dtype == torch.float32
    assert FeatureMSELoss()(s, t).dtype == torch.float32
