"""Building a student or teacher from a model config or from a whole config file."""
import copy
import difflib
import os
import os.path as osp
from typing import Any, List, Optional, Union

from mmengine.config import Config, ConfigDict
from mmengine.config.utils import _get_package_and_cfg_path
from mmengine.logging import print_log
from mmengine.registry import MODELS
from mmengine.utils import get_installed_path
from torch import nn

ModelSpec = Union[nn.Module, dict, ConfigDict]


def resolve_config_path(cfg_path: str, role: str = 'config') -> str:
    """The file behind a local path or a stock config named like ``_base_`` entries.

    Args:
        cfg_path (str): A local file, or ``'<toolbox>::<path under its configs/>'`` such as
            ``'mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'``.
        role (str): What the path is for, in error messages.

    Returns:
        str: An existing file path.
    """
    if '::' not in cfg_path:
        if not osp.isfile(cfg_path):
            raise FileNotFoundError(
                f'{role} cfg_path "{cfg_path}" does not exist. Give a local config file or a '
                'stock config such as '
                '"mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py".')
        return cfg_path
    package, relative = _get_package_and_cfg_path(cfg_path)
    try:
        package_path = get_installed_path(package)
    except Exception:
        raise FileNotFoundError(f'{role} cfg_path "{cfg_path}" needs the package "{package}", '
                                'which is not installed.') from None
    path = osp.join(package_path, '.mim', 'configs', relative)
    if not osp.isfile(path):
        folder = osp.dirname(path)
        names = sorted(os.listdir(folder)) if osp.isdir(folder) else []
        close = difflib.get_close_matches(osp.basename(relative), names, n=5, cutoff=0.5)
        raise FileNotFoundError(f'{role} cfg_path "{cfg_path}": {package} has no config '
                                f'"{relative}".' + (f' Close matches: {close}.' if close else ''))
    return path


def model_cfg_from_spec(spec: Union[dict, ConfigDict], role: str) -> ConfigDict:
    """Turn a student/teacher spec into a model config carrying its registry scope.

    Args:
        spec (dict): Either a model config (``dict(type='EncoderDecoder', ...)``) or
            ``dict(cfg_path='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', **overrides)``:
            the ``model`` of that config file (``overrides`` merged into it), built in the
            file's ``default_scope``. ``pretrained=False`` drops the backbone's ``init_cfg``
            (useless for a teacher whose checkpoint is loaded afterwards).
        role (str): ``'student'`` or ``'teacher'``, for error messages.

    Returns:
        ConfigDict: A model config; ``_scope_`` is set where the spec came from a file.
    """
    spec = ConfigDict(copy.deepcopy(spec))
    if 'cfg_path' not in spec:
        if 'type' not in spec:
            raise ValueError(f'{role} must be a model config with "type" or '
                             f'dict(cfg_path=...), got keys {sorted(spec)}')
        return spec
    cfg_path = spec.pop('cfg_path')
    pretrained = spec.pop('pretrained', True)
    file_cfg = Config.fromfile(resolve_config_path(cfg_path, role))
    if 'model' not in file_cfg:
        raise ValueError(f'{role} cfg_path "{cfg_path}" defines no "model".')
    # Overrides merge like a child config's keys (nested dicts merge, _delete_ works).
    model_cfg = ConfigDict(Config._merge_a_into_b(spec.to_dict(), file_cfg.model.to_dict()))
    if not pretrained:
        for part in model_cfg.values():
            if isinstance(part, dict):
                part.pop('init_cfg', None)
        model_cfg.pop('pretrained', None)
        model_cfg.pop('init_cfg', None)
    if '_scope_' not in model_cfg and file_cfg.get('default_scope'):
        model_cfg['_scope_'] = file_cfg.default_scope
    # As the Runner does: a top-level data_preprocessor belongs to the model.
    if file_cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', file_cfg.data_preprocessor)
    return model_cfg


def build_model_from_spec(spec: ModelSpec, role: str,
                          data_preprocessor: Optional[dict] = None) -> nn.Module:
    """Build a student or teacher from an ``nn.Module``, a model config or a ``cfg_path``.

    Args:
        spec (nn.Module | dict): See :func:`model_cfg_from_spec`.
        role (str): ``'student'`` or ``'teacher'``, for error messages.
        data_preprocessor (dict, optional): Used when the model config has none.
    """
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, dict):
        raise TypeError(f'{role} must be an nn.Module or a config dict, got {type(spec)}')
    cfg = model_cfg_from_spec(spec, role)
    if data_preprocessor is not None:
        cfg.setdefault('data_preprocessor', copy.deepcopy(data_preprocessor))
    return MODELS.build(cfg)


def set_num_classes(cfg: Any, num_classes: int, role: str = 'model', path: str = ''
                    ) -> List[str]:
    """Set every ``num_classes`` key of a (model) config, in place, to ``num_classes``.

    Heads keep their class count under ``num_classes`` in all three toolboxes (mmseg
    ``decode_head`` / ``auxiliary_head``, mmdet ``bbox_head`` / ``roi_head.bbox_head`` /
    ``mask_head``, mmpretrain ``head`` and its ``data_preprocessor``), so setting the key
    wherever it occurs retargets a model without knowing its architecture. Keys that are not
    there are not added; ``rpn_head`` is left alone (class-agnostic proposals: mmdet's
    two-stage detectors use one class there whatever the dataset).

    Args:
        cfg (dict | list): A model config (nested dicts and lists).
        num_classes (int): The class count.
        role (str): What the config is, for error messages (``'teacher'``).
        path (str): Dotted path of ``cfg`` itself, for messages.

    Returns:
        list[str]: Dotted paths of the keys whose value changed.

    Raises:
        ValueError: A ``class_weight`` list made for the old class count (one weight per
            class, or per class and background as in mmdet's softmax heads): weights of
            another class list cannot be carried over.
    """
    changed: List[str] = []
    olds: List[int] = []
    weights: List[tuple] = []
    _set_num_classes(cfg, num_classes, path, changed, olds, weights)
    stale = {o + extra for o in olds for extra in (0, 1)}
    for where, value in weights:
        if len(value) not in (num_classes, num_classes + 1) or len(value) in stale:
            raise ValueError(
                f'{role} config: {where}class_weight has {len(value)} weights, one per class '
                f'of another class list, but num_classes is now {num_classes}. Give '
                f'{num_classes} weights for your classes (or {where}class_weight=None).')
    return changed


def _set_num_classes(cfg: Any, num_classes: int, path: str, changed: List[str],
                     olds: List[int], weights: List[tuple]) -> None:
    if isinstance(cfg, (list, tuple)):
        for i, item in enumerate(cfg):
            _set_num_classes(item, num_classes, f'{path}{i}.', changed, olds, weights)
        return
    if not isinstance(cfg, dict):
        return
    for key, value in cfg.items():
        if key == 'rpn_head':
            continue
        if key == 'num_classes' and not isinstance(value, (dict, list, tuple)):
            if value != num_classes:
                cfg[key] = num_classes
                changed.append(f'{path}{key}')
                if isinstance(value, int):
                    olds.append(value)
        elif key == 'class_weight' and isinstance(value, (list, tuple)):
            weights.append((path, value))
        else:
            _set_num_classes(value, num_classes, f'{path}{key}.', changed, olds, weights)


def apply_num_classes(spec: ModelSpec, num_classes: Optional[int], role: str) -> ModelSpec:
    """``spec`` with every ``num_classes`` of its model config set to ``num_classes``.

    Args:
        spec (nn.Module | dict): A student/teacher spec (see :func:`model_cfg_from_spec`); a
            ``cfg_path`` spec is read so that the keys of that file are set too.
        num_classes (int, optional): None leaves ``spec`` as it is.
        role (str): ``'student'`` or ``'teacher'``, for messages.

    Returns:
        nn.Module | dict: ``spec`` itself when nothing changes (a built module, no
        ``num_classes``, or counts that already match), else the model config with the new
        class count (a ``cfg_path`` spec resolved into the model config of that file).
    """
    if num_classes is None:
        return spec
    if isinstance(spec, nn.Module):
        print_log(f'num_classes={num_classes}: the {role} is a built module, whose class count '
                  'cannot be changed; it is used as it is.', logger='current', level=30)
        return spec
    model_cfg = model_cfg_from_spec(spec, role)
    if not _has_key(model_cfg, 'num_classes'):
        print_log(f'num_classes={num_classes}: the {role} config has no "num_classes" key '
                  '(a model without class outputs?); it is built as configured.',
                  logger='current', level=30)
        return spec
    return model_cfg if set_num_classes(model_cfg, num_classes, role) else spec


def _has_key(cfg: Any, key: str) -> bool:
    if isinstance(cfg, dict):
        return key in cfg or any(_has_key(v, key) for v in cfg.values())
    if isinstance(cfg, (list, tuple)):
        return any(_has_key(v, key) for v in cfg)
    return False
