"""Loading a config file as the tools do: errors that name the config at fault, the
``--cfg-options``, and the resolution of top-level variables (:mod:`.config_resolution`)."""
import difflib
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config

from .config_resolution import _PREDEFINED, resolve_config


def _close_matches(path: str, limit: int = 5) -> List[str]:
    """Files beside ``path`` (or under its nearest existing folder) with similar names."""
    folder, name = osp.dirname(path), osp.basename(path)
    while folder and not osp.isdir(folder) and osp.dirname(folder) != folder:
        name = osp.join(osp.basename(folder), name)
        folder = osp.dirname(folder)
    if not osp.isdir(folder):
        return []
    candidates = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith('.')]
        candidates += [osp.relpath(osp.join(root, f), folder) for f in files
                       if f.endswith(('.py', '.json', '.yaml', '.yml'))]
        if len(candidates) > 5000:  # a huge folder: enough to match against
            break
    return [osp.join(folder, m) for m in
            difflib.get_close_matches(name, candidates, n=limit, cutoff=0.5)]


def find_missing_base(filename: str, _seen: Optional[set] = None) -> Optional[str]:
    """An error message for the first ``_base_`` entry of ``filename``'s inheritance chain
    that names no file, or None when every base exists.

    The message names the config that holds the entry, the entry, where it was looked for and
    the closest existing files.
    """
    seen = _seen if _seen is not None else set()
    filename = osp.abspath(filename)
    if filename in seen or not filename.endswith('.py'):
        return None
    seen.add(filename)
    for entry in Config._get_base_files(filename):
        expanded = _PREDEFINED.sub(osp.dirname(filename), entry)
        try:
            path, _ = Config._get_cfg_path(expanded, filename)
        except (FileNotFoundError, ModuleNotFoundError, ValueError) as e:
            return (f'config "{filename}" inherits _base_ "{entry}", which cannot be found '
                    f'({type(e).__name__}: {e}). A "<toolbox>::<path>" base is a path under '
                    'that toolbox\'s configs/ folder, e.g. "mmseg::_base_/default_runtime.py".')
        if not osp.isfile(path):
            close = _close_matches(osp.normpath(path))
            hint = (' Close matches: ' + ', '.join(close) + '.') if close else ''
            return (f'config "{filename}" inherits _base_ "{entry}", looked for at '
                    f'"{osp.normpath(path)}", which does not exist. A relative _base_ is '
                    f'relative to the folder of the config that names it '
                    f'("{osp.dirname(filename)}").{hint}')
        found = find_missing_base(path, seen)
        if found:
            return found
    return None


def load_config(filename: str, cfg_options: Optional[dict] = None,
                resolve: bool = True) -> Config:
    """``Config.fromfile`` with errors that say which config is wrong, then the options, then
    :func:`~mmstructkd.utils.config_resolution.resolve_config`.

    Args:
        filename (str): The config file.
        cfg_options (dict, optional): ``--cfg-options`` (``key.sub=value``), merged before the
            resolution (so ``data_root=...`` there is propagated like one in a child config).
        resolve (bool): Resolve the top-level variables. Defaults to True.

    Returns:
        Config: The loaded config.

    Raises:
        FileNotFoundError: ``filename`` or one of the configs it inherits does not exist.
    """
    if not osp.isfile(filename):
        close = _close_matches(osp.abspath(filename))
        raise FileNotFoundError(f'config "{filename}" does not exist.' + (
            ' Close matches: ' + ', '.join(close) + '.' if close else ''))
    try:
        cfg = Config.fromfile(filename)
    except FileNotFoundError as e:
        message = find_missing_base(filename)
        if message is None:
            raise
        raise FileNotFoundError(message) from e
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return resolve_config(cfg) if resolve else cfg
