"""Recorders that catch a module's outputs or inputs with forward hooks."""
from abc import abstractmethod
from typing import Any, Optional

from torch import nn
from torch.utils.hooks import RemovableHandle

from mmstructkd.registry import TASK_UTILS
from .base_recorder import BaseRecorder, get_submodule_or_raise


class _ModuleHookRecorder(BaseRecorder):
    """Shared attach/detach logic of the module recorders."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self._handle: Optional[RemovableHandle] = None

    def prepare(self, model: nn.Module) -> None:
        if self._handle is not None:
            raise RuntimeError(f'{self!r} is already attached to a model.')
        module = get_submodule_or_raise(model, self.source)
        self._handle = module.register_forward_hook(self._hook)

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    @abstractmethod
    def _hook(self, module: nn.Module, inputs: tuple, outputs: Any) -> None:
        """Record what this recorder type records."""


@TASK_UTILS.register_module()
class ModuleOutputsRecorder(_ModuleHookRecorder):
    """Records what the module at ``source`` returns (one entry per call).

    Args:
        source (str): Dotted module path, e.g. ``'backbone.layer4'`` or ``'decode_head.conv_seg'``.
    """

    def _hook(self, module: nn.Module, inputs: tuple, outputs: Any) -> None:
        self.record(outputs)


@TASK_UTILS.register_module()
class ModuleInputsRecorder(_ModuleHookRecorder):
    """Records the positional inputs of the module at ``source`` (one tuple per call).

    Use ``data_idx=0`` in the mapping to take the first positional input.

    Args:
        source (str): Dotted module path, e.g. ``'decode_head.conv_seg'``.
    """

    def _hook(self, module: nn.Module, inputs: tuple, outputs: Any) -> None:
        self.record(inputs)
