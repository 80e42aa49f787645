"""Top-level config variables that the values derived from them follow.

mmengine reads a base config completely before a child config is applied, so a dict built in
the base from one of its variables (``dataset=dict(data_root=data_root)``) keeps the base's
value when a child sets ``data_root = 'data/mine'``. :func:`resolve_config` closes that gap
for a few variables: when the config sets one of them to a value that differs from the value
its base configs had, every place that still holds the old value takes the new one.

=================  ======================================================================
variable           places that follow it (while they hold one of its earlier values)
=================  ======================================================================
``data_root``      ``data_root`` of every dataset of the three dataloaders (wrappers too);
                   paths under the dataloaders and ``val/test_evaluator`` that start with
                   the old root (``CocoMetric.ann_file``)
``metainfo``       ``metainfo`` of every dataset; ``num_classes`` follows its class count
``num_classes``    every ``num_classes`` under ``model`` (and a top-level
                   ``data_preprocessor``); a distiller's own ``num_classes``, which it
                   applies to the teacher given by ``cfg_path`` as well
``teacher_ckpt``   ``model.teacher_ckpt`` of a distiller
``max_iters``      ``train_cfg.max_iters`` / ``val_interval``; ``end`` of iteration-based
                   schedulers (``milestones`` scaled with the length)
``max_epochs``     ``train_cfg.max_epochs`` / ``val_interval``; ``end`` of epoch-based
                   schedulers (``milestones`` scaled with the length)
``warmup_iters``   ``end`` of iteration-based schedulers (the warm-up)
=================  ======================================================================

Places set to something else (by the child, ``--cfg-options`` or a script) are left as they
are, so the resolution only ever replaces values that were derived from the old variable; a
config whose variables are those of its bases is returned unchanged (every shipped config).
``num_classes`` must agree with the class count of ``metainfo`` (when both are given): a child
that changes only ``metainfo`` gets ``num_classes = len(metainfo['classes'])``.

``tools/train.py``, ``tools/test.py``, ``tools/export_student.py`` and ``SafeRunner.from_cfg``
(so a toolbox's own ``train.py`` with ``runner_type='mmstructkd.SafeRunner'``) resolve
configs; see ``docs/own_data.md``.
"""
import copy
import functools
import os.path as osp
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

#: The variables :func:`resolve_config` propagates, in the order it handles them.
VARIABLES = ('metainfo', 'num_classes', 'data_root', 'teacher_ckpt', 'max_iters',
             'max_epochs', 'warmup_iters')
#: Top-level keys whose earlier values are also looked up (scheduler lists, milestones).
_ALSO_TRACKED = ('param_scheduler', )
_DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
_EVALUATORS = ('val_evaluator', 'test_evaluator')
_PREDEFINED = re.compile(r'\{\{\s*fileDirname\s*\}\}')


def plain(value: Any) -> Any:
    """``value`` as plain data for comparisons: ConfigDicts as dicts, tuples as lists."""
    if isinstance(value, (dict, ConfigDict)):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# ---------------------------------------------------------------------- the bases' values
def base_files(filename: str) -> List[str]:
    """The files of a config's ``_base_`` list (local paths and ``pkg::`` configs)."""
    found = []
    for entry in Config._get_base_files(filename):
        entry = _PREDEFINED.sub(osp.dirname(osp.abspath(filename)), entry)
        path, _ = Config._get_cfg_path(entry, filename)
        found.append(path)
    return found


@functools.lru_cache(maxsize=256)
def _file_values(path: str, mtime: float) -> Dict[str, Any]:
    cfg = Config.fromfile(path, import_custom_modules=False)
    return {k: plain(cfg[k]) for k in VARIABLES + _ALSO_TRACKED if k in cfg}


def earlier_values(filename: str) -> Dict[str, List[Any]]:
    """For each variable, the values it has in the configs ``filename`` inherits from (each
    base and its bases, merged as mmengine merges them), without repeats."""
    values: Dict[str, List[Any]] = {}
    stack, seen = list(base_files(filename)), set()
    while stack:
        path = osp.abspath(stack.pop())
        if path in seen or not osp.isfile(path) or not path.endswith('.py'):
            continue
        seen.add(path)
        for key, value in _file_values(path, osp.getmtime(path)).items():
            if value not in values.setdefault(key, []):
                values[key].append(value)
        stack.extend(base_files(path))
    return values


# ---------------------------------------------------------------------- walking a config
def _walk(obj: Any, path: str, seen: set) -> Iterator[Tuple[Any, Any, str]]:
    """(container, key, dotted path) of every entry below ``obj``, each container once."""
    if id(obj) in seen:
        return
    if isinstance(obj, dict):
        seen.add(id(obj))
        for key in list(obj.keys()):
            yield obj, key, f'{path}.{key}' if path else str(key)
            yield from _walk(obj[key], f'{path}.{key}' if path else str(key), seen)
    elif isinstance(obj, list):
        seen.add(id(obj))
        for i in range(len(obj)):
            yield obj, i, f'{path}[{i}]'
            yield from _walk(obj[i], f'{path}[{i}]', seen)


def _replace(cfg: Config, roots: Tuple[str, ...], key: str, olds: List[Any], new: Any,
             changed: List[str]) -> None:
    """Set every ``key`` below the top-level ``roots`` whose value is one of ``olds``."""
    seen: set = set()
    for root in roots:
        if root not in cfg:
            continue
        for container, k, path in _walk(cfg[root], root, seen):
            if k == key and plain(container[k]) in olds:
                container[k] = copy.deepcopy(new)
                changed.append(path)


def _schedulers(cfg: Config) -> List[dict]:
    """The param scheduler dicts of the config (a list, or a dict of lists per optimizer)."""
    schedulers = cfg.get('param_scheduler')
    if schedulers is None:
        return []
    if isinstance(schedulers, dict) and 'type' not in schedulers:
        groups = list(schedulers.values())
    else:
        groups = [schedulers]
    found = []
    for group in groups:
        found += [s for s in (group if isinstance(group, list) else [group])
                  if isinstance(s, dict)]
    return found


# ---------------------------------------------------------------------- the variables
def _metainfo(cfg: Config, olds: List[Any], changed: List[str]) -> None:
    _replace(cfg, _DATALOADERS, 'metainfo', olds, cfg.metainfo, changed)


def _class_count(metainfo: Any) -> Optional[int]:
    classes = metainfo.get('classes') if isinstance(metainfo, dict) else None
    return len(classes) if isinstance(classes, (list, tuple)) else None


def _num_classes(cfg: Config, olds: List[Any], changed: List[str]) -> None:
    new = cfg.num_classes
    # Class weights cannot be carried over to another class list (mmdet's softmax heads
    # weight the background too: num_classes + 1).
    stale = {o + extra for o in olds if isinstance(o, int) for extra in (0, 1)}
    for container, key, path in _walk(cfg.get('model'), 'model', set()):
        value = container[key]
        if key == 'class_weight' and isinstance(value, (list, tuple)) and \
                (len(value) not in (new, new + 1) or len(value) in stale):
            raise ValueError(
                f'{cfg.filename}: num_classes = {new}, but {path} has {len(value)} weights (one '
                'per class of the base config\'s dataset). Set it in your config to '
                f'{new} weights for your classes, or to None.')
    _replace(cfg, ('model', 'data_preprocessor'), 'num_classes', olds, new, changed)
    model = cfg.get('model')
    if isinstance(model, dict) and 'student' in model and 'teacher' in model:
        # The distiller applies it to the teacher of a cfg_path too (not visible here).
        if model.get('num_classes') is None or plain(model.get('num_classes')) in olds:
            model['num_classes'] = new
            changed.append('model.num_classes')


def _data_root(cfg: Config, olds: List[Any], changed: List[str]) -> None:
    new = cfg.data_root
    _replace(cfg, _DATALOADERS, 'data_root', olds, new, changed)
    prefixes = [o for o in olds if isinstance(o, str) and len(o.strip('./')) > 0]
    if not isinstance(new, str) or not prefixes:
        return
    seen: set = set()
    for root in _DATALOADERS + _EVALUATORS:
        if root not in cfg:
            continue
        for container, k, path in _walk(cfg[root], root, seen):
            value = container[k]
            if k == 'data_root' or not isinstance(value, str):
                continue
            for old in prefixes:
                rest = value[len(old):]
                if value.startswith(old) and (old.endswith('/') or rest.startswith('/')):
                    container[k] = new.rstrip('/') + '/' + rest.lstrip('/')
                    changed.append(path)
                    break


def _teacher_ckpt(cfg: Config, olds: List[Any], changed: List[str]) -> None:
    model = cfg.get('model')
    if not (isinstance(model, dict) and 'teacher' in model):
        return
    if 'teacher_ckpt' not in model or plain(model['teacher_ckpt']) in olds:
        model['teacher_ckpt'] = cfg.teacher_ckpt
        changed.append('model.teacher_ckpt')


def _length(loop_key: str, by_epoch: bool) -> Callable[[Config, List[Any], List[str]], None]:
    """The rule of ``max_iters`` (``by_epoch=False``) or ``max_epochs``."""

    def rule(cfg: Config, olds: List[Any], changed: List[str], earlier: Dict[str, list]
             ) -> None:
        new = cfg[loop_key]
        train_cfg = cfg.get('train_cfg')
        if isinstance(train_cfg, dict):
            for key in (loop_key, 'val_interval'):
                if key in train_cfg and plain(train_cfg[key]) in olds:
                    train_cfg[key] = new
                    changed.append(f'train_cfg.{key}')
        # Milestones are scaled only in a schedule the config took from its bases: one the
        # config wrote itself is already written for its length.
        inherited = plain(cfg.get('param_scheduler')) in earlier.get('param_scheduler', [])
        old = next((o for o in olds if isinstance(o, (int, float)) and o > 0), None)
        for i, scheduler in enumerate(_schedulers(cfg)):
            if bool(scheduler.get('by_epoch', True)) != by_epoch:
                continue
            spans = scheduler.get('begin', 0) == 0 and (
                'end' not in scheduler or plain(scheduler['end']) in olds)
            if 'end' in scheduler and plain(scheduler['end']) in olds:
                scheduler['end'] = new
                changed.append(f'param_scheduler {scheduler.get("type")}.end')
            if spans and inherited and old and scheduler.get('milestones'):
                scheduler['milestones'] = [max(1, round(m * new / old))
                                           for m in scheduler['milestones']]
                changed.append(f'param_scheduler {scheduler.get("type")}.milestones')

    return rule


def _warmup_iters(cfg: Config, olds: List[Any], changed: List[str]) -> None:
    for scheduler in _schedulers(cfg):
        if not scheduler.get('by_epoch', True) and plain(scheduler.get('end')) in olds:
            scheduler['end'] = cfg.warmup_iters
            changed.append(f'param_scheduler {scheduler.get("type")}.end')


_RULES = dict(metainfo=_metainfo, num_classes=_num_classes, data_root=_data_root,
              teacher_ckpt=_teacher_ckpt, warmup_iters=_warmup_iters)
_LENGTH_RULES = dict(max_iters=_length('max_iters', by_epoch=False),
                     max_epochs=_length('max_epochs', by_epoch=True))


def _check_class_count(cfg: Config, earlier: Dict[str, list]) -> None:
    """``num_classes`` and the class count of ``metainfo`` agree; a child that changed only
    ``metainfo`` gets its class count."""
    count = _class_count(cfg.get('metainfo'))
    if 'num_classes' not in cfg or count is None:
        return
    own = plain(cfg.num_classes)
    set_here = own not in earlier.get('num_classes', [own])
    metainfo_here = plain(cfg.metainfo) not in earlier.get('metainfo', [plain(cfg.metainfo)])
    if own == count:
        return
    if metainfo_here and not set_here:
        cfg.num_classes = count
        return
    classes = list(cfg.metainfo['classes'])
    shown = ', '.join(map(str, classes[:6])) + (', ...' if len(classes) > 6 else '')
    raise ValueError(
        f'{cfg.filename}: num_classes = {own} but metainfo lists {count} classes ({shown}). '
        'Set metainfo = dict(classes=(...)) to the classes of your dataset (mmseg counts the '
        'background as a class) and num_classes to their number, or leave num_classes out: '
        'it follows metainfo.')


def resolve_config(cfg: Config, verbose: bool = True) -> Config:
    """Propagate the top-level variables the config changed (see the module docstring).

    Args:
        cfg (Config): A config loaded from its file (``cfg.filename`` names it; a config
            without a file is returned as it is: there are no bases to compare with).
        verbose (bool): Log what was changed. Defaults to True.

    Returns:
        Config: ``cfg`` itself, changed in place.

    Raises:
        ValueError: ``num_classes`` and ``metainfo`` disagree.
    """
    filename = getattr(cfg, 'filename', None)
    if not filename or not osp.isfile(filename) or not filename.endswith('.py'):
        return cfg
    earlier = earlier_values(filename)
    _check_class_count(cfg, earlier)
    changed: Dict[str, List[str]] = {}
    for name in VARIABLES:
        if name not in cfg:
            continue
        current = plain(cfg[name])
        olds = [v for v in earlier.get(name, []) if v != current]
        if name == 'teacher_ckpt' and not olds:
            _sync_teacher_ckpt_back(cfg)
            continue
        if not olds:
            continue
        places: List[str] = []
        if name in _LENGTH_RULES:
            _LENGTH_RULES[name](cfg, olds, places, earlier)
        else:
            _RULES[name](cfg, olds, places)
        if places:
            changed[name] = places
    if verbose and changed:
        lines = '; '.join(f'{name} = {cfg[name]!r} -> {", ".join(places)}'
                          for name, places in changed.items())
        print_log(f'{osp.basename(filename)}: top-level variables set in this config, '
                  f'applied where they were derived from the bases\' values: {lines}',
                  logger='current')
    return cfg


def _sync_teacher_ckpt_back(cfg: Config) -> None:
    """A ``model.teacher_ckpt`` set directly (``--cfg-options model.teacher_ckpt=...``) while
    the top-level one is the bases': the top level takes it, so that the config the run dumps
    names the checkpoint it used once."""
    model = cfg.get('model')
    if isinstance(model, dict) and 'teacher' in model and 'teacher_ckpt' in model and \
            plain(model['teacher_ckpt']) != plain(cfg.teacher_ckpt):
        cfg.teacher_ckpt = model['teacher_ckpt']
