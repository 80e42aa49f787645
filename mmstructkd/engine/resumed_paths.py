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
starts without a previous best file and deletes nothing that is not its own.
"""
import os.path as osp
import re
from typing import Dict, Iterable, List, Tuple

#: The file names ``CheckpointHook`` gives a best checkpoint (``best_<metric>_<epoch|iter>_<n>``).
BEST_NAME = re.compile(r'best_.+\.pth')


def _is_best_key(key: str) -> bool:
    return key == 'best_ckpt' or key.startswith('best_ckpt_')


def checkpoint_dirs(work_dir: str, hook_out_dirs: Iterable) -> List[str]:
    """The folders this run's ``CheckpointHook``\\ s write to: the work dir, and for a hook with
    its own ``out_dir`` that folder joined with the work dir's last part (mmengine's rule; the
    ``out_dir`` as given is kept too, for a hook whose ``before_train`` has run)."""
    dirs = [work_dir]
    for out_dir in hook_out_dirs:
        if out_dir is not None:
            dirs += [out_dir, osp.join(out_dir, osp.basename(work_dir.rstrip(osp.sep)))]
    return dirs


def _inside(path: str, folders: List[str]) -> bool:
    if '://' in path:  # a remote backend: the same prefix, textually
        return any(path.rsplit('/', 1)[0] == f.rstrip('/') for f in folders if '://' in f)
    parent = osp.dirname(osp.realpath(path))
    return any(parent == osp.realpath(f) for f in folders if '://' not in f)


def unsafe_checkpoint_paths(runtime_info: Dict, folders: List[str]) -> List[Tuple[str, str]]:
    """The message-hub entries the checkpoint hook must not act on, with why.

    Args:
        runtime_info (dict): The resumed message hub's ``runtime_info``.
        folders (list[str]): This run's checkpoint folders (:func:`checkpoint_dirs`).

    Returns:
        list[tuple[str, str]]: ``(key, reason)`` for each entry to drop: a best-checkpoint path
        that is no ``best_*.pth`` file directly inside one of ``folders``, and a
        ``keep_ckpt_ids`` that is not a list of step numbers.
    """
    unsafe = []
    for key, value in runtime_info.items():
        if _is_best_key(key):
            if not isinstance(value, str) or not BEST_NAME.fullmatch(osp.basename(value)):
                unsafe.append((key, f'{value!r} is no best_*.pth checkpoint file'))
            elif not _inside(value, folders):
                unsafe.append((key, f'{value} lies outside this run\'s checkpoint folder '
                                    f'({", ".join(dict.fromkeys(folders))})'))
        elif key == 'keep_ckpt_ids':
            steps_ok = isinstance(value, (list, tuple)) and all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
            if not steps_ok:
                unsafe.append((key, f'{value!r} is no list of step numbers'))
    return unsafe
