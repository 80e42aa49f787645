"""The recorder base: what every recorder shares (source lookup, buffer, on/off switch)."""
import difflib
from abc import ABCMeta, abstractmethod
from typing import Any, Iterator, List, Optional, Union

import torch
from torch import nn


def get_submodule_or_raise(model: nn.Module, path: str, what: str = 'module') -> nn.Module:
    """Return ``model``'s submodule at dotted ``path`` or raise an error listing close matches.

    Args:
        model (nn.Module): The model to search (a student or a teacher).
        path (str): Dotted module path as in ``model.named_modules()``, e.g. ``backbone.layer4``.
        what (str): How the path is called in the error message.

    Returns:
        nn.Module: The submodule. An empty path returns ``model`` itself.
    """
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    close = difflib.get_close_matches(path, list(modules), n=5, cutoff=0.5)
    hint = f' Close matches: {close}.' if close else ''
    top = [name for name in modules if name and '.' not in name]
    raise ValueError(
        f'{what} "{path}" does not exist in {type(model).__name__}.{hint} '
        f'Its top-level modules are {top}; print(dict(model.named_modules()).keys()) lists '
        'every valid path.')


class BaseRecorder(metaclass=ABCMeta):
    """Records tensors produced inside a model during the distiller's forward passes.

    A recorder is attached once (``prepare``) and records only while ``recording`` is on: the
    distiller switches it on for its loss step and resets it before each step, so validation
    forwards record nothing and no tensor outlives the step that produced it.

    A recorded tensor is the model's own tensor, not a copy: if the model later changes it in
    place in the same forward (``ReLU(inplace=True)`` on a module's input, ``out += identity``
    on a norm layer's output), the record no longer holds what the source produced. Every read
    checks the tensors' version counters and raises instead of handing the loss the changed
    values; ``clone=True`` records a copy (gradients flow through it as through the original).

    Args:
        source (str): Where to record; its meaning depends on the recorder type.
        clone (bool): Record copies of the tensors (one copy per call and step), for a source
            whose tensors the model modifies in place afterwards. Defaults to False.
    """

    def __init__(self, source: str, clone: bool = False) -> None:
        if not isinstance(source, str):
            raise TypeError(f'{type(self).__name__}: source must be a str, got {source!r}')
        if not isinstance(clone, bool):
            raise TypeError(f'{type(self).__name__}: clone must be True or False, got {clone!r}')
        self.source = source
        self.clone = clone
        self.data_buffer: List[Any] = []
        self._versions: List[List[int]] = []
        self.recording = False
        self._model_name = None

    @abstractmethod
    def prepare(self, model: nn.Module) -> None:
        """Attach to ``model`` (hooks or method wrappers)."""

    @abstractmethod
    def remove(self) -> None:
        """Detach from the model; the model behaves as if it had never been recorded."""

    def reset(self) -> None:
        """Drop recorded data (called at the start and end of every distillation step)."""
        self.data_buffer = []
        self._versions = []

    def record(self, data: Any) -> None:
        if self.recording:
            if self.clone:
                data = _clone_tensors(data)
            self.data_buffer.append(data)
            self._versions.append([_version(t) for t in _tensors(data)])

    def recorded(self) -> List[Any]:
        """What was recorded in this step, one item per call of the source, after checking
        that the model did not change any of it in place since.

        Raises:
            RuntimeError: A recorded tensor was modified in place after it was recorded.
        """
        for data, versions in zip(self.data_buffer, self._versions):
            if [_version(t) for t in _tensors(data)] != versions:
                raise RuntimeError(
                    f'{self.describe()}: a tensor it recorded was modified in place later in '
                    'the same forward (e.g. by ReLU(inplace=True) on a module input, or '
                    '`out += identity` on a norm layer output), so it no longer holds what was '
                    f'recorded at "{self.source}". Add clone=True to this recorder to record a '
                    'copy, or record another module.')
        return list(self.data_buffer)

    def get_record_data(self,
                        record_idx: Optional[Union[int, str]] = None,
                        data_idx: Optional[int] = None) -> Any:
        """Return recorded data (see :func:`select_record`)."""
        return select_record(self.recorded(), record_idx, data_idx, self.describe())

    def describe(self) -> str:
        """How error messages name this recorder."""
        return f'{type(self).__name__}(source="{self.source}")'

    def __repr__(self) -> str:
        return f'{type(self).__name__}(source={self.source!r})'


def _tensors(data: Any) -> Iterator[torch.Tensor]:
    """The tensors in a record: itself, or inside (nested) tuples, lists and dicts."""
    if isinstance(data, torch.Tensor):
        yield data
    elif isinstance(data, (tuple, list)):
        for item in data:
            yield from _tensors(item)
    elif isinstance(data, dict):
        for item in data.values():
            yield from _tensors(item)


def _version(tensor: torch.Tensor) -> int:
    # tensors made under inference_mode keep no version counter (and cannot be changed in
    # place outside it)
    return -1 if tensor.is_inference() else tensor._version


def _clone_tensors(data: Any) -> Any:
    """``data`` with every tensor (also in nested tuples, lists, dicts) replaced by a copy."""
    if isinstance(data, torch.Tensor):
        return data.clone()
    if isinstance(data, list):
        return [_clone_tensors(item) for item in data]
    if isinstance(data, tuple):
        items = [_clone_tensors(item) for item in data]
        return type(data)(*items) if hasattr(data, '_fields') else tuple(items)
    if isinstance(data, dict):
        return type(data)((k, _clone_tensors(v)) for k, v in data.items())
    return data


def select_record(items: List[Any], record_idx: Optional[Union[int, str]] = None,
                  data_idx: Optional[int] = None, where: str = 'recorder') -> Any:
    """Pick from the items a recorder recorded in one step.

    Args:
        items (list): What the recorder recorded, one item per call of its source.
        record_idx (int | str, optional): Which call of the source to take when it ran
            several times in one forward (e.g. a head shared by FPN levels). ``None``
            requires exactly one call; ``'all'`` returns the list of all calls.
        data_idx (int, optional): Index into the recorded item when it is a tuple or list
            (e.g. the stage outputs of a backbone). ``None`` keeps it whole.
        where (str): The recorder, as error messages name it.

    Returns:
        Any: The recorded item(s).
    """
    n = len(items)
    if n == 0:
        raise RuntimeError(
            f'{where} recorded nothing in this step: the forward pass did not call it. '
            'Either the forward skips it, or its parent calls module.forward(...) '
            'directly, which bypasses hooks (mmseg does so for decode_head): record a '
            'submodule (e.g. "decode_head.conv_seg") or use MethodOutputs with '
            '"<path>.forward".')
    if record_idx == 'all':
        picked = list(items)
    elif record_idx is None:
        if n != 1:
            raise RuntimeError(
                f'{where} was called {n} times in this step; set record_idx to the call '
                f'to use (0..{n - 1}) or to "all" in the loss_forward_mappings.')
        picked = [items[0]]
    else:
        if not -n <= record_idx < n:
            raise IndexError(f'{where}: record_idx={record_idx} but only {n} call(s) '
                             'were recorded in this step.')
        picked = [items[record_idx]]
    if data_idx is not None:
        indexed = []
        for item in picked:
            if not isinstance(item, (tuple, list)):
                raise TypeError(f'{where}: data_idx={data_idx} indexes a recorded '
                                f'{type(item).__name__}, not a tuple/list.')
            if not -len(item) <= data_idx < len(item):
                raise IndexError(f'{where}: data_idx={data_idx} is out of range for a '
                                 f'recorded sequence of length {len(item)}.')
            indexed.append(item[data_idx])
        picked = indexed
    return picked if record_idx == 'all' else picked[0]
