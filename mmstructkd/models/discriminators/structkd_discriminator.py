"""The holistic-distillation discriminator of structured KD (Liu et al., TPAMI 2020, Sec. 3.1).

A Wasserstein critic that tells teacher score maps ("real") from student ones ("fake"),
conditioned on the image: fully convolutional, spectral-normalised convolutions, two
self-attention blocks (SAGAN, Zhang et al. 2019), as in the paper.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from mmstructkd.registry import MODELS


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``x + gamma * attention(x)``, gamma starting at 0.

    Args:
        channels (int): Input and output channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): shape (N, C, H, W). Returns: the same shape."""
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (N, HW, C')
        k = self.key(x).flatten(2)  # (N, C', HW)
        attn = torch.softmax(q @ k, dim=-1)  # (N, HW, HW): position i attends to j
        v = self.value(x).flatten(2)  # (N, C, HW)
        out = (v @ attn.transpose(1, 2)).view(n, c, h, w)
        return x + self.gamma * out


@MODELS.register_module()
class StructKDDiscriminator(nn.Module):
    """Conditional WGAN critic on (score map [+ image]) pairs.

    Four spectral-normalised 4x4 stride-2 convolutions (widths ``base_channels`` x 1, 2, 4, 8,
    LeakyReLU 0.1), self-attention after the third and the fourth, a final 3x3 convolution to
    one channel, averaged over positions into one score per image. Inputs smaller than
    ``min_size`` are upsampled first so that any score map (odd or small sizes too) can be
    judged.

    Args:
        num_classes (int): Channels of the score map.
        with_image (bool): Concatenate the (resized) input image with the score map, as in the
            paper; False judges the score map alone. Defaults to True.
        image_channels (int): Channels of the image. Defaults to 3.
        base_channels (int): Width of the first convolution (the paper's code uses 64).
        input_transform (str): What the critic sees of the logits: ``'softmax'`` (class
            probabilities), ``'none'`` or ``'tanh'``. Defaults to ``'softmax'``.
        min_size (int): Smallest spatial size fed to the convolutions. Defaults to 16.
    """

    def __init__(self, num_classes: int, with_image: bool = True, image_channels: int = 3,
                 base_channels: int = 64, input_transform: str = 'softmax',
                 min_size: int = 16) -> None:
        super().__init__()
        if input_transform not in ('softmax', 'none', 'tanh'):
            raise ValueError('StructKDDiscriminator: input_transform must be "softmax", "none" '
                             f'or "tanh", got {input_transform!r}')
        self.num_classes = num_classes
        self.with_image = with_image
        self.input_transform = input_transform
        self.min_size = min_size
        in_channels = num_classes + (image_channels if with_image else 0)
        widths = [base_channels * m for m in (1, 2, 4, 8)]
        layers = []
        for i, width in enumerate(widths):
            layers.append(spectral_norm(nn.Conv2d(in_channels, width, 4, 2, 1)))
            layers.append(nn.LeakyReLU(0.1))
            if i >= 2:
                layers.append(SelfAttention(width))
            in_channels = width
        self.body = nn.Sequential(*layers)
        self.last = nn.Conv2d(in_channels, 1, 3, 1, 1)

    def build_input(self, logits: Tensor, image: Optional[Tensor] = None) -> Tensor:
        """The critic's input: transformed score map (N, C, H, W) [+ image resized to H, W]."""
        if logits.shape[1] != self.num_classes:
            raise ValueError(f'StructKDDiscriminator: score map has {logits.shape[1]} channels, '
                             f'num_classes is {self.num_classes}.')
        if self.input_transform == 'softmax':
            x = logits.softmax(dim=1)
        elif self.input_transform == 'tanh':
            x = torch.tanh(logits)
        else:
            x = logits
        if self.with_image:
            if image is None:
                raise ValueError('StructKDDiscriminator(with_image=True) needs the image.')
            image = F.interpolate(image, size=x.shape[-2:], mode='bilinear',
                                  align_corners=False)
            x = torch.cat([x, image.to(x.dtype)], dim=1)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Score a batch of critic inputs from :meth:`build_input`.

        Args:
            x (Tensor): shape (N, C_in, H, W).

        Returns:
            Tensor: shape (N,), higher for inputs that look like the teacher's.
        """
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            scale = self.min_size / min(h, w)
            x = F.interpolate(x, size=(max(round(h * scale), self.min_size),
                                       max(round(w * scale), self.min_size)),
                              mode='bilinear', align_corners=False)
        return self.last(self.body(x)).mean(dim=(1, 2, 3))


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al., 2017): E[(||grad_x D(x_hat)||_2 - 1)^2].

    ``x_hat`` is a random per-sample interpolation of ``real`` and ``fake`` (both detached).

    Args:
        critic (nn.Module): Maps (N, C, H, W) to (N,).
        real (Tensor): Critic inputs from the teacher, shape (N, C, H, W).
        fake (Tensor): Critic inputs from the student, same shape.

    Returns:
        Tensor: The scalar penalty (with a graph to the critic's parameters).
    """
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    grads, = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return (grads.flatten(1).norm(dim=1) - 1).pow(2).mean()
