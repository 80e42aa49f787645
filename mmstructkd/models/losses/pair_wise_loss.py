"""Pair-wise distillation of structured KD (Liu et al., TPAMI 2020, Sec. 3.1)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from mmstructkd.registry import MODELS
from .utils import as_float, resize_to


@MODELS.register_module()
class PairWiseLoss(nn.Module):
    """Squared difference of the student's and the teacher's node affinity graphs.

    The feature map is pooled into nodes, each summarising a ``node_size x node_size`` patch
    (the paper's beta; average pooling as in the paper), or patches given as a fraction of the
    map: ``node_scale=0.5`` pools with the kernel ``(int(0.5 H), int(0.5 W))``, stride = kernel,
    ``ceil_mode=True``, as the official code's ``pool_scale`` (a 2x2 grid of nodes on even
    sizes; an odd side gives a third, narrower node). The affinity of nodes i, j is their
    cosine similarity ``f_i . f_j / ((||f_i|| + 1e-8) (||f_j|| + 1e-8))``; with the global
    connection range every pair is connected.

    ``loss = loss_weight * mean_{n, i, j} (a^s_ij - a^t_ij)^2`` (the official code's
    ``sum / (M^2 N)`` for M nodes).

    The official recipe: ``node_scale=0.5, pool='max', detach_norm=True, loss_weight=0.5`` on
    the PSP module's output. The paper's reading: ``node_size=2, pool='avg'`` (beta = 2x2
    patches), norms with gradient, ``loss_weight=1``.

    Affinities are (nodes x nodes) whatever the channel counts, so student and teacher may
    differ in width. A student map of another spatial size is resized to the teacher's first,
    so that the nodes cover the same image regions.

    Args:
        loss_weight (float): lambda_pa (the paper uses 1). Defaults to 1.0.
        node_size (int, optional): beta, the patch size of a node in feature-map pixels.
        node_scale (float, optional): Node size as a fraction of the map (0 < s <= 1). Exactly
            one of ``node_size`` / ``node_scale`` is given. Defaults: ``node_size=2``.
        pool (str): ``'avg'`` (the paper) or ``'max'`` (official code). Defaults to ``'avg'``.
        detach_norm (bool): Divide by feature norms without gradient through them, as the
            official code does. Defaults to False (the paper's plain cosine similarity).
    """

    def __init__(self, loss_weight: float = 1.0, node_size: Optional[int] = None,
                 node_scale: Optional[float] = None, pool: str = 'avg',
                 detach_norm: bool = False) -> None:
        super().__init__()
        if node_size is not None and node_scale is not None:
            raise ValueError('PairWiseLoss: give node_size or node_scale, not both')
        if node_size is None and node_scale is None:
            node_size = 2
        if node_size is not None and node_size < 1:
            raise ValueError(f'PairWiseLoss: node_size must be >= 1, got {node_size}')
        if node_scale is not None and not 0 < node_scale <= 1:
            raise ValueError(f'PairWiseLoss: node_scale must be in (0, 1], got {node_scale}')
        if pool not in ('avg', 'max'):
            raise ValueError(f'PairWiseLoss: pool must be "avg" or "max", got {pool!r}')
        self.loss_weight = loss_weight
        self.node_size = node_size
        self.node_scale = node_scale
        self.pool = pool
        self.detach_norm = detach_norm

    def nodes(self, feat: Tensor) -> Tensor:
        """Pool a feature map (N, C, H, W) into nodes (N, C, h, w)."""
        h, w = feat.shape[-2:]
        if self.node_size is not None:
            kernel = (min(self.node_size, h), min(self.node_size, w))
        else:
            kernel = (max(int(h * self.node_scale), 1), max(int(w * self.node_scale), 1))
        # ceil_mode: a border patch smaller than the node still becomes a node.
        if self.pool == 'avg':
            return F.avg_pool2d(feat, kernel, kernel, ceil_mode=True, count_include_pad=False)
        return F.max_pool2d(feat, kernel, kernel, ceil_mode=True)

    def affinity(self, feat: Tensor) -> Tensor:
        """Cosine similarity of every pair of nodes: (N, C, h, w) -> (N, h*w, h*w)."""
        flat = feat.flatten(2)  # (N, C, n)
        norm = flat.norm(dim=1, keepdim=True)
        if self.detach_norm:
            norm = norm.detach()
        flat = flat / (norm + 1e-8)
        return flat.transpose(1, 2) @ flat

    def forward(self, s_feature: Tensor, t_feature: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            s_feature (Tensor): Student feature, shape (N, C_s, H, W).
            t_feature (Tensor): Teacher feature, shape (N, C_t, H', W').

        Returns:
            Tensor: The weighted scalar loss.
        """
        if s_feature.dim() != 4:
            raise ValueError(f'PairWiseLoss expects (N, C, H, W) maps, got student '
                             f'{tuple(s_feature.shape)}')
        s_feature, t_feature = resize_to(as_float(s_feature), as_float(t_feature), 'PairWiseLoss')
        s_nodes, t_nodes = self.nodes(s_feature), self.nodes(t_feature.detach())
        if s_nodes.shape[-2:].numel() < 2:
            raise ValueError(
                f'PairWiseLoss: a {t_feature.shape[-2]}x{t_feature.shape[-1]} map pooled with '
                f'{self.extra_repr().split(", pool")[0]} gives a graph of one node, whose '
                'affinity is always 1: the loss would be 0 with no gradient. Use a smaller '
                'node_size / node_scale, or record a larger feature map.')
        a_s = self.affinity(s_nodes)
        a_t = self.affinity(t_nodes)
        return self.loss_weight * (a_s - a_t).pow(2).mean()

    def extra_repr(self) -> str:
        size = f'node_size={self.node_size}' if self.node_size is not None \
            else f'node_scale={self.node_scale}'
        return f'{size}, pool={self.pool}, loss_weight={self.loss_weight}'
