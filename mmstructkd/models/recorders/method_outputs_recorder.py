"""Recorder that catches what a method of a submodule returns."""
import functools
from typing import Any, Optional

from torch import nn

from mmstructkd.registry import TASK_UTILS
from .base_recorder import BaseRecorder, get_submodule_or_raise


@TASK_UTILS.register_module()
class MethodOutputsRecorder(BaseRecorder):
    """Records the return value of ``<module path>.<method>`` of one model instance.

    Useful for values that no submodule returns, e.g. ``'decode_head.cls_seg'`` or
    ``'extract_feat'`` (an empty module path means the model itself). Only this instance's
    method is wrapped; other instances of the same class (the teacher, say) are untouched.

    Args:
        source (str): ``'<dotted module path>.<method name>'``.
    """

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self._owner: Optional[nn.Module] = None
        self._method_name = ''

    def prepare(self, model: nn.Module) -> None:
        if self._owner is not None:
            raise RuntimeError(f'{self!r} is already attached to a model.')
        module_path, _, method_name = self.source.rpartition('.')
        owner = get_submodule_or_raise(model, module_path, what='module of method')
        method = getattr(owner, method_name, None)
        if not callable(method) or isinstance(method, nn.Module):
            raise ValueError(
                f'MethodOutputsRecorder: {type(owner).__name__} at "{module_path or "<model>"}" '
                f'has no method "{method_name}". Give source as "<module path>.<method>"; '
                'to record a submodule, use ModuleOutputsRecorder.')

        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outputs = method(*args, **kwargs)
            self.record(outputs)
            return outputs

        # An instance attribute shadows the class method for this instance only.
        setattr(owner, method_name, wrapper)
        self._owner, self._method_name = owner, method_name

    def remove(self) -> None:
        if self._owner is not None:
            delattr(self._owner, self._method_name)
            self._owner = None
