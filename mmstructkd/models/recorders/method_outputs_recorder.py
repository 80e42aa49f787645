"""Recorder that catches what a method of a submodule returns."""
import functools
from typing import Any, Callable

from mmstructkd.registry import TASK_UTILS
from .method_recorder import MethodRecorder


@TASK_UTILS.register_module()
class MethodOutputsRecorder(MethodRecorder):
    """Records the return value of ``<module path>.<method>`` of one model instance.

    Useful for values that no submodule returns, e.g. ``'decode_head.cls_seg'`` or
    ``'extract_feat'`` (an empty module path means the model itself). Only this instance's
    method is wrapped; other instances of the same class (the teacher, say) are untouched.

    Args:
        source (str): ``'<dotted module path>.<method name>'``.
    """

    HINT = ' To record a submodule, use ModuleOutputsRecorder.'

    def make_wrapper(self, method: Callable[..., Any]) -> Callable[..., Any]:

        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outputs = method(*args, **kwargs)
            self.record(outputs)
            return outputs

        return wrapper
