"""The base of recorders that wrap a method of one submodule instance."""
from abc import abstractmethod
from typing import Any, Callable, Optional

from torch import nn

from .base_recorder import BaseRecorder, get_submodule_or_raise


class MethodRecorder(BaseRecorder):
    """Wraps ``<module path>.<method>`` of one model instance; subclasses say what to record.

    Only this instance's method is wrapped (an instance attribute shadows the class method),
    so other instances of the same class (the teacher, say) are untouched.

    Args:
        source (str): ``'<dotted module path>.<method name>'``; an empty module path means the
            model itself.
        clone (bool): Record copies of the tensors (see :class:`BaseRecorder`). Defaults to
            False.
    """

    #: Appended to the error for a source that is no method.
    HINT = ''

    def __init__(self, source: str, clone: bool = False) -> None:
        super().__init__(source, clone=clone)
        self._owner: Optional[nn.Module] = None
        self._method_name = ''

    @abstractmethod
    def make_wrapper(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """The function that replaces ``method`` on the instance and records."""

    def prepare(self, model: nn.Module) -> None:
        if self._owner is not None:
            raise RuntimeError(f'{self!r} is already attached to a model.')
        module_path, _, method_name = self.source.rpartition('.')
        owner = get_submodule_or_raise(model, module_path, what='module of method')
        method = getattr(owner, method_name, None)
        if not callable(method) or isinstance(method, nn.Module):
            raise ValueError(
                f'{type(self).__name__}: {type(owner).__name__} at '
                f'"{module_path or "<model>"}" has no method "{method_name}". Give source as '
                f'"<module path>.<method>".{self.HINT}')
        setattr(owner, method_name, self.make_wrapper(method))
        self._owner, self._method_name = owner, method_name

    def remove(self) -> None:
        if self._owner is not None:
            delattr(self._owner, self._method_name)
            self._owner = None
