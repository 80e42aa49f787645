"""The random-number state of a training process, for checkpoints that resume exactly.

One process's state: Python's ``random``, numpy's global generator, torch's CPU generator,
every CUDA device's generator (when CUDA is in use) and the generators of the model's own
modules: any module with ``rng_state_dict()`` and ``load_rng_state_dict(state)`` (e.g. the
adversarial distiller's gradient-penalty generator), keyed by module name. Everything is kept
as tensors and plain Python values, which ``torch.load(weights_only=True)`` reads without any
allow-list.
"""
import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn


def _unwrap(model: Optional[nn.Module]) -> Optional[nn.Module]:
    return model.module if model is not None and is_model_wrapper(model) else model


def modules_with_rng(model: Optional[nn.Module]) -> Dict[str, nn.Module]:
    """Name -> module, for the modules of the (unwrapped) model that keep their own generator
    (they have ``rng_state_dict`` and ``load_rng_state_dict``)."""
    model = _unwrap(model)
    if model is None:
        return {}
    return {name: m for name, m in model.named_modules()
            if callable(getattr(m, 'rng_state_dict', None))
            and callable(getattr(m, 'load_rng_state_dict', None))}


def _cuda_in_use() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def capture_global_rng_state() -> Dict[str, Any]:
    """Python, numpy, torch CPU and CUDA generator states of this process."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    if np_state['bit_generator'] != 'MT19937':
        raise TypeError(f"numpy's global generator is {np_state['bit_generator']}; only "
                        'MT19937 (numpy.random.seed) is saved.')
    return dict(
        python=dict(version=version, state=torch.tensor(internal, dtype=torch.int64),
                    gauss=gauss),
        numpy=dict(key=torch.from_numpy(np_state['state']['key'].astype(np.int64)),
                   pos=int(np_state['state']['pos']), has_gauss=int(np_state['has_gauss']),
                   gauss=float(np_state['gauss'])),
        torch=torch.get_rng_state(),
        cuda=list(torch.cuda.get_rng_state_all()) if _cuda_in_use() else [])


def restore_global_rng_state(state: Dict[str, Any]) -> None:
    """Undo :func:`capture_global_rng_state`."""
    py = state['python']
    random.setstate((int(py['version']), tuple(int(x) for x in py['state'].tolist()),
                     py['gauss']))
    nps = state['numpy']
    np.random.set_state(('MT19937', nps['key'].cpu().numpy().astype(np.uint32),
                         int(nps['pos']), int(nps['has_gauss']), float(nps['gauss'])))
    torch.set_rng_state(state['torch'].cpu())
    cuda = state.get('cuda') or []
    if cuda and torch.cuda.is_available():
        if len(cuda) != torch.cuda.device_count():
            print_log(f'the checkpoint holds {len(cuda)} CUDA generator states, this process '
                      f'sees {torch.cuda.device_count()} devices: CUDA generators not '
                      'restored.', logger='current', level=30)
        else:
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return type(obj)((k, _to_cpu(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def capture_rng_state(model: Optional[nn.Module]) -> Dict[str, Any]:
    """The whole state of this process: global generators + the model's modules' own."""
    state = capture_global_rng_state()
    state['modules'] = {name: _to_cpu(m.rng_state_dict())
                        for name, m in modules_with_rng(model).items()}
    return state


def restore_rng_state(state: Dict[str, Any], model: Optional[nn.Module]) -> None:
    """Undo :func:`capture_rng_state` (module states by module name)."""
    restore_global_rng_state(state)
    saved = state.get('modules', {})
    modules = modules_with_rng(model)
    for name, module in modules.items():
        if name in saved:
            module.load_rng_state_dict(_to_cpu(saved[name]))
        else:
            print_log(f'the checkpoint holds no generator state for module "{name or "model"}"'
                      f' ({type(module).__name__}): it keeps its fresh state, and the resumed '
                      'run draws other numbers than the uninterrupted one would.',
                      logger='current', level=30)
    extra = sorted(set(saved) - set(modules))
    if extra:
        print_log(f'the checkpoint holds generator states for modules {extra} that this model '
                  'does not have; ignored.', logger='current', level=30)


def gather_rng_states(model: Optional[nn.Module]) -> Dict[str, Any]:
    """Every rank's :func:`capture_rng_state` (a collective in a distributed run: call it on
    every rank). Returns ``dict(world_size=W, ranks=[state of rank 0, ...])``."""
    from mmengine.dist import all_gather_object, get_world_size
    state = capture_rng_state(model)
    world_size = get_world_size()
    states: List[Any] = all_gather_object(state) if world_size > 1 else [state]
    return dict(world_size=world_size, ranks=[_to_cpu(s) for s in states])


def restore_rank_rng_state(saved: Dict[str, Any], model: Optional[nn.Module]) -> bool:
    """Restore this rank's state from :func:`gather_rng_states`' result. Returns False (with
    a warning) when the checkpoint comes from another number of processes."""
    from mmengine.dist import get_rank, get_world_size
    world_size = get_world_size()
    if saved.get('world_size') != world_size or len(saved.get('ranks', [])) != world_size:
        print_log(f'the checkpoint holds the random state of {saved.get("world_size")} '
                  f'processes, this run has {world_size}: random state not restored (the '
                  'resumed run cannot match the uninterrupted one exactly).',
                  logger='current', level=30)
        return False
    restore_rng_state(saved['ranks'][get_rank()], model)
    return True
