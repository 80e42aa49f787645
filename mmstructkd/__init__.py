"""mmstructkd: knowledge distillation for dense prediction and cross-task transfer.

``import mmstructkd`` (or ``custom_imports=dict(imports=['mmstructkd'])`` in a config)
registers every distiller, recorder, connector, loss, hook and ``mmstructkd.SafeRunner``. It
changes no global state of torch, numpy or mmengine: checkpoints are loaded by
:func:`mmstructkd.utils.safe_load` (``weights_only=True`` with an allow-list applied only
inside its own loads).
"""
from .version import __version__

from . import compression, datasets, engine, models  # noqa: E402,F401  (registers everything)

__all__ = ['__version__']
