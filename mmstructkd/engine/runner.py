"""``SafeRunner``: mmengine's Runner with safe loads, crash-safe saves and an exact resume.

What it changes (everything else is mmengine 0.10.7's ``Runner``):

- **Loading** (``load_from``, ``--resume``, auto-resume) goes through
  :func:`mmstructkd.utils.safe_load` (``weights_only=True``, scoped stand-ins; URLs downloaded
  to the cache, then loaded the same way). mmengine's ``resume`` also builds a ``Config`` from
  ``checkpoint['meta']['config']``, which *executes* that text as Python; here the config of a
  resumed run is the one it was started with, and the stored text is only compared.
- **Saving**: the message hub's buffers and numpy values are stored as tensors in plain dicts
  (any ``torch.load(weights_only=True)`` reads the checkpoint), with every rank's random state
  (``rng_state``); the file is written to a temporary name, fsynced and renamed, and only then
  does ``CheckpointHook`` point ``last_checkpoint`` to it.
- **Auto-resume** (``--resume`` without a path) falls back to the newest intact checkpoint when
  the latest one is truncated or empty, and says so.
- **Checks** the built model for misplaced batch augments (``STKDMixup`` outside mmpretrain's
  ``ClsDataPreprocessor``) before anything runs.
- **Resumed paths**: the message hub's best-checkpoint paths and kept steps, which
  ``CheckpointHook`` deletes by, are kept only where they name this run's own checkpoint folder
  (a copied work dir or a crafted checkpoint would otherwise delete files elsewhere).
- **Exact resume**: the random state is restored right before the first batch after the resume
  (after the iteration-based loop has skipped the batches already trained), and validation
  runs between a saved RNG state and the restored one (it draws nothing from the training
  stream): N iterations straight and N/2 + ``--resume`` + N/2 are the same, bit for bit.

``tools/train.py`` and ``tools/test.py`` use it; a config's ``runner_type`` is honoured with the
same behaviour mixed in (:func:`safe_runner_class`). With the toolboxes' own scripts, set
``runner_type='mmstructkd.SafeRunner'`` in the config.
"""
import copy
import pickle
import time
import warnings
from typing import Any, Callable, Dict, Optional, Union

import mmengine
from mmengine.device import get_device
from mmengine.dist import is_main_process
from mmengine.fileio import FileClient, get_file_backend, join_path
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import (_load_checkpoint_to_model, save_checkpoint,
                                        weights_to_cpu)
from mmengine.utils import apply_to

from mmstructkd.registry import RUNNERS
from mmstructkd.utils.checkpoint import atomic_save, load_latest_intact
from mmstructkd.utils.config_resolution import resolve_config
from mmstructkd.utils.safe_load import encode_state, safe_load, scoped_checkpoint_loader
from mmstructkd.utils.model_checks import check_batch_augment_placement
from .hooks.schedule_check_hook import ScheduleCheckHook
from .resumed_paths import checkpoint_dir, own_copy, unsafe_checkpoint_paths
from .rng import (capture_global_rng_state, gather_rng_states, restore_global_rng_state,
                  restore_rank_rng_state)


class _SkipThenRestore:
    """Wraps the iteration-based loop's dataloader iterator after a resume: lets the loop skip
    the ``skip`` batches already trained, then restores the saved random state right before
    the first new batch is fetched (as the uninterrupted run fetched it)."""

    def __init__(self, iterator, skip: int, restore: Callable[[], None]) -> None:
        self._iterator = iterator
        self._left = skip
        self._restore: Optional[Callable[[], None]] = restore

    def __iter__(self):
        return self

    def __next__(self):
        if self._left > 0:
            self._left -= 1
        elif self._restore is not None:
            restore, self._restore = self._restore, None
            restore()
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


class _RandomStateHook(Hook):
    """Restores a resumed run's random state before its first batch, and keeps validation
    from drawing on the training stream (its state is saved before and put back after)."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self._before_val: Optional[Dict[str, Any]] = None

    def before_train_epoch(self, runner) -> None:
        pending = runner._pending_rng_state
        if pending is None:
            return
        runner._pending_rng_state = None
        restore = lambda: restore_rank_rng_state(pending, runner.model)  # noqa: E731
        loop = runner.train_loop
        if getattr(loop, 'dataloader_iterator', None) is not None and loop.iter > 0:
            # IterBasedTrainLoop skips loop.iter batches after this hook: restore after them.
            loop.dataloader_iterator = _SkipThenRestore(loop.dataloader_iterator, loop.iter,
                                                        restore)
        else:
            restore()

    def before_val(self, runner) -> None:
        self._before_val = capture_global_rng_state()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            restore_global_rng_state(self._before_val)
            self._before_val = None


class SafeRunnerMixin:
    """The overrides of :class:`SafeRunner`, for mixing into any ``Runner`` subclass."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        check_batch_augment_placement(self.model)
        self._pending_rng_state: Optional[Dict[str, Any]] = None
        self._cfg_text: Optional[str] = None
        self.register_hook(_RandomStateHook())
        self.register_hook(ScheduleCheckHook())

    @classmethod
    def from_cfg(cls, cfg) -> Runner:
        """mmengine's ``Runner.from_cfg`` on the config with its top-level variables resolved
        (:func:`mmstructkd.utils.config_resolution.resolve_config`: ``data_root``,
        ``num_classes``, ``max_iters``, ... set by a child config reach the places its bases
        derived from them), so a toolbox's own ``train.py`` with ``runner_type=
        'mmstructkd.SafeRunner'`` runs such a config as ``tools/train.py`` does."""
        return super().from_cfg(resolve_config(copy.deepcopy(cfg)))

    @property
    def cfg_text(self) -> str:
        """``self.cfg.pretty_text``, formatted once (yapf takes seconds on a large config;
        mmengine formats it again for every checkpoint)."""
        if self._cfg_text is None:
            self._cfg_text = self.cfg.pretty_text
        return self._cfg_text

    # ------------------------------------------------------------------ entry points
    # Within them, mmengine's own CheckpointLoader (init_cfg=dict(type='Pretrained', ...) of
    # the models, anything a hook loads) goes through the safe loader too.
    def train(self):
        with scoped_checkpoint_loader():
            return super().train()

    def val(self) -> dict:
        with scoped_checkpoint_loader():
            return super().val()

    def test(self) -> dict:
        with scoped_checkpoint_loader():
            return super().test()

    # ------------------------------------------------------------------ loading
    def load_checkpoint(self, filename: str, map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False, revise_keys: list = [(r'^module.', '')]):
        """Load the model weights of ``filename`` (path or URL) through the safe loader."""
        checkpoint = safe_load(filename, map_location, role='checkpoint')
        return self._load_loaded_checkpoint(checkpoint, filename, strict, revise_keys)

    def _load_loaded_checkpoint(self, checkpoint: dict, filename: str, strict: bool = False,
                                revise_keys: list = [(r'^module.', '')]) -> dict:
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict,
                                               revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def load_or_resume(self) -> None:
        """mmengine's, with auto-resume falling back to the newest intact checkpoint."""
        if self._has_loaded:
            return None
        if self._resume and self._load_from is None:
            found = load_latest_intact(self.work_dir, self._resume_map_location(),
                                       logger=self.logger)
            if found is None:
                self.logger.info('No checkpoint to resume from in the work dir: training '
                                 'from the start.')
            else:
                self.logger.info(f'Auto resumed from the latest checkpoint {found[0]}.')
                self._resume_loaded(found[1], found[0])
            self._has_loaded = True
        elif self._resume and self._load_from is not None:
            self.resume(self._load_from)
            self._has_loaded = True
        elif self._load_from is not None:
            self.load_checkpoint(self._load_from)
            self._has_loaded = True

    @staticmethod
    def _resume_map_location():
        return get_device()

    def resume(self, filename: str, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = 'default') -> None:
        """Resume from ``filename``: weights, optimizer, schedulers, iteration, message hub
        and random state. The stored config is never executed."""
        if map_location == 'default':
            map_location = self._resume_map_location()
        checkpoint = safe_load(filename, map_location, role='checkpoint to resume from')
        self._resume_loaded(checkpoint, filename, resume_optimizer, resume_param_scheduler)

    def _resume_loaded(self, checkpoint: dict, filename: str, resume_optimizer: bool = True,
                       resume_param_scheduler: bool = True) -> None:
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        if not isinstance(meta, dict) or 'iter' not in meta or 'epoch' not in meta:
            raise ValueError(f'checkpoint to resume from "{filename}" has no meta.iter / '
                             'meta.epoch: it is no training checkpoint (load_from loads '
                             'weights alone).')
        checkpoint = self._load_loaded_checkpoint(checkpoint, filename)
        self.train_loop._epoch = meta['epoch']
        self.train_loop._iter = meta['iter']

        # The config of this run is the one it was started with. mmengine would build a
        # Config from meta['config'] (executing it) to compare GPU counts; the text is data.
        stored = meta.get('cfg', meta.get('config'))
        if isinstance(stored, str) and stored != self.cfg_text:
            self.logger.info(f'The config stored in {filename} differs from this run\'s; this '
                             'run uses its own (the stored text is never executed).')

        resumed_seed = meta.get('seed', None)
        current_seed = self._randomness_cfg.get('seed')
        if resumed_seed is not None and resumed_seed != current_seed:
            if current_seed is not None:
                self.logger.warning(f'The value of random seed in the checkpoint '
                                    f'"{resumed_seed}" is different from the value in '
                                    f'`randomness` config "{current_seed}"')
            self._randomness_cfg.update(seed=resumed_seed)
            self.set_randomness(**self._randomness_cfg)

        resumed_dataset_meta = meta.get('dataset_meta', None)
        dataset_meta = getattr(self.train_dataloader.dataset, 'metainfo', None)
        if pickle.dumps(resumed_dataset_meta) != pickle.dumps(dataset_meta):
            self.logger.warning('The dataset metainfo from the resumed checkpoint is '
                                'different from the current training dataset, please check '
                                'the correctness of the checkpoint or the training dataset.')

        self.message_hub.load_state_dict(checkpoint['message_hub'])
        self._drop_foreign_checkpoint_paths(filename)

        if 'optimizer' in checkpoint and resume_optimizer:
            self.optim_wrapper = self.build_optim_wrapper(self.optim_wrapper)
            self.optim_wrapper.load_state_dict(checkpoint['optimizer'])

        if resume_param_scheduler and self.param_schedulers is None:
            self.logger.warning('`resume_param_scheduler` is True but '
                                '`self.param_schedulers` is None, so skip resuming parameter '
                                'schedulers')
            resume_param_scheduler = False
        if 'param_schedulers' in checkpoint and resume_param_scheduler:
            self.param_schedulers = self.build_param_scheduler(self.param_schedulers)
            if isinstance(self.param_schedulers, dict):
                for name, schedulers in self.param_schedulers.items():
                    for scheduler, ckpt_scheduler in zip(
                            schedulers, checkpoint['param_schedulers'][name]):
                        scheduler.load_state_dict(ckpt_scheduler)
            else:
                for scheduler, ckpt_scheduler in zip(self.param_schedulers,
                                                     checkpoint['param_schedulers']):
                    scheduler.load_state_dict(ckpt_scheduler)

        if 'rng_state' in checkpoint:
            self._pending_rng_state = checkpoint['rng_state']
        else:
            self.logger.warning(f'{filename} holds no random state (written by another runner '
                                'or an older mmstructkd): the resumed run continues from the '
                                'seed and does not match an uninterrupted run exactly.')
        self._has_loaded = True
        self.logger.info(f'resumed epoch: {self.epoch}, iter: {self.iter}')

    def _drop_foreign_checkpoint_paths(self, filename: str) -> None:
        """Drop the resumed message hub's best-checkpoint paths and kept steps that are not
        this run's, or point a best path to this run's copy of that file (a copied work dir)
        (:mod:`.resumed_paths`): ``CheckpointHook`` deletes by them."""
        # a hook whose before_train has run has a file_backend and its final out_dir
        folders = [self.work_dir] + [
            checkpoint_dir(self.work_dir, h.out_dir, resolved=hasattr(h, 'file_backend'))
            for h in self.hooks if isinstance(h, CheckpointHook)]
        info = self.message_hub.runtime_info
        for key, reason in unsafe_checkpoint_paths(info, folders):
            copy = own_copy(info[key], folders)  # None for kept steps and foreign names
            if copy is not None:  # a copied work dir: the copy of that best file is its own
                self.logger.info(f'{filename}: message hub entry {key} ({info[key]}) points '
                                 f'to another folder; this run\'s copy {copy} is used.')
                info[key] = copy
                continue
            info.pop(key)
            self.logger.warning(
                f'{filename}: message hub entry {key} dropped, {reason}. The checkpoint hook '
                'deletes by it (the previous best checkpoint on a new best score, old steps '
                'past max_keep_ckpts); it is left alone, and this run starts its own.')

    # ------------------------------------------------------------------ saving
    def save_checkpoint(self, out_dir: str, filename: str,
                        file_client_args: Optional[dict] = None, save_optimizer: bool = True,
                        save_param_scheduler: bool = True, meta: Optional[dict] = None,
                        by_epoch: bool = True, backend_args: Optional[dict] = None):
        """mmengine's ``save_checkpoint`` + every rank's random state, in plain data, written
        atomically. Call it on every rank (as mmengine's hooks do): the random states are
        gathered, then the main process writes."""
        rng_state = gather_rng_states(self.model)
        if not is_main_process():
            return
        if meta is None:
            meta = {}
        elif not isinstance(meta, dict):
            raise TypeError(f'meta should be a dict or None, but got {type(meta)}')
        if by_epoch:
            meta.setdefault('epoch', self.epoch + 1)
            meta.setdefault('iter', self.iter)
        else:
            meta.setdefault('epoch', self.epoch)
            meta.setdefault('iter', self.iter + 1)

        if file_client_args is not None:
            warnings.warn('"file_client_args" will be deprecated in future. Please use '
                          '"backend_args" instead', DeprecationWarning)
            if backend_args is not None:
                raise ValueError('"file_client_args" and "backend_args" cannot be set at the '
                                 'same time.')
            file_client = FileClient.infer_client(file_client_args, out_dir)
            filepath = file_client.join_path(out_dir, filename)
        else:
            filepath = join_path(out_dir, filename, backend_args=backend_args)

        meta.update(cfg=self.cfg_text, seed=self.seed,
                    experiment_name=self.experiment_name,
                    time=time.strftime('%Y%m%d_%H%M%S', time.localtime()),
                    mmengine_version=mmengine.__version__)
        if hasattr(self.train_dataloader.dataset, 'metainfo'):
            meta.update(dataset_meta=self.train_dataloader.dataset.metainfo)

        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = {
            'meta': meta,
            'state_dict': weights_to_cpu(model.state_dict()),
            'message_hub': apply_to(self.message_hub.state_dict(),
                                    lambda x: hasattr(x, 'cpu'), lambda x: x.cpu()),
            'rng_state': rng_state,
        }
        if save_optimizer:
            if isinstance(self.optim_wrapper, OptimWrapper):
                checkpoint['optimizer'] = apply_to(self.optim_wrapper.state_dict(),
                                                   lambda x: hasattr(x, 'cpu'),
                                                   lambda x: x.cpu())
            else:
                raise TypeError('self.optim_wrapper should be an `OptimWrapper` or '
                                f'`OptimWrapperDict` instance, but got {self.optim_wrapper}')
        if save_param_scheduler and self.param_schedulers is None:
            self.logger.warning('`save_param_scheduler` is True but `self.param_schedulers` '
                                'is None, so skip saving parameter schedulers')
            save_param_scheduler = False
        if save_param_scheduler:
            if isinstance(self.param_schedulers, dict):
                checkpoint['param_schedulers'] = {
                    name: [s.state_dict() for s in schedulers]
                    for name, schedulers in self.param_schedulers.items()}
            else:
                checkpoint['param_schedulers'] = [s.state_dict()
                                                  for s in self.param_schedulers]

        self.call_hook('before_save_checkpoint', checkpoint=checkpoint)
        checkpoint = encode_state(checkpoint)
        local = file_client_args is None and isinstance(
            get_file_backend(filepath, backend_args=backend_args), LocalBackend)
        if local:
            atomic_save(checkpoint, filepath)
        else:
            save_checkpoint(checkpoint, filepath, file_client_args=file_client_args,
                            backend_args=backend_args)


@RUNNERS.register_module()
class SafeRunner(SafeRunnerMixin, Runner):
    """mmengine's ``Runner`` with safe loads, crash-safe saves and an exact resume (see the
    module docstring)."""


_MIXED: Dict[type, type] = {}


def safe_runner_class(cls: type) -> type:
    """``cls`` (a ``Runner`` subclass) with :class:`SafeRunnerMixin`'s behaviour mixed in."""
    if issubclass(cls, SafeRunnerMixin):
        return cls
    if not (isinstance(cls, type) and issubclass(cls, Runner)):
        raise TypeError(f'runner_type {cls!r} is not a subclass of mmengine\'s Runner: '
                        'mmstructkd\'s tools load checkpoints only through SafeRunner\'s safe '
                        'loader, which needs Runner\'s loading methods.')
    if cls not in _MIXED:
        _MIXED[cls] = type(f'Safe{cls.__name__}', (SafeRunnerMixin, cls), {})
    return _MIXED[cls]


def build_safe_runner(cfg) -> Runner:
    """Build the config's runner (``runner_type`` or ``Runner``) as a safe runner."""
    cfg = copy.deepcopy(cfg)
    if 'runner_type' in cfg:
        with MMENGINE_RUNNERS.switch_scope_and_registry(cfg.get('default_scope')) as registry:
            cls = registry.get(cfg.runner_type)
        if cls is None:
            raise KeyError(f'runner_type {cfg.runner_type!r} is not registered')
        return safe_runner_class(cls).from_cfg(cfg)
    return SafeRunner.from_cfg(cfg)
