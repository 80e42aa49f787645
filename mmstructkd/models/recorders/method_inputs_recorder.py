"""Recorder that catches the arguments a method of a submodule is called with."""
import functools
import inspect
from typing import Any, Callable

from mmstructkd.registry import TASK_UTILS
from .method_recorder import MethodRecorder


@TASK_UTILS.register_module()
class MethodInputsRecorder(MethodRecorder):
    """Records the arguments of ``<module path>.<method>`` as a dict (name -> value).

    Positional and keyword arguments are bound to the method's parameter names, defaults
    filled in, so a loss reads e.g. ``record['sampling_results']`` however the caller passed
    it. Useful where a head computes what a loss needs inside its own loss method, e.g.
    ``'bbox_head.loss_by_feat'`` (head outputs with the batch's ground truth) or
    ``'roi_head.bbox_head.loss_and_target'`` (RoI scores with this step's sampling results).
    Only this instance's method is wrapped.

    Args:
        source (str): ``'<dotted module path>.<method name>'``.
    """

    def make_wrapper(self, method: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.recording:  # binding costs; skip it outside the distillation step
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                self.record(dict(bound.arguments))
            return method(*args, **kwargs)

        return wrapper
