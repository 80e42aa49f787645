"""Search spaces (shape-preserving candidates) and the budgeted selection."""
import itertools
import random

import pytest
import torch

from mmstructkd.compression import build_candidates, parse_budget, select_candidates, split_backbone
from mmstructkd.compression.search_space import InvertedResidualSpace, ResidualSpace
from mmstructkd.registry import MODELS, build_own

STAGE = dict(type='InvertedResidualStage', in_channels=8, out_channels=16, num_blocks=3,
             stride=2, expand_ratio=6)


def test_inverted_residual_space_lists_repeats_times_expansions_teacher_first():
    candidates = InvertedResidualSpace(expand_ratios=(6, 4, 2, 1))(STAGE)
    assert candidates[0] == STAGE
    pairs = [(c['expand_ratio'], c['num_blocks']) for c in candidates]
    assert pairs == [(6, 3), (6, 2), (6, 1), (4, 3), (4, 2), (4, 1), (2, 3), (2, 2), (2, 1),
                     (1, 3), (1, 2), (1, 1)]
    # Expansions above the teacher's are not cheaper: skipped.
    assert len(InvertedResidualSpace(expand_ratios=(8, 6))(STAGE)) == 3


@pytest.mark.parametrize('spec', [
    STAGE,
    dict(type='ResidualStage', block='BasicBlock', in_channels=8, out_channels=16,
         num_blocks=2, stride=2, expansion=1),
    dict(type='ResidualStage', block='Bottleneck', in_channels=16, out_channels=32,
         num_blocks=2, stride=1, expansion=4),
], ids=['inverted-residual', 'basic', 'bottleneck'])
def test_every_candidate_keeps_the_units_input_and_output_shapes(spec):
    space = InvertedResidualSpace() if spec['type'] == 'InvertedResidualStage' \
        else ResidualSpace()
    candidates = space(spec)
    assert len(candidates) > 3 and candidates[0] == spec
    x = torch.randn(2, spec['in_channels'], 12, 12)
    shapes = {tuple(build_own(MODELS, c)(x).shape) for c in candidates}
    stride = spec['stride']
    assert shapes == {(2, spec['out_channels'], 12 // stride, 12 // stride)}


def test_per_unit_spaces_override_and_unknown_units_are_refused():
    from mmpretrain.models.backbones import ResNet_CIFAR
    split = split_backbone(ResNet_CIFAR(18, stem_channels=8, base_channels=8))
    candidates = build_candidates(split, dict(per_unit=dict(layer1=dict(type='KeepSpace'))))
    assert len(candidates['layer1']) == 1 and len(candidates['layer2']) == 10
    with pytest.raises(KeyError, match=r"\['layer9'\].*not searchable"):
        build_candidates(split, dict(per_unit=dict(layer9=dict(type='KeepSpace'))))


def brute_force(costs, errors, budget):
    fits = [c for c in itertools.product(*[range(len(u)) for u in costs])
            if sum(u[i] for u, i in zip(costs, c)) <= budget]
    return min(sum(e[i] for e, i in zip(errors, c)) for c in fits)


def test_selection_meets_the_budget_with_the_least_error():
    rng = random.Random(0)
    for _ in range(200):
        costs = [[rng.randint(1, 60) for _ in range(rng.randint(1, 4))] for _ in range(4)]
        errors = [[rng.random() for _ in unit] for unit in costs]
        budget = rng.randint(sum(map(min, costs)), sum(map(max, costs)))
        choice = select_candidates(costs, errors, budget)
        assert sum(u[i] for u, i in zip(costs, choice)) <= budget
        assert sum(e[i] for e, i in zip(errors, choice)) == pytest.approx(
            brute_force(costs, errors, budget))


def test_large_costs_are_rounded_up_so_the_budget_still_holds():
    costs = [[3_000_001, 1_500_007, 700_003], [2_000_011, 900_001, 400_009]]
    errors = [[0.0, 0.1, 0.4], [0.0, 0.2, 0.5]]
    choice = select_candidates(costs, errors, 2_600_000, resolution=100)
    assert sum(u[i] for u, i in zip(costs, choice)) <= 2_600_000
    assert choice == [1, 1]  # 2.4M; the only better pair (0, 2) costs 3.4M


def test_an_impossible_budget_says_what_the_cheapest_is():
    with pytest.raises(ValueError, match='cheapest student.*3'):
        select_candidates([[5, 2], [4, 1]], [[0, 1], [0, 1]], 2)


@pytest.mark.parametrize('text,value', [('0.5', 0.5), ('300M', 3e8), ('1.2G', 1.2e9),
                                        ('2e6', 2e6), (0.25, 0.25), ('40k', 4e4)])
def test_budgets_are_fractions_or_counts(text, value):
    assert parse_budget(text) == pytest.approx(value)


def test_a_malformed_budget_names_the_forms():
    with pytest.raises(ValueError, match='fraction of the teacher'):
        parse_budget('half')
