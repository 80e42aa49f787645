"""mmstructkd's registries: children of mmengine's root registries.

Each child has ``parent=`` the root registry (so stock OpenMMLab modules stay reachable) and
``locations=`` the packages whose import registers its members (so a config that names
``mmstructkd.X`` finds ``X`` even before ``mmstructkd.models`` was imported).

Configs that inherit a stock config keep that toolbox's ``default_scope`` (``mmseg``, ``mmdet``,
``mmpretrain``); they reach mmstructkd's modules by the scope prefix, e.g.
``type='mmstructkd.SingleTeacherDistiller'``. Inside a distiller, recorders, connectors and
losses are built from these registries directly, so their configs need no prefix.
"""
from importlib.util import find_spec

from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import Registry

#: Where the block-wise compression modules register (its backbone and blocks in ``MODELS``, its
#: search spaces in ``SEARCH_SPACES``): mmpretrain modules, so only where mmpretrain is installed.
_COMPRESSION = ['mmstructkd.compression'] if find_spec('mmpretrain') is not None else []

#: Distillers, connectors, distillation losses, discriminators; compression's backbone and blocks.
MODELS = Registry(
    'model', parent=MMENGINE_MODELS, locations=['mmstructkd.models'] + _COMPRESSION)
#: Recorders: they are not ``nn.Module`` s, so they live with the task utilities as in mmrazor.
TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, locations=['mmstructkd.models'])
#: Dataset wrappers (ReplayableViews: replayable augmentation for the teacher-output cache).
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['mmstructkd.datasets'])
#: Hooks that schedule or stop distillation and save student-only checkpoints.
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['mmstructkd.engine'])
#: Splits a distiller's parameters between generator (student side) and discriminator.
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['mmstructkd.engine'])
#: The DDP wrapper that lets a distiller run its own (two-optimizer) train_step.
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['mmstructkd.engine'])
#: Runners: ``runner_type='mmstructkd.SafeRunner'`` (``mmstructkd.engine.runner``).
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['mmstructkd.engine'])
#: Block-wise compression: per block type, the builder of its cheaper candidate blocks (callables,
#: hence under mmengine's FUNCTIONS root: TASK_UTILS already has mmstructkd's recorders as child).
SEARCH_SPACES = Registry('search space', parent=MMENGINE_FUNCTIONS, locations=_COMPRESSION)


def build_own(registry: Registry, cfg: dict):
    """Build ``cfg`` from one of mmstructkd's registries, whatever the default scope is.

    Inside a config that inherits a stock one the default scope is ``mmseg``/``mmdet``/
    ``mmpretrain``, and a plain ``registry.build`` would look the type up in that toolbox's
    registry, which cannot see mmstructkd's. ``_scope_`` pins the lookup to mmstructkd (whose
    registries still reach the stock modules through the root, e.g. ``'mmseg.CrossEntropyLoss'``).
    """
    cfg = dict(cfg)
    cfg.setdefault('_scope_', 'mmstructkd')
    return registry.build(cfg)
