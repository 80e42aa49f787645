"""ScheduleCheckHook: a warm-up longer than the run, or a decay after its end, is a warning."""
import logging
from types import SimpleNamespace

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.optim.scheduler import LinearLR, MultiStepLR, PolyLR

from mmstructkd.engine.hooks import ScheduleCheckHook, schedule_check_hook, schedule_problems


def fake_runner(max_epochs: int, iters_per_epoch: int, schedulers, cfg=None):
    """What the hook reads of a Runner whose train loop and schedulers are built."""
    return SimpleNamespace(max_epochs=max_epochs, max_iters=max_epochs * iters_per_epoch,
                           train_loop=SimpleNamespace(max_epochs=max_epochs),
                           param_schedulers=schedulers, cfg=cfg or Config({}))


def bccd_schedule(epochs: int = 24):
    """The BCCD recipe as the Runner builds it: 100-iteration warm-up, decays at 16 and 22."""
    optim = OptimWrapper(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01))
    return [LinearLR(optim, start_factor=0.01, by_epoch=False, begin=0, end=100),
            MultiStepLR(optim, milestones=[16, 22], by_epoch=True, begin=0, end=epochs)]


def test_a_warmup_longer_than_the_run_is_found():
    # 12 images in batches of 8: 2 iterations per epoch, 48 in 24 epochs
    problems = schedule_problems(fake_runner(24, 2, bccd_schedule()))
    assert problems == ["LinearLR ends at iteration 100, after the run's last (48 iterations "
                        '(24 epochs of 2))']
    assert schedule_problems(fake_runner(24, 26, bccd_schedule())) == []  # BCCD: 205 images


def test_a_decay_after_the_end_is_found():
    problems = schedule_problems(fake_runner(12, 26, bccd_schedule(epochs=12)))
    assert len(problems) == 1 and 'MultiStepLR has milestones at epoch [16, 22]' in problems[0]


def test_the_hook_warns_and_names_the_variable(monkeypatch):
    logged = []
    monkeypatch.setattr(schedule_check_hook, 'print_log',
                        lambda msg, logger=None, level=None: logged.append((msg, level)))
    ScheduleCheckHook().before_train(fake_runner(24, 26, bccd_schedule()))
    assert logged == []
    runner = fake_runner(24, 2, bccd_schedule(), Config(dict(warmup_iters=100)))
    ScheduleCheckHook().before_train(runner)
    (message, level), = logged
    assert level == logging.WARNING
    assert 'LinearLR ends at iteration 100' in message and 'set warmup_iters' in message


def test_a_fitting_iteration_schedule_is_quiet():
    optim = OptimWrapper(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01))
    schedulers = [PolyLR(optim, by_epoch=False, begin=0, end=300)]
    runner = SimpleNamespace(max_epochs=0, max_iters=300, train_loop=SimpleNamespace(),
                             param_schedulers=dict(generator=schedulers), cfg=Config({}))
    assert schedule_problems(runner) == []
    runner.max_iters = 200
    assert schedule_problems(runner) == [
        "PolyLR ends at iteration 300, after the run's last (200 iterations)"]
