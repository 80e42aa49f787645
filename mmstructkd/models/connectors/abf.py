"""Attention-based fusion (ABF), the building block of ReviewKD's review path."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmstructkd.registry import MODELS


@MODELS.register_module()
class ABF(BaseModule):
    """Fuses one student stage with the already-fused deeper stages (Chen et al., 2021, Fig. 4).

    ``x`` is brought to ``mid_channels`` by a 1x1 conv + norm. If ``fuse``, the fused deeper
    feature (``residual``, ``mid_channels`` wide, any size) is resized to ``x``'s size, the two
    are concatenated and a 1x1 conv with a sigmoid gives two spatial attention maps that weight
    them: ``x' = x * a0 + residual * a1``. If ``out_size`` is given and differs from ``x``'s
    size, ``x'`` is resized to it (the teacher's size, as the official CIFAR-100 code does
    before its 3x3 conv). A 3x3 conv + norm maps ``x'`` to ``out_channels`` (the teacher's
    width) for the loss, and ``x'`` itself (at that size) goes on to the next, shallower stage.

    Args:
        in_channels (int): Channels of the student stage.
        mid_channels (int): Width of the fusion (and of the residual passed on).
        out_channels (int): Channels of the teacher stage it is compared with.
        fuse (bool): Whether a deeper residual is fused in (False for the deepest stage).
        norm_cfg (dict): Norm after both convs. Defaults to ``dict(type='BN')``.
        upsample_mode (str): How the residual, and the fused feature to ``out_size``, are
            resized. Defaults to ``'nearest'`` (the official code, for both).
        channels_last (bool): Compute in the channels-last memory format (same values; the
            outputs are channels-last tensors). The wide, high-resolution maps of the review
            path make it memory-bound, and channels-last convs, resizing and pointwise ops are
            faster there (a one-off CPU profile of the ResNet-18 review path, width 512,
            16 x 224 x 224: 3.4 -> 2.3 s per forward + backward). Defaults to True.
        init_cfg (dict, optional): Initialisation config. Defaults to None: the official
            code's initialisation, see :meth:`init_weights`.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, fuse: bool,
                 norm_cfg: dict = dict(type='BN'), upsample_mode: str = 'nearest',
                 channels_last: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.mid_channels = mid_channels
        self.upsample_mode = upsample_mode
        self.channels_last = channels_last
        self.reduce = ConvModule(in_channels, mid_channels, 1, bias=False, norm_cfg=norm_cfg,
                                 act_cfg=None)
        self.project = ConvModule(mid_channels, out_channels, 3, padding=1, bias=False,
                                  norm_cfg=norm_cfg, act_cfg=None)
        self.attention = nn.Conv2d(2 * mid_channels, 2, 1) if fuse else None
        if init_cfg is None:
            self._official_init()

    def init_weights(self) -> None:
        """Initialise as the official code does, unless ``init_cfg`` is given.

        The official ABF initialises its two convs with ``nn.init.kaiming_uniform_(w, a=1)``
        (fan-in, gain 1: uniform in +-sqrt(3 / fan_in)) and leaves the norms (1, 0) and the
        attention conv (weight and bias) at PyTorch's defaults. It is redone here because
        ``ConvModule.init_weights``, which the default recursion would run, replaces the convs
        with Kaiming-normal fan-out init.
        """
        if self.init_cfg is not None:
            super().init_weights()
            return
        self._official_init()
        self._is_init = True

    def _official_init(self) -> None:
        for module in (self.reduce, self.project):
            nn.init.kaiming_uniform_(module.conv.weight, a=1)
            if hasattr(module.norm, 'reset_parameters'):
                module.norm.reset_parameters()
        if self.attention is not None:
            self.attention.reset_parameters()

    @property
    def fuse(self) -> bool:
        return self.attention is not None

    def forward(self, x: Tensor, residual: Optional[Tensor] = None,
                out_size: Optional[Sequence[int]] = None) -> Tuple[Tensor, Tensor]:
        """Fuse one stage.

        Args:
            x (Tensor): Student stage, shape (N, in_channels, H, W).
            residual (Tensor, optional): Fused deeper stages, shape (N, mid_channels, H', W');
                required if and only if ``fuse``. Resized to (H, W) before the fusion.
            out_size (Sequence[int], optional): (H_out, W_out) of both outputs, usually the
                teacher stage's size; the fused feature is resized to it before the 3x3 conv.
                Defaults to None: (H, W).

        Returns:
            tuple[Tensor, Tensor]: The output for the loss, shape (N, out_channels, H_out,
            W_out), and the fused feature for the next stage, shape (N, mid_channels, H_out,
            W_out).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'ABF expects a student stage of shape (N, {self.in_channels}, H, '
                             f'W), got {tuple(x.shape)}; set in_channels to match the recorded '
                             'stage.')
        if out_size is not None:
            out_size = tuple(int(s) for s in out_size)
            if len(out_size) != 2 or min(out_size) < 1:
                raise ValueError(f'ABF: out_size must be (H, W) with positive sizes, got '
                                 f'{out_size}; pass the teacher stage\'s shape[-2:].')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.reduce(x)
        if self.fuse:
            if residual is None:
                raise ValueError('ABF(fuse=True) needs the fused deeper stage (residual).')
            x = self._fuse(x, residual)
        elif residual is not None:
            raise ValueError('ABF(fuse=False) got a residual: only the deepest stage has no '
                             'fusion.')
        if out_size is not None and out_size != tuple(x.shape[-2:]):
            # The official code resizes the fused feature, not the 3x3 conv's output: the conv
            # runs at the teacher's resolution, and the next stage's residual comes from here.
            x = F.interpolate(x, size=out_size, mode=self.upsample_mode)
        return self.project(x), x

    def _fuse(self, x: Tensor, residual: Tensor) -> Tensor:
        """``x * a0 + up(residual) * a1`` with ``a = sigmoid(conv1x1(cat[x, up(residual)]))``.

        Computed without the concatenation: the 1x1 conv is split into its ``x`` half and its
        ``residual`` half, and the residual half runs on the smaller of the residual and its
        resized copy (a bias-free 1x1 conv commutes with nearest and bilinear resizing), so
        only 2 channels of logits are resized besides the residual itself. Same values as the
        concatenating form (up to float rounding), same parameters. In a one-off CPU profile
        (2 threads, 16x512x56x56) forward and backward of the fusion took 0.52 s this way in
        channels_last against 1.2 s in the concatenating NCHW form, where ``F.interpolate``
        alone took 0.34 s.
        """
        mid = self.mid_channels
        if residual.dim() != 4 or residual.shape[1] != mid:
            raise ValueError(f'ABF expects a residual of shape (N, {mid}, H\', W\'), got '
                             f'{tuple(residual.shape)}: it must be the fused feature of the '
                             'ABF of the next deeper stage (same mid_channels).')
        weight, bias = self.attention.weight, self.attention.bias
        size = tuple(x.shape[-2:])
        logits = F.conv2d(x, weight[:, :mid], bias)  # (N, 2, H, W)
        if tuple(residual.shape[-2:]) != size and \
                residual.shape[-2] * residual.shape[-1] > size[0] * size[1]:
            # A residual larger than this stage (brought to a larger teacher map by the deeper
            # ABF): resizing it first makes the conv cheaper.
            residual = F.interpolate(residual, size=size, mode=self.upsample_mode)
        logits_r = F.conv2d(residual, weight[:, mid:])  # (N, 2, H', W')
        if tuple(residual.shape[-2:]) != size:
            residual = F.interpolate(residual, size=size, mode=self.upsample_mode)
            logits_r = F.interpolate(logits_r, size=size, mode=self.upsample_mode)
        attention = torch.sigmoid(logits + logits_r)
        return x * attention[:, 0:1] + residual * attention[:, 1:2]
