"""Checkpoint loading under ``torch.load(weights_only=True)`` and student extraction.

torch >= 2.6 loads with ``weights_only=True`` by default, which refuses every Python object
that is not on an allow-list. mmengine 0.10.7 checkpoints hold a few such objects: the message
hub's ``HistoryBuffer`` (with numpy arrays inside) and, in its pickled state, its statistics
methods, pickled as ``getattr(HistoryBuffer, 'min')`` and so on. So ``--resume`` fails.

Rather than switching the safety off, :func:`allow_mmengine_checkpoint_globals` adds exactly
those to torch's allow-list. ``getattr`` itself would let a checkpoint reach any attribute of
an allowed class (and from there any code), so the global named ``builtins.getattr`` is bound
to :func:`_history_buffer_getattr`, which returns only HistoryBuffer's statistics methods and
refuses everything else. Every other object in a checkpoint is still refused.
"""
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

STUDENT_PREFIX = 'student.'


def _numpy_globals() -> List:
    """The numpy objects that pickled ndarrays and numpy scalars reference."""
    try:  # numpy >= 2 moved the pickling helpers to numpy._core
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64)]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


#: HistoryBuffer's built-in statistics; methods registered with
#: ``HistoryBuffer.register_statistics`` are allowed too.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj, name: str):
    """Stands in for ``builtins.getattr`` while unpickling under ``weights_only=True``.

    Returns a statistics method of ``HistoryBuffer`` (what mmengine pickles with getattr) and
    refuses any other attribute lookup a checkpoint asks for.
    """
    from mmengine.logging import HistoryBuffer
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); under weights_only=True mmstructkd '
        'allows only the HistoryBuffer statistics methods that mmengine checkpoints contain.')


def allow_mmengine_checkpoint_globals() -> None:
    """Allow, under ``weights_only=True``, exactly the globals mmengine checkpoints contain.

    Those are ``mmengine.logging.HistoryBuffer`` (message hub state), its statistics methods
    (through :func:`_history_buffer_getattr`) and the numpy objects needed to rebuild the arrays
    and scalars it and ``meta`` hold. Idempotent.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4 has no allow-list and loads everything
        return
    from mmengine.logging import HistoryBuffer
    add_safe_globals([HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'),
                      *_numpy_globals()])


def _load_state_dict_file(path: str, role: str) -> Dict[str, torch.Tensor]:
    is_remote = re.match(r'^(https?|s3|open-mmlab|torchvision|modelzoo)://', path)
    if not is_remote and not osp.isfile(path):
        raise FileNotFoundError(
            f'{role} checkpoint "{path}" does not exist. Set it to a local .pth file or to '
            'the URL of the released checkpoint.')
    # map_location='cpu': every rank loads onto the CPU, never onto GPU 0.
    checkpoint = _load_checkpoint(path, map_location='cpu')
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) \
        else checkpoint
    if not isinstance(state_dict, dict):
        raise TypeError(f'{role} checkpoint "{path}" holds a {type(state_dict).__name__}, '
                        'not a state dict.')
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                       for k, v in state_dict.items())


def _summarise(keys: List[str], limit: int = 8) -> str:
    shown = ', '.join(keys[:limit])
    return f'{shown}, ... ({len(keys)} in all)' if len(keys) > limit else shown


def load_teacher_checkpoint(teacher: nn.Module, path: str, strict: bool = True,
                            logger: Optional[MMLogger] = None) -> None:
    """Load a teacher checkpoint on the CPU and check that it matches the teacher.

    Args:
        teacher (nn.Module): The teacher built from its config.
        path (str): Local path or URL of the checkpoint.
        strict (bool): If True, any missing or unexpected key is an error; if False they are
            logged as warnings. Shape mismatches are always errors.
        logger (MMLogger, optional): Where warnings go.
    """
    state_dict = _load_state_dict_file(path, 'teacher')
    if state_dict and all(k.startswith(STUDENT_PREFIX) or k.startswith('teacher.')
                          or k.startswith('data_preprocessor.') for k in state_dict):
        raise ValueError(
            f'teacher checkpoint "{path}" is a distiller checkpoint (keys "student.*", '
            '"teacher.*"). Export the model you want as teacher first: '
            'python tools/export_student.py CKPT OUT.pth, and set teacher_ckpt=OUT.pth.')
    own = teacher.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                  for k, v in state_dict.items()
                  if k in own and hasattr(v, 'shape') and v.shape != own[k].shape]
    name = type(teacher).__name__
    if mismatched:
        raise ValueError(
            f'teacher checkpoint "{path}" does not match the teacher {name}: shape mismatch '
            f'for {_summarise(mismatched)}. Is it the checkpoint of this teacher config?')
    if missing or unexpected:
        msg = (f'teacher checkpoint "{path}" does not match the teacher {name}: '
               f'missing keys: [{_summarise(missing)}]; unexpected keys: '
               f'[{_summarise(unexpected)}].')
        if strict:
            raise ValueError(msg + ' Is it the checkpoint of this teacher config? If the '
                             'difference is expected (e.g. an auxiliary head the teacher does '
                             'not use), set teacher_ckpt_strict=False.')
        print_log(msg + ' Loaded the matching keys (teacher_ckpt_strict=False).',
                  logger=logger or 'current', level=30)
    teacher.load_state_dict(state_dict, strict=False)
    print_log(f'Loaded teacher checkpoint from {path}', logger=logger or 'current')


def extract_student_state_dict(state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict':
    """The student's weights of a distiller state dict, with the ``student.`` prefix removed.

    Raises:
        ValueError: if the state dict has no student weights (not a distiller checkpoint).
    """
    student = OrderedDict((k[len(STUDENT_PREFIX):], v) for k, v in state_dict.items()
                          if k.startswith(STUDENT_PREFIX))
    if not student:
        raise ValueError('no "student.*" keys in the checkpoint: it is not a checkpoint of a '
                         'mmstructkd distiller (a plain model checkpoint needs no export).')
    return student
