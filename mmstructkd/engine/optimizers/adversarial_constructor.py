"""Optimizer wrappers for adversarial distillation: the critic apart from everything else."""
from typing import Optional

from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn

from mmstructkd.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class AdversarialOptimWrapperConstructor:
    """Builds ``OptimWrapperDict(generator=..., discriminator=...)`` for an adversarial distiller.

    ``generator`` optimises every trainable parameter except the critic's (the student and the
    connectors; the frozen teacher has none), ``discriminator`` the critic's. Each sub-config
    is an ordinary ``optim_wrapper`` config and may have its own ``paramwise_cfg``; parameter
    names keep the distiller's prefixes (``student.backbone...``), so the stock configs'
    ``custom_keys`` such as ``'backbone'`` still match.

    Args:
        optim_wrapper_cfg (dict): ``dict(generator=dict(...), discriminator=dict(...))``.
        paramwise_cfg (dict, optional): Must be None: give it inside each sub-config.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if set(optim_wrapper_cfg) != {'generator', 'discriminator'}:
            raise ValueError(
                'AdversarialOptimWrapperConstructor needs optim_wrapper=dict(constructor=..., '
                'generator=dict(type="OptimWrapper", optimizer=...), discriminator=dict(...)); '
                f'got keys {sorted(optim_wrapper_cfg)}')
        if paramwise_cfg is not None:
            raise ValueError('AdversarialOptimWrapperConstructor: put paramwise_cfg inside '
                             'the generator / discriminator configs.')
        self.optim_wrapper_cfg = optim_wrapper_cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = model.module if is_model_wrapper(model) else model
        critic = getattr(model, 'discriminator', None)
        if not isinstance(critic, nn.Module):
            raise TypeError(f'{type(model).__name__} has no discriminator: '
                            'AdversarialOptimWrapperConstructor is for AdversarialDistiller.')
        # A view of the distiller without the critic: same submodules, same parameter names.
        generator = nn.Module()
        for name, child in model.named_children():
            params = list(child.parameters())
            frozen = params and not any(p.requires_grad for p in params)  # the teacher
            if child is not critic and not frozen:
                generator.add_module(name, child)
        wrappers = {}
        for key, module in (('generator', generator), ('discriminator', critic)):
            cfg = dict(self.optim_wrapper_cfg[key])
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[key] = DefaultOptimWrapperConstructor(cfg, paramwise)(module)
        return OptimWrapperDict(**wrappers)
