"""A named group of recorders attached to one model."""
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Union

from mmengine.config import ConfigDict
from torch import nn

from mmstructkd.registry import TASK_UTILS, build_own
from .base_recorder import BaseRecorder


class RecorderManager:
    """Builds recorders from configs, attaches them to a model and reads them by name.

    Args:
        recorders (dict[str, dict | BaseRecorder], optional): Name -> recorder config, e.g.
            ``dict(feat=dict(type='ModuleOutputs', source='backbone.layer4'))``. The short
            mmrazor names ``ModuleOutputs``, ``ModuleInputs`` and ``MethodOutputs`` are accepted.
    """

    #: mmrazor's short type names, which its users already write.
    ALIASES = dict(
        ModuleOutputs='ModuleOutputsRecorder',
        ModuleInputs='ModuleInputsRecorder',
        MethodOutputs='MethodOutputsRecorder')

    def __init__(self, recorders: Optional[Dict[str, Union[dict, BaseRecorder]]] = None) -> None:
        self.recorders: Dict[str, BaseRecorder] = {}
        for name, cfg in (recorders or {}).items():
            if isinstance(cfg, BaseRecorder):
                self.recorders[name] = cfg
                continue
            if not isinstance(cfg, dict) or 'type' not in cfg:
                raise TypeError(f'recorder "{name}" must be a dict with a "type" key, e.g. '
                                f'dict(type="ModuleOutputs", source="backbone"); got {cfg!r}')
            cfg = ConfigDict(cfg)
            if isinstance(cfg['type'], str):
                cfg['type'] = self.ALIASES.get(cfg['type'], cfg['type'])
            self.recorders[name] = build_own(TASK_UTILS, cfg)

    def prepare(self, model: nn.Module) -> None:
        """Attach every recorder to ``model``; a bad source raises naming the recorder."""
        for name, recorder in self.recorders.items():
            try:
                recorder.prepare(model)
            except ValueError as e:
                raise type(e)(f'recorder "{name}": {e.args[0]}') from None

    def remove(self) -> None:
        for recorder in self.recorders.values():
            recorder.remove()

    def reset(self) -> None:
        for recorder in self.recorders.values():
            recorder.reset()

    @contextmanager
    def recording(self) -> Iterator['RecorderManager']:
        """Record during the ``with`` block, starting from empty buffers."""
        self.reset()
        for recorder in self.recorders.values():
            recorder.recording = True
        try:
            yield self
        finally:
            for recorder in self.recorders.values():
                recorder.recording = False

    def buffers(self) -> Dict[str, list]:
        """Name -> a copy of the list of items each recorder holds now (the step's records),
        each checked unchanged since it was recorded (:meth:`BaseRecorder.recorded`)."""
        return {name: rec.recorded() for name, rec in self.recorders.items()}

    def get(self, name: str, record_idx: Optional[Union[int, str]] = None,
            data_idx: Optional[int] = None) -> Any:
        if name not in self.recorders:
            raise ValueError(f'no recorder named "{name}"; defined: {sorted(self.recorders)}')
        return self.recorders[name].get_record_data(record_idx, data_idx)

    def counts(self) -> Dict[str, int]:
        """Name -> how many items each recorder holds now."""
        return {name: len(rec.data_buffer) for name, rec in self.recorders.items()}

    def describe(self, name: str) -> str:
        """How error messages name recorder ``name``."""
        return self.recorders[name].describe()

    def __contains__(self, name: str) -> bool:
        return name in self.recorders

    def __len__(self) -> int:
        return len(self.recorders)

    def __repr__(self) -> str:
        return f'RecorderManager({self.recorders!r})'
