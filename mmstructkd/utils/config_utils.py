"""Building a student or teacher from a model config or from a whole config file."""
import copy
import difflib
import os
import os.path as osp
from typing import Optional, Union

from mmengine.config import Config, ConfigDict
from mmengine.config.utils import _get_package_and_cfg_path
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
