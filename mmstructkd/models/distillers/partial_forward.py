"""Run a model only as far as its recorders need.

The first call runs the whole forward while timing when each recorder gets its last entry
(in terms of module calls). Later calls stop the forward right after that module call
(:func:`~mmstructkd.models.ops.forward_until.forward_until`), so a teacher whose losses use only
backbone features never runs its head.
"""
from typing import Any, Callable, Dict, List, Optional, Tuple

from torch import nn

from mmstructkd.models.ops.forward_until import forward_until
from mmstructkd.models.recorders.recorder_manager import RecorderManager


class PartialForward:
    """Calls ``forward_fn`` and stops it once every recorder in ``recorders`` is complete.

    Args:
        model (nn.Module): The model the recorders are attached to.
        recorders (RecorderManager): The recorders whose data must be complete.
        enabled (bool): If False, always run the whole forward.
    """

    def __init__(self, model: nn.Module, recorders: RecorderManager, enabled: bool = True):
        self.model = model
        self.recorders = recorders
        self.enabled = enabled and len(recorders) > 0
        # Set by the first (tracing) call: the module call after which all data is there.
        self._stop_at: Optional[Tuple[str, int]] = None
        self._expected_counts: Optional[Dict[str, int]] = None

    @property
    def stop_point(self) -> Optional[Tuple[str, int]]:
        """``(module path, call index)`` after which the forward is stopped, once traced."""
        return self._stop_at

    def _counts(self) -> Dict[str, int]:
        return self.recorders.counts()

    def __call__(self, forward_fn: Callable[[], Any]) -> None:
        if not self.enabled:
            forward_fn()
        elif self._expected_counts is None:
            self._trace(forward_fn)
        else:
            self._run_until_stop(forward_fn)

    def _trace(self, forward_fn: Callable[[], Any]) -> None:
        events: List[Tuple[str, int, Dict[str, int]]] = []
        call_counts: Dict[str, int] = {}
        handles = []

        def make_hook(name: str):

            def hook(module, inputs, outputs):
                call_counts[name] = call_counts.get(name, 0) + 1
                events.append((name, call_counts[name] - 1, self._counts()))

            return hook

        # Registered after the recorders' hooks, so a module's own recording is counted.
        for name, module in self.model.named_modules():
            handles.append(module.register_forward_hook(make_hook(name)))
        try:
            forward_fn()
        finally:
            for handle in handles:
                handle.remove()
        final = self._counts()
        self._expected_counts = final
        for name, call_idx, counts in events:
            if counts == final:
                self._stop_at = (name, call_idx)
                break
        if self._stop_at is not None and self._stop_at[0] == '':
            self._stop_at = None  # the model's own forward: nothing to save

    def _run_until_stop(self, forward_fn: Callable[[], Any]) -> None:
        if self._stop_at is None:
            forward_fn()
        else:
            name, call_idx = self._stop_at
            calls = []

            def done() -> bool:
                calls.append(1)
                return len(calls) > call_idx

            forward_until(forward_fn, [self.model.get_submodule(name)], done)
        counts = self._counts()
        if counts != self._expected_counts:
            raise RuntimeError(
                f'The teacher recorded {counts} calls in this step but {self._expected_counts} '
                'in the first one: its control flow depends on the data, so it cannot be '
                'stopped early. Set teacher_forward="full" in the distiller config.')
