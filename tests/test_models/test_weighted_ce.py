"""The class-weighted cross-entropy used by class-balanced teachers."""
import math

import pytest
import torch

from mmstructkd.models.losses import WeightedCrossEntropyLoss


def test_weighted_mean_over_non_ignored_pixels_matches_hand_value():
    # Three pixels: label 0 (weight 1), label 1 (weight 3), void (255, left out).
    logits = torch.zeros(1, 2, 1, 3)
    logits[0, :, 0, 0] = torch.tensor([math.log(3.0), 0.0])  # p(0) = 3/4
    labels = torch.tensor([[[0, 1, 255]]])
    loss = WeightedCrossEntropyLoss(class_weight=[1.0, 3.0], loss_weight=2.0)(logits, labels)
    hand = (1 * -math.log(0.75) + 3 * -math.log(0.5)) / (1 + 3)
    assert loss.item() == pytest.approx(2.0 * hand, rel=1e-6)
    # Per-pixel weights (a pixel sampler's) multiply both sums; a head calls it with them.
    weighted = WeightedCrossEntropyLoss([1.0, 3.0])(logits, labels,
                                                     weight=torch.tensor([[[1.0, 0.0, 1.0]]]))
    assert weighted.item() == pytest.approx(-math.log(0.75), rel=1e-6)
    assert WeightedCrossEntropyLoss([1.0, 3.0]).loss_name == 'loss_ce'


def test_class_count_must_match_and_weights_be_non_negative():
    with pytest.raises(ValueError, match='one weight per class'):
        WeightedCrossEntropyLoss([1.0, 2.0])(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2).long())
    with pytest.raises(ValueError, match='non-negative'):
        WeightedCrossEntropyLoss([1.0, -1.0])
