"""A DDP wrapper that lets a distiller with its own ``train_step`` keep DDP's gradient sync."""
from typing import Dict, Union

from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor

from mmstructkd.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class DistillerDDP(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that hands multi-optimizer steps to the distiller.

    mmengine's DDP ``train_step`` assumes one optimizer. With an ``OptimWrapperDict`` (e.g.
    the adversarial distiller's generator + discriminator) this wrapper calls
    ``module.train_step(data, optim_wrapper, forward=self)``: the module decides the steps and
    runs every forward through this wrapper, so gradients are all-reduced as usual. Each step
    leaves some parameters without gradient (the frozen critic in the student's step, the
    student in the critic's), hence ``find_unused_parameters=True`` in its config.
    """

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> Dict[str, Tensor]:
        if isinstance(optim_wrapper, OptimWrapperDict):
            return self.module.train_step(data, optim_wrapper, forward=self)
        return super().train_step(data, optim_wrapper)
