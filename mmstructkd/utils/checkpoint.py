"""Teacher checkpoints, student extraction, crash-safe writes, the resume candidates.

Every read goes through :func:`mmstructkd.utils.safe_load.safe_load` (``weights_only=True``,
scoped stand-ins; URLs downloaded first and loaded the same way). Every write of a checkpoint
that a later run reads goes through :func:`atomic_save`: a temporary file in the same folder,
flushed and fsynced, then renamed over the target, so a killed process or a full disk leaves
the previous file or the new one, never half of one.
"""
import glob
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmengine.logging import MMLogger, print_log
from torch import nn

from .safe_load import CorruptCheckpointError, is_url, safe_load

STUDENT_PREFIX = 'student.'


def atomic_save(obj: Any, path: str) -> str:
    """``torch.save(obj, path)`` that never leaves a partial ``path``.

    Writes ``<path>.<pid>.tmp`` in the same folder, fsyncs it, renames it to ``path`` and
    fsyncs the folder. The temporary file is removed if the write fails (a killed process may
    leave it; it never matches ``*.pth``).
    """
    path = osp.abspath(path)
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp'
    try:
        with open(tmp, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return path


def atomic_write_text(text: str, path: str) -> None:
    """Write a small text file (e.g. ``last_checkpoint``) through a temporary file + rename."""
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


_RESUME_NAME = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def resume_candidates(work_dir: str) -> Tuple[Optional[str], List[str]]:
    """What auto-resume may start from, newest first.

    Returns:
        tuple: The file ``<work_dir>/last_checkpoint`` names (None if it is missing, empty or
        names no file), and every ``iter_<N>.pth`` / ``epoch_<N>.pth`` in ``work_dir`` and in
        the folder of that file (newest modification first), that file first.
    """
    named = None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            text = f.read().strip()
        if text and osp.isfile(text):
            named = text
    folders = {osp.abspath(work_dir)}
    if named is not None:
        folders.add(osp.dirname(osp.abspath(named)))
    found = [p for folder in folders for p in glob.glob(osp.join(folder, '*.pth'))
             if _RESUME_NAME.match(osp.basename(p))]

    def newest_first(p):
        match = _RESUME_NAME.match(osp.basename(p))
        return (-osp.getmtime(p), -int(match.group(2)))

    ordered = sorted(set(found), key=newest_first)
    if named is not None:
        ordered = [named] + [p for p in ordered if osp.abspath(p) != osp.abspath(named)]
    return named, ordered


def load_latest_intact(work_dir: str, map_location: Any = 'cpu',
                       logger: Any = 'current') -> Optional[Tuple[str, Any]]:
    """Load the checkpoint ``last_checkpoint`` names or, when it is corrupt, empty or gone,
    the newest intact ``iter_<N>.pth`` / ``epoch_<N>.pth`` of ``work_dir`` (saying so).

    Returns:
        tuple | None: ``(path, checkpoint)``, or None when the work dir holds no checkpoint.

    Raises:
        CorruptCheckpointError: Checkpoints exist but none is readable.
        UnsafeCheckpointError: A candidate holds objects the safe loader refuses (never
            skipped: that is no accident of an interrupted write).
    """
    named, candidates = resume_candidates(work_dir)
    pointer = osp.join(work_dir, 'last_checkpoint')
    if named is None and osp.isfile(pointer) and candidates:
        print_log(f'{pointer} is empty or names a file that does not exist; looking for the '
                  'newest intact checkpoint in the work dir instead.', logger=logger, level=30)
    broken = []
    for path in candidates:
        try:
            checkpoint = safe_load(path, map_location, role='checkpoint to resume from')
        except CorruptCheckpointError as e:
            broken.append(path)
            print_log(f'{e} Falling back to the previous checkpoint.', logger=logger,
                      level=30)
            continue
        if not (isinstance(checkpoint, dict) and isinstance(checkpoint.get('meta'), dict)
                and 'iter' in checkpoint['meta'] and 'state_dict' in checkpoint):
            print_log(f'{path} is no training checkpoint (no meta.iter / state_dict); '
                      'skipped.', logger=logger, level=30)
            continue
        if broken:
            print_log(f'Resuming from {path}, the newest intact checkpoint (unreadable: '
                      f'{", ".join(broken)}).', logger=logger, level=30)
        return path, checkpoint
    if broken:
        raise CorruptCheckpointError(
            f'no intact checkpoint to resume from in {work_dir}: {", ".join(broken)} are all '
            'unreadable. Start without --resume or restore a checkpoint.')
    return None


def _load_state_dict_file(path: str, role: str) -> Dict[str, torch.Tensor]:
    if not is_url(path) and not osp.isfile(osp.expanduser(path)):
        raise FileNotFoundError(
            f'{role} checkpoint "{path}" does not exist. Set it to a local .pth file or to '
            'the URL of the released checkpoint.')
    # map_location='cpu': every rank loads onto the CPU, never onto GPU 0.
    checkpoint = safe_load(path, map_location='cpu', role=f'{role} checkpoint')
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) \
        else checkpoint
    if not isinstance(state_dict, dict):
        raise TypeError(f'{role} checkpoint "{path}" holds a {type(state_dict).__name__}, '
                        'not a state dict.')
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                       for k, v in state_dict.items())


def load_model_checkpoint(model: nn.Module, filename: str, map_location: Any = 'cpu',
                          strict: bool = False, logger: Any = None,
                          revise_keys: Optional[list] = None) -> dict:
    """mmengine's ``load_checkpoint(model, filename, ...)`` through the safe loader."""
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    checkpoint = safe_load(filename, map_location, role='checkpoint')
    return _load_checkpoint_to_model(model, checkpoint, strict, logger,
                                     revise_keys or [(r'^module\.', '')])


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
    # Every kind of difference, the first few of each (with the count when there are more):
    # a checkpoint of another architecture shows as all three, of another class count as
    # mismatched head shapes only.
    differences = '; '.join(
        f'{kind}: [{_summarise(keys, limit=5)}]'
        for kind, keys in (('missing keys', missing), ('unexpected keys', unexpected),
                           ('shape mismatch (checkpoint vs model)', mismatched)) if keys)
    if mismatched:
        raise ValueError(
            f'teacher checkpoint "{path}" does not match the teacher {name} '
            f'({len(own)} keys; the checkpoint has {len(state_dict)}): {differences}. Is it the '
            'checkpoint of this teacher config, trained with this num_classes?')
    if missing or unexpected:
        msg = (f'teacher checkpoint "{path}" does not match the teacher {name} '
               f'({len(own)} keys; the checkpoint has {len(state_dict)}): {differences}.')
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
