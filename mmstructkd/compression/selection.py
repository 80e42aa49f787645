"""Choosing one candidate per unit under a FLOPs or parameter budget.

This is a multiple-choice knapsack: minimise the summed block-wise errors subject to the summed
costs fitting the budget. Summing errors assumes the units' errors add up, which is what
block-wise training measures (each candidate on the teacher's own input). Greedy trading of
error per cost can miss the best combination by a lot when candidates' costs differ in size; the
exact dynamic programme over costs rounded up to ``resolution`` steps is cheap (units x
candidates x resolution) and, because costs round up, whatever it returns fits the budget.
"""
import math
from typing import List, Sequence

import numpy as np


def select_candidates(costs: Sequence[Sequence[float]], errors: Sequence[Sequence[float]],
                      budget: float, resolution: int = 4000) -> List[int]:
    """One candidate index per unit with the least total error whose total cost <= budget.

    Args:
        costs (list[list[float]]): Per unit, the cost of each candidate (FLOPs or params).
        errors (list[list[float]]): Per unit, the block-wise error of each candidate.
        budget (float): The most the chosen candidates may cost together.
        resolution (int): Cost steps of the dynamic programme: costs are rounded up to
            multiples of budget / resolution (so the result always fits; a finer resolution
            wastes less of the budget).

    Returns:
        list[int]: The chosen candidate of each unit.

    Raises:
        ValueError: if even the cheapest candidates do not fit (the message gives their cost).
    """
    if len(costs) != len(errors) or any(len(c) != len(e) for c, e in zip(costs, errors)):
        raise ValueError('costs and errors need the same units and candidates')
    cheapest = sum(min(c) for c in costs)
    if cheapest > budget:
        raise ValueError(f'the budget ({budget:.4g}) is below the cheapest student the search '
                         f'space allows ({cheapest:.4g} for the searchable units): raise the '
                         'budget or add cheaper candidates to the search space.')
    if not costs:
        return []
    if all(float(c).is_integer() for unit in costs for c in unit):
        # FLOPs and parameter counts are integers: exact integer steps (exact when step is 1).
        step = max(1, math.ceil(budget / resolution))
        quantised = [[-(-int(c) // step) for c in unit] for unit in costs]
        size = int(budget) // step + 1
    else:
        step = budget / resolution if budget > 0 else 1.0
        quantised = [[int(math.ceil(c / step - 1e-9)) for c in unit] for unit in costs]
        size = resolution + 1
    best = np.full(size, np.inf)  # best[k]: least error of the units so far at cost k
    best[0] = 0.0
    picks = []
    for unit_costs, unit_errors in zip(quantised, errors):
        new = np.full(size, np.inf)
        pick = np.full(size, -1, dtype=np.int64)
        for i, (q, err) in enumerate(zip(unit_costs, unit_errors)):
            if q >= size:
                continue
            shifted = np.full(size, np.inf)
            shifted[q:] = best[:size - q] + err
            better = shifted < new
            new[better] = shifted[better]
            pick[better] = i
        best = new
        picks.append(pick)
    if not np.isfinite(best).any():
        # Rounding up cost a little too much: the budget is within one step of the cheapest.
        return [int(np.argmin(c)) for c in costs]
    k = int(np.argmin(best))
    choice = []
    for unit_costs, pick in zip(reversed(quantised), reversed(picks)):
        i = int(pick[k])
        choice.append(i)
        k -= unit_costs[i]
    return choice[::-1]
