"""Which file paths a resumed checkpoint may make mmengine's ``CheckpointHook`` delete.

A checkpoint's message hub carries two things the hook later deletes by:

- ``best_ckpt`` / ``best_ckpt_<metric>``: the previous best checkpoint's path, removed (a file)
  or removed with its whole tree (a folder) as soon as the resumed run scores a new best;
- ``keep_ckpt_ids``: the steps of the kept checkpoints, ``<out_dir>/iter_<step>.pth`` removed
  once more than ``max_keep_ckpts`` are kept.

Both are data in the file, not this run's state: a work dir copied elsewhere and resumed would
delete the original run's best checkpoint, and a crafted checkpoint could name any path on the
machine. :func:`unsafe_checkpoint_paths` lists the entries that point outside this run's
checkpoint folder (or are no step numbers); the runner drops them and says so, so the hook
starts without a previous best file and deletes nothing that is not its own, unless this run's
folder holds a best file of that name (:func:`own_copy`: a copied work dir), which it then
takes as its previous best.
"""
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple, Union

#: The file names ``CheckpointHook`` gives a best checkpoint (``best_<metric>_`` + its
#: ``filename_tmpl``); the folder check is what keeps the deletion inside the run.
BEST_NAME = re.compile(r'best_.+')


def _is_best_key(key: str) -> bool:
    return key == 'best_ckpt' or key.startswith('best_ckpt_')


def checkpoint_dir(work_dir: str, out_dir: Optional[Union[str, os.PathLike]],
                   resolved: bool) -> str:
    """The folder a ``CheckpointHook`` writes to: the work dir without an ``out_dir``; else
    ``out_dir`` joined with the work dir's last part (mmengine's rule, applied in the hook's
    ``before_train``), or ``out_dir`` itself once that has run (``resolved``)."""
    if out_dir is None:
        return work_dir
    out_dir = os.fspath(out_dir)
    if resolved or out_dir == work_dir:
        return out_dir
    return osp.join(out_dir, osp.basename(work_dir.rstrip(osp.sep)))


def _inside(path: str, folders: List[str]) -> bool:
    if '://' in path:  # a remote backend: the same prefix, textually
        return any(path.rsplit('/', 1)[0] == f.rstrip('/') for f in folders if '://' in f)
    # the folder resolved (symlinks, relative parts), the file itself may be a link
    parent = osp.realpath(osp.dirname(osp.abspath(path)))
    return any(parent == osp.realpath(f) for f in folders if '://' not in f)


def unsafe_checkpoint_paths(runtime_info: Dict, folders: List[str]) -> List[Tuple[str, str]]:
    """The message-hub entries the checkpoint hook must not act on, with why.

    Args:
        runtime_info (dict): The resumed message hub's ``runtime_info``.
        folders (list[str]): This run's checkpoint folders (:func:`checkpoint_dir` of each
            ``CheckpointHook``).

    Returns:
        list[tuple[str, str]]: ``(key, reason)`` for each entry to drop: a best-checkpoint path
        that is no ``best_*`` file directly inside one of ``folders``, and a
        ``keep_ckpt_ids`` that is not a list of step numbers.
    """
    unsafe = []
    for key, value in runtime_info.items():
        if _is_best_key(key):
            if not isinstance(value, str) or not BEST_NAME.fullmatch(osp.basename(value)):
                unsafe.append((key, f'{value!r} is no best_* checkpoint file'))
            elif not _inside(value, folders):
                unsafe.append((key, f'{value} lies outside this run\'s checkpoint folder '
                                    f'({", ".join(dict.fromkeys(folders))})'))
        elif key == 'keep_ckpt_ids':
            steps_ok = isinstance(value, (list, tuple)) and all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
            if not steps_ok:
                unsafe.append((key, f'{value!r} is no list of step numbers'))
    return unsafe


def own_copy(path: object, folders: List[str]) -> Optional[str]:
    """The best checkpoint of the same file name in this run's folders (a work dir copied with
    its files), or None."""
    if not isinstance(path, str) or not BEST_NAME.fullmatch(osp.basename(path)):
        return None
    for folder in folders:
        candidate = osp.join(folder, osp.basename(path))
        if '://' not in candidate and osp.isfile(candidate):
            return candidate
    return None
