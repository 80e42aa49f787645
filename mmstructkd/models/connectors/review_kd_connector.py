"""ReviewKD's review path: student stages fused deepest first by ABF modules."""
from typing import List, Optional, Sequence

from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from mmstructkd.registry import MODELS
from .abf import ABF


@MODELS.register_module()
class ReviewKDConnector(BaseModule):
    """Maps the student's stage features to the teacher's, each informed by the deeper ones.

    "Distilling Knowledge via Knowledge Review" (Chen et al., CVPR 2021): the deepest student
    stage goes through an :class:`ABF` without fusion; every shallower stage is fused with the
    result of the stage below it, so stage ``i``'s output has reviewed stages ``i..n-1``. Each
    output is compared with the teacher's stage ``i`` (``HCLLoss``). Only the student and these
    modules train.

    Stage features are given shallow to deep, as backbones and FPNs return them. A 2-D feature
    (N, C) (e.g. the pooled embedding, which the paper adds as the last "stage") is treated as
    a 1x1 map.

    Args:
        in_channels (Sequence[int]): Channels of each student stage, shallow to deep.
        out_channels (Sequence[int]): Channels of each teacher stage, same order.
        mid_channels (int): Width of the fusion, shared by all stages because each stage mixes
            in the fused feature of the stage below it. Defaults to 256 (512 for ImageNet
            ResNets and 256 for FPN levels in the paper's code).
        norm_cfg (dict): Norm of the ABF convs. Defaults to ``dict(type='BN')``.
        upsample_mode (str): How a deeper residual is resized. Defaults to ``'nearest'``.
        channels_last (bool): Run the ABFs in channels-last memory (same values, faster; see
            :class:`ABF`). Defaults to True.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int],
                 mid_channels: int = 256,
                 norm_cfg: dict = dict(type='BN'), upsample_mode: str = 'nearest',
                 channels_last: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if len(in_channels) != len(out_channels) or not in_channels:
            raise ValueError(f'ReviewKDConnector: in_channels {list(in_channels)} and '
                             f'out_channels {list(out_channels)} must list the same (non-zero) '
                             'number of stages, student and teacher paired stage by stage.')
        num_stages = len(in_channels)
        self.abfs = ModuleList([
            ABF(c_in, mid_channels, c_out, fuse=i < num_stages - 1, norm_cfg=norm_cfg,
                upsample_mode=upsample_mode, channels_last=channels_last)
            for i, (c_in, c_out) in enumerate(zip(in_channels, out_channels))])

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Review the stages, deepest first.

        Args:
            feats (Sequence[Tensor]): Student stages, shallow to deep, each of shape
                (N, in_channels[i], H_i, W_i) or (N, in_channels[i]).

        Returns:
            list[Tensor]: One per stage, same order, shape (N, out_channels[i], H_i, W_i).
        """
        if isinstance(feats, Tensor) or len(feats) != len(self.abfs):
            got = 'one tensor' if isinstance(feats, Tensor) else f'{len(feats)} tensors'
            raise ValueError(f'ReviewKDConnector expects {len(self.abfs)} student stages (a '
                             f'list of recorders or a tuple output such as a neck), got {got}.')
        feats = [f[:, :, None, None] if f.dim() == 2 else f for f in feats]
        outputs: List[Optional[Tensor]] = [None] * len(feats)
        residual = None
        for i in reversed(range(len(feats))):
            outputs[i], residual = self.abfs[i](feats[i], residual)
        return outputs
