"""Recorder that catches the arguments a method of a submodule is called with."""
import functools
import inspect
from typing import Any, Optional

from torch import nn

from mmstructkd.registry import TASK_UTILS
from .base_recorder import BaseRecorder, get_submodule_or_raise


@TASK_UTILS.register_module()
class MethodInputsRecorder(BaseRecorder):
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
                f'MethodInputsRecorder: {type(owner).__name__} at "{module_path or "<model>"}" '
                f'has no method "{method_name}". Give source as "<module path>.<method>".')
        signature = inspect.signature(method)

        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.recording:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                self.record(dict(bound.arguments))
            return method(*args, **kwargs)

        # An instance attribute shadows the class method for this instance only.
        setattr(owner, method_name, wrapper)
        self._owner, self._method_name = owner, method_name

    def remove(self) -> None:
        if self._owner is not None:
            delattr(self._owner, self._method_name)
            self._owner = None
