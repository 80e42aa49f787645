"""Hierarchical context loss (HCL) of ReviewKD."""
from typing import List, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from mmstructkd.registry import MODELS
from .utils import as_float, check_same_channels, resize_to


@MODELS.register_module()
class HCLLoss(nn.Module):
    """MSE at full resolution plus MSE of pyramid-pooled maps, summed over stages.

    "Distilling Knowledge via Knowledge Review" (Chen et al., CVPR 2021), Sec. 3.3: for each
    stage pair, ``MSE(s, t)`` at full resolution gets weight 1 and the MSE after adaptive
    average pooling to ``k x k`` (for each ``k`` of ``pool_sizes``) gets half the weight of the
    level before it (1/2, 1/4, ...); the weighted sum is divided by the sum of the weights used.
    The stage losses are summed. As in the paper's code, a pooling level is skipped when ``k``
    is not smaller than the map's height (pooling would not summarise anything).

    A student map of another size is resized (bilinear) to the teacher's; a (N, C) feature is
    a 1x1 map. Channel counts must match: map the student with ``ReviewKDConnector`` first.

    Args:
        pool_sizes (Sequence[int]): Output sizes of the pooled levels, finest first. Defaults
            to (4, 2, 1).
        skip_large_pools (bool): Skip levels with ``k >= H`` (paper's code). Defaults to True.
        loss_weight (float): Weight of the summed loss. Defaults to 1.0.
    """

    def __init__(self, pool_sizes: Sequence[int] = (4, 2, 1), skip_large_pools: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if any(int(k) < 1 for k in pool_sizes):
            raise ValueError(f'HCLLoss: pool_sizes must be positive, got {list(pool_sizes)}')
        self.pool_sizes = [int(k) for k in pool_sizes]
        self.skip_large_pools = skip_large_pools
        self.loss_weight = loss_weight

    def stage_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        """HCL of one stage pair, both of shape (N, C, H, W)."""
        loss = F.mse_loss(student, teacher)
        weight, total = 1.0, 1.0
        for k in self.pool_sizes:
            if self.skip_large_pools and k >= student.shape[2]:
                continue
            weight /= 2.0
            loss = loss + weight * F.mse_loss(F.adaptive_avg_pool2d(student, k),
                                              F.adaptive_avg_pool2d(teacher, k))
            total += weight
        return loss / total

    def forward(self, preds_S: Sequence[Tensor], preds_T: Sequence[Tensor]) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Sequence[Tensor]): Student stages (after the connector), each of shape
                (N, C_i, H_i, W_i) or (N, C_i).
            preds_T (Sequence[Tensor]): Teacher stages, same order, shape (N, C_i, H'_i, W'_i)
                or (N, C_i).

        Returns:
            Tensor: The weighted sum over stages (a scalar).
        """
        preds_S, preds_T = _as_list(preds_S), _as_list(preds_T)
        if len(preds_S) != len(preds_T):
            raise ValueError(f'HCLLoss: {len(preds_S)} student stages but {len(preds_T)} '
                             'teacher stages; map the same number of stages from both.')
        total = 0.0
        for i, (s, t) in enumerate(zip(preds_S, preds_T)):
            s, t = (as_float(x[:, :, None, None] if x.dim() == 2 else x) for x in (s, t))
            s, t = resize_to(s, t, f'HCLLoss (stage {i})')
            check_same_channels(s, t, f'HCLLoss (stage {i})')
            total = total + self.stage_loss(s, t.detach())
        return self.loss_weight * total


def _as_list(feats) -> List[Tensor]:
    return [feats] if isinstance(feats, Tensor) else list(feats)
