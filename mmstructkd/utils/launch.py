"""What tools/train.py and tools/test.py share: options, config loading, launcher set-up.

The launcher set-up also makes ``tools/dist_train.sh`` work on machines without CUDA.
"""
import argparse
import os
import os.path as osp

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmstructkd.engine.runner import build_safe_runner
from .config_loading import load_config


def prepare_launch(cfg: Config) -> None:
    """On a CPU-only machine, set up a gloo process group and DDP without device ids.

    mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device`` and wraps the model with
    ``device_ids=[LOCAL_RANK]``, both of which fail without CUDA. With CUDA this does nothing.

    Args:
        cfg (Config): The full config; ``cfg.launcher`` is the job launcher.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if not dist.is_initialized():
        # Runner.setup_env skips init_dist when a process group already exists.
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The options tools/train.py and tools/test.py share (as in mmdet's tools)."""
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and metrics')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value (e.g. train_cfg.max_iters=100)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_cli_config(args: argparse.Namespace) -> Config:
    """Load ``args.config`` and apply the common options (work dir: CLI > config > default).

    The config is loaded by :func:`mmstructkd.utils.config_loading.load_config`: a missing
    ``_base_`` names the config that inherits it, and the top-level variables the config (or
    ``--cfg-options``) sets reach the places its bases derived from them (``data_root``,
    ``metainfo``, ``num_classes``, ``teacher_ckpt``, ``max_iters``, ...; docs/own_data.md).
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Prepare the launcher (see :func:`prepare_launch`) and build the configured runner as a
    :class:`mmstructkd.engine.SafeRunner` (``runner_type``, if set, with SafeRunner's loading,
    saving and resume mixed in): every checkpoint it reads goes through the safe loader."""
    prepare_launch(cfg)
    return build_safe_runner(cfg)


def finish_launch() -> None:
    """Destroy the process group of a distributed run before the interpreter exits.

    Left to interpreter shutdown, the gloo/NCCL group's threads can be torn down in the wrong
    order ("terminate called without an active exception", exit code -6): a finished run then
    reports failure to ``dist_train.sh`` and to whatever scripts wait on it.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no rank leaves while another still uses the group
        dist.destroy_process_group()
