"""Hooks that change the weights of distillation losses during training, or stop them."""
import bisect
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmstructkd.registry import HOOKS


def get_distiller(runner):
    """The runner's distiller (unwrapped from DDP), or a clear error."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if not hasattr(model, 'loss_scales'):
        raise TypeError(f'{type(model).__name__} is not a mmstructkd distiller: distillation '
                        'hooks need model=dict(type="mmstructkd.SingleTeacherDistiller", ...).')
    return model


@HOOKS.register_module()
class DistillLossWeightHook(Hook):
    """Sets a multiplier on each distillation loss as a function of the iteration or epoch.

    The multiplier is recomputed from the current iteration/epoch before every iteration, so
    it is right after ``--resume`` too. It multiplies the loss's own ``loss_weight``.

    Args:
        schedule (dict[str, list[tuple[int, float]]]): Loss name (or ``'*'`` for every loss
            without its own entry) -> points ``[(start, value), ...]`` sorted by ``start``.
            Before the first point the multiplier is 1.
        by_epoch (bool): Whether ``start`` counts epochs (else iterations). Defaults to False.
        linear (bool): Interpolate linearly between points (e.g. a warm-up from 0 to 1),
            every iteration (by epoch: at fractional epochs); otherwise each value holds until
            the next point. Defaults to False.

    Example:
        >>> # warm the KD loss up over 1000 iterations, switch it off at 20000 (of a longer run)
        >>> custom_hooks = [dict(type='mmstructkd.DistillLossWeightHook', linear=True,
        ...                      schedule=dict(loss_kd=[(0, 0.), (1000, 1.), (19999, 1.),
        ...                                             (20000, 0.)]))]
    """

    priority = 'NORMAL'

    def __init__(self, schedule: Dict[str, Sequence[Tuple[int, float]]],
                 by_epoch: bool = False, linear: bool = False) -> None:
        self.schedule: Dict[str, List[Tuple[int, float]]] = {}
        for name, points in schedule.items():
            points = [tuple(p) for p in points]
            if not points or any(len(p) != 2 for p in points):
                raise ValueError(f'DistillLossWeightHook: schedule["{name}"] must be a list of '
                                 f'(start, value) pairs, got {points}')
            starts = [p[0] for p in points]
            if starts != sorted(starts):
                raise ValueError(f'DistillLossWeightHook: schedule["{name}"] starts must be '
                                 f'sorted, got {starts}')
            self.schedule[name] = points
        self.by_epoch = by_epoch
        self.linear = linear
        self._last: Dict[str, float] = {}

    def value_at(self, name: str, t: float) -> float:
        """The multiplier of loss ``name`` at iteration/epoch ``t``."""
        points = self.schedule.get(name, self.schedule.get('*'))
        if points is None:
            return 1.0
        starts = [p[0] for p in points]
        i = bisect.bisect_right(starts, t) - 1
        if i < 0:
            return 1.0
        if not self.linear or i == len(points) - 1:
            return float(points[i][1])
        (t0, v0), (t1, v1) = points[i], points[i + 1]
        return float(v0 + (v1 - v0) * (t - t0) / (t1 - t0))

    def before_train(self, runner) -> None:
        distiller = get_distiller(runner)
        unknown = sorted(set(self.schedule) - set(distiller.loss_scales) - {'*'})
        if unknown:
            raise ValueError(f'DistillLossWeightHook: schedule names losses {unknown} that the '
                             f'distiller does not have; it has {sorted(distiller.loss_scales)}.')
        self._warn_past_end(runner)

    def _warn_past_end(self, runner) -> None:
        """Warn about schedule points the run never reaches (at or after its last
        iteration/epoch): a schedule written for a longer run."""
        unit, limit = ('epoch', runner.max_epochs) if self.by_epoch \
            else ('iteration', runner.max_iters)
        late = {name: [p for p in points if p[0] >= limit]
                for name, points in self.schedule.items()}
        late = {name: points for name, points in late.items() if points}
        if late:
            _warn(self._past_end_message(late, unit, limit))

    def _past_end_message(self, late: Dict[str, list], unit: str, limit: int) -> str:
        where = 'max_epochs' if unit == 'epoch' else 'max_iters'
        listed = '; '.join(f'{name}: {points}' for name, points in late.items())
        return (f'{type(self).__name__}: schedule points start at or after the end of the run '
                f'({where}={limit}; the last {unit} is {limit - 1}), so they never take '
                f'effect: {listed}. Move them inside the run or raise train_cfg.{where}.')

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None):
        distiller = get_distiller(runner)
        t = runner.epoch if self.by_epoch else runner.iter
        if self.by_epoch and self.linear:
            # A linear schedule by epoch moves every iteration: fractional epochs.
            t = t + batch_idx / max(len(runner.train_dataloader), 1)
        for name in distiller.loss_scales:
            value = self.value_at(name, t)
            distiller.loss_scales[name] = value
            if self._last.get(name) != value and not self.linear:
                print_log(f'distillation loss "{name}" weight multiplier -> {value} at '
                          f'{"epoch" if self.by_epoch else "iter"} {t}', logger='current')
            self._last[name] = value
        # Logged so that a schedule is visible next to the losses it scales.
        for name, value in distiller.loss_scales.items():
            runner.message_hub.update_scalar(f'train/distill_scale.{name}', value)


@HOOKS.register_module()
class StopDistillationHook(DistillLossWeightHook):
    """Stops distillation (and the teacher's forward) from ``stop_iter`` or ``stop_epoch`` on.

    From then on the student trains on its task losses alone and the teacher no longer runs.

    Args:
        stop_iter (int, optional): First iteration without distillation.
        stop_epoch (int, optional): First epoch without distillation.
    """

    def __init__(self, stop_iter: Optional[int] = None, stop_epoch: Optional[int] = None):
        if (stop_iter is None) == (stop_epoch is None):
            raise ValueError('StopDistillationHook: give exactly one of stop_iter, stop_epoch')
        by_epoch = stop_epoch is not None
        stop = stop_epoch if by_epoch else stop_iter
        super().__init__(schedule={'*': [(0, 1.0), (stop, 0.0)]}, by_epoch=by_epoch)
        self.stop = stop

    def _past_end_message(self, late: Dict[str, list], unit: str, limit: int) -> str:
        arg, where = ('stop_epoch', 'max_epochs') if self.by_epoch else ('stop_iter',
                                                                         'max_iters')
        return (f'StopDistillationHook: {arg}={self.stop} is at or after the end of the run '
                f'({where}={limit}), so distillation never stops. Set {arg} below {limit}, '
                'or drop the hook.')


def _warn(message: str) -> None:
    """A warning in the run's log and on stderr (``warnings``)."""
    print_log(message, logger='current', level=30)
    warnings.warn(message, UserWarning, stacklevel=3)
