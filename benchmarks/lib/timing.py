"""Shared pieces of the timing benchmarks (``overhead.py``, ``teacher_cost.py``): build a
distiller of a config at a small input size with random weights, and time tasks interleaved."""
import statistics
import time
from typing import Callable, Dict, List

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import DefaultScope

from mmstructkd.registry import MODELS


def build_distiller(cfg: Config, size: tuple, **model_overrides) -> torch.nn.Module:
    """The distiller of ``cfg`` in train mode, random weights (no checkpoint download).

    Args:
        cfg (Config): A distillation config.
        size (tuple[int, int]): Input size; segmentation students pad to it (not to the
            config's crop).
        **model_overrides: Keys of ``cfg.model`` to replace (e.g. ``teacher_runtime``).
    """
    model_cfg = cfg.model.copy()
    model_cfg.teacher_ckpt = None
    model_cfg.update(model_overrides)
    if cfg.get('data_preprocessor'):  # mmpretrain keeps it at the top level
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    if cfg.default_scope == 'mmseg':
        model_cfg.student.setdefault('data_preprocessor', {})['size'] = size
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        torch.manual_seed(0)
        model = MODELS.build(model_cfg)
    # No init_weights(): it would download the configs' ImageNet weights; the timing does
    # not depend on the values.
    return model.train()


def sgd(module: torch.nn.Module) -> OptimWrapper:
    """Plain SGD: the same optimizer cost for the student alone and the distiller."""
    return OptimWrapper(torch.optim.SGD(module.parameters(), lr=1e-4))


def distiller_optim(model: torch.nn.Module, cfg: Config):
    """SGD, or the config's own optimizer wrappers when the distiller needs several (the
    adversarial distiller's generator and discriminator)."""
    if 'constructor' in cfg.optim_wrapper:
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            return build_optim_wrapper(model, cfg.optim_wrapper)
    return sgd(model)


class WeightReset:
    """Puts a model's parameters and buffers back to their first values before each timed
    step (outside the clock), so that every repetition times the same step.

    Without it the step time drifts as random-weight models train: measured here, the
    RetinaNet student's step went 2.5 -> 7.0 s over five repetitions (values sliding into the
    slow denormal range), which swamps the differences being measured.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def __call__(self) -> None:
        with torch.no_grad():
            for key, value in self.model.state_dict().items():
                value.copy_(self.snapshot[key])


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of ``fn()`` (CUDA work included: synchronised before and after)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def interleaved_medians(tasks: Dict[str, Callable[[], float]], reps: int,
                        warmup: int = 1) -> Dict[str, List[float]]:
    """Run every task ``warmup`` times, then ``reps`` rounds of all tasks in turn (machine
    noise hits every task alike). Each task returns its own duration in seconds.

    Returns:
        dict[str, list[float]]: Task -> its ``reps`` durations.
    """
    for _ in range(warmup):
        for task in tasks.values():
            task()
    times: Dict[str, List[float]] = {k: [] for k in tasks}
    for _ in range(reps):
        for key, task in tasks.items():
            times[key].append(task())
    return times


def median(values: List[float]) -> float:
    return statistics.median(values)
