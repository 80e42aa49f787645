"""Stop a forward pass once what it is run for has been computed.

PyTorch cannot end a module's ``forward`` from the outside, so the only general way to skip the
rest of a model (its head, when a loss needs backbone features) is to raise from a forward hook
and catch the exception around the call. This module is the project's one place that does so;
the teacher's early stop (:class:`~mmstructkd.models.distillers.partial_forward.PartialForward`)
and the feature probe of box crops (:func:`~mmstructkd.models.ops.feature_probe.probe_layers`)
both use it.
"""
from typing import Any, Callable, Iterable, Optional, Tuple

from torch import nn


class _Done(Exception):
    """Raised by a stop hook; caught by :func:`forward_until` only."""


def forward_until(forward_fn: Callable[[], Any], modules: Iterable[nn.Module],
                  done: Callable[[], bool]) -> Tuple[bool, Optional[Any]]:
    """Run ``forward_fn()``, stopping it after a call of one of ``modules`` once ``done()``.

    Args:
        forward_fn (callable): Runs the forward pass (no arguments).
        modules (Iterable[nn.Module]): After each call of one of them, ``done()`` is asked.
            Their own forward hooks registered earlier (recorders) run before it.
        done (callable): Whether everything the forward is run for exists now.

    Returns:
        tuple[bool, Any]: ``(True, None)`` if the forward was stopped, else ``(False, what
        forward_fn returned)``.
    """

    def stop_hook(module: nn.Module, args: tuple, output: Any) -> None:
        if done():
            raise _Done

    handles = [m.register_forward_hook(stop_hook) for m in modules]
    try:
        return False, forward_fn()
    except _Done:
        return True, None
    finally:
        for handle in handles:
            handle.remove()
