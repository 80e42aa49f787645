"""mmstructkd: knowledge distillation for dense prediction and cross-task transfer.

``import mmstructkd`` (or ``custom_imports=dict(imports=['mmstructkd'])`` in a config)
registers every distiller, recorder, connector, loss and hook, and lets ``torch.load`` with
``weights_only=True`` read mmengine checkpoints (needed by ``--resume`` on torch >= 2.6).
"""
from .utils.checkpoint import allow_mmengine_checkpoint_globals
from .version import __version__

allow_mmengine_checkpoint_globals()

from . import compression, datasets, engine, models  # noqa: E402,F401  (registers everything)

__all__ = ['__version__']
