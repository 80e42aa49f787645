"""mmstructkd: knowledge distillation for dense prediction and cross-task transfer.

``import mmstructkd`` (or ``custom_imports=dict(imports=['mmstructkd'])`` in a config)
registers every distiller, recorder, connector, loss, hook and ``mmstructkd.SafeRunner`` (and,
with mmpretrain, the block-wise compression modules), and does nothing else. It changes no
global state of torch, numpy or mmengine: checkpoints are loaded by
:func:`mmstructkd.utils.safe_load` (``weights_only=True`` with an allow-list applied only
inside its own loads).
"""
from importlib.util import find_spec

from .version import __version__

from . import datasets, engine, models  # noqa: F401  (registers everything)

# Block-wise compression builds its candidate blocks from mmpretrain's; as for STKDMixup
# (mmstructkd.models.batch_augments), mmstructkd imports without mmpretrain (segmentation /
# detection only), and a broken mmpretrain install still fails loudly.
if find_spec('mmpretrain') is not None:
    from . import compression  # noqa: F401

__all__ = ['__version__']
