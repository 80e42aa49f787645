"""Launcher settings that make ``tools/dist_train.sh`` work on machines without CUDA."""
import torch
import torch.distributed as dist
from mmengine.config import Config


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
