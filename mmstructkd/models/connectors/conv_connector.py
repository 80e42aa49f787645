"""Convolutional adapter between student and teacher feature widths."""
from typing import Optional

from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmstructkd.registry import MODELS


@MODELS.register_module()
class ConvConnector(BaseModule):
    """Conv (+ optional norm and activation) mapping a student map to the teacher's width.

    Args:
        in_channels (int): Channels of the recorded student tensor.
        out_channels (int): Channels of the teacher tensor it is compared with.
        kernel_size (int): Defaults to 1 (a 1x1 adapter, as in FitNets-style hints).
        norm_cfg (dict, optional): e.g. ``dict(type='BN')``. Defaults to None.
        act_cfg (dict, optional): e.g. ``dict(type='ReLU')``. Defaults to None.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv = ConvModule(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2,
            norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): shape (N, in_channels, H, W). Returns: shape (N, out, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'ConvConnector expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}; '
                f'set in_channels={x.shape[1] if x.dim() > 1 else "?"} to match the recorded '
                'tensor.')
        return self.conv(x)
