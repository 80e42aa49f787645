"""Recorders that catch a module's outputs or inputs with forward hooks."""
from abc import abstractmethod
from typing import Any, Optional

from torch import nn
from torch.utils.hooks import RemovableHandle

from mmstructkd.registry import TASK_UTILS
from .base_recorder import BaseRecorder, get_submodule_or_raise


class _ModuleHookRecorder(BaseRecorder):
    """Shared attach/detach logic of the module recorders."""

    def __init__(self, source: str, clone: bool = False) -> None:
        super().__init__(source, clone=clone)
        self._handle: Optional[RemovableHandle] = None

    def prepare(self, model: nn.Module) -> None:
        if self._handle is not None:
            raise RuntimeError(f'{self!r} is already attached to a model.')
        self._handle = self._attach(get_submodule_or_raise(model, self.source))

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    @abstractmethod
    def _attach(self, module: nn.Module) -> RemovableHandle:
        """Register the hook that records what this recorder type records."""


@TASK_UTILS.register_module()
class ModuleOutputsRecorder(_ModuleHookRecorder):
    """Records what the module at ``source`` returns (one entry per call).

    Args:
        source (str): Dotted module path, e.g. ``'backbone.layer4'`` or ``'decode_head.conv_seg'``.
        clone (bool): Record a copy, for an output the model changes in place afterwards
            (e.g. a residual block's last norm layer, whose output ``out += identity`` adds
            to). Defaults to False (a read of a changed record raises).
    """

    def _attach(self, module: nn.Module) -> RemovableHandle:
        return module.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: tuple, outputs: Any) -> None:
        self.record(outputs)


@TASK_UTILS.register_module()
class ModuleInputsRecorder(_ModuleHookRecorder):
    """Records the positional inputs of the module at ``source`` (one tuple per call), as the
    module receives them (a forward pre-hook).

    Use ``data_idx=0`` in the mapping to take the first positional input. A module that works
    in place (``ReLU(inplace=True)``) overwrites its input: record it with ``clone=True``, e.g.
    the sum a ResNet block adds before its last ReLU (``backbone.layer4.1.relu``,
    ``record_idx=-1``: the block calls its ReLU twice), a pre-activation stage output.

    Args:
        source (str): Dotted module path, e.g. ``'decode_head.conv_seg'``.
        clone (bool): Record a copy of the inputs, taken before the module runs. Defaults to
            False (a read of a changed record raises).
    """

    def _attach(self, module: nn.Module) -> RemovableHandle:
        return module.register_forward_pre_hook(self._pre_hook)

    def _pre_hook(self, module: nn.Module, inputs: tuple) -> None:
        self.record(inputs)
