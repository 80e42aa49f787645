"""A warning before training when a parameter schedule does not fit the run's length."""
from typing import Iterator, List

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim.scheduler.param_scheduler import INF

from mmstructkd.registry import HOOKS


def _schedulers(runner) -> Iterator:
    schedulers = runner.param_schedulers or []
    groups = schedulers.values() if isinstance(schedulers, dict) else [schedulers]
    for group in groups:
        yield from (group if isinstance(group, (list, tuple)) else [group])


def schedule_problems(runner) -> List[str]:
    """What does not fit: a scheduler (a warm-up, say) that ends after the last iteration or
    epoch of the run, or a milestone after it (a decay that never happens).

    Args:
        runner: A runner whose train loop and param schedulers are built.

    Returns:
        list[str]: One sentence per problem.
    """
    max_iters, max_epochs = runner.max_iters, runner.max_epochs
    epoch_based = hasattr(runner.train_loop, 'max_epochs')
    length = f'{max_iters} iterations' + (
        f' ({max_epochs} epochs of {max_iters // max(max_epochs, 1)})' if epoch_based else '')
    problems = []
    for scheduler in _schedulers(runner):
        name = type(scheduler).__name__
        unit, last = ('epoch', max_epochs) if scheduler.by_epoch else ('iteration', max_iters)
        if not last:
            continue
        if scheduler.end < INF and scheduler.end > last:
            problems.append(f'{name} ends at {unit} {scheduler.end}, after the run\'s last '
                            f'({length})')
        late = sorted(scheduler.begin + m for m in getattr(scheduler, 'milestones', None) or {}
                      if scheduler.begin + m >= last)
        if late:
            problems.append(f'{name} has milestones at {unit} {late}, at or after the end of '
                            f'the run ({length}): that decay never happens')
    return problems


@HOOKS.register_module()
class ScheduleCheckHook(Hook):
    """Warns, once the schedulers are built, when one does not fit the run (see
    :func:`schedule_problems`): e.g. a 100-iteration warm-up in a run of 48 iterations (24
    epochs of a 12-image dataset), which never reaches the configured learning rate.

    ``SafeRunner`` (``tools/train.py``) registers it; it only logs.
    """

    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        problems = schedule_problems(runner)
        if not problems:
            return
        hint = ('set warmup_iters (a top-level variable of this config) shorter'
                if 'warmup_iters' in runner.cfg else 'shorten the scheduler\'s end')
        print_log('The parameter schedule does not fit this run: ' + '; '.join(problems) +
                  f'. For a warm-up, {hint}; a schedule written against max_iters / '
                  'max_epochs (see docs/own_data.md) follows the run\'s length.',
                  logger='current', level=30)
