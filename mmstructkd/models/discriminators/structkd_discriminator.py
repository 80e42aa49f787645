"""The holistic-distillation discriminator of structured KD (Liu et al., TPAMI 2020, Sec. 3.1).

A Wasserstein critic that tells teacher score maps ("real") from student ones ("fake"):
fully convolutional, spectral-normalised convolutions, two self-attention blocks (SAGAN, Zhang
et al. 2019), as in the paper and its official code.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmstructkd.registry import MODELS
from .spectral_norm_conv import SpectralNormConv2d


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
    """WGAN critic of holistic distillation on score maps (optionally with the image).

    Four spectral-normalised (:class:`SpectralNormConv2d`) 4x4 stride-2 convolutions (widths
    ``base_channels`` x 1, 2, 4, 8, LeakyReLU 0.1), self-attention after the third and the
    fourth, then a last convolution to one channel without spectral norm. It returns a map of
    scores, shape (N, 1, h, w): the critic losses average it, the gradient penalty
    differentiates its sum (see :func:`gradient_penalty`).

    The official code's last layer is a 4x4 convolution without padding (``last_layer=
    'conv4x4'``): the convolutions then need maps of at least 64 pixels a side (its PSPNet maps
    are 65x65), so a smaller map is upsampled (bilinear) to ``min_size`` first; ``'conv3x3'``
    (padded) is the form of earlier mmstructkd versions.

    Input: the official code normalises the raw logits with a BatchNorm
    (``input_transform='batchnorm'``, with ``with_image=False``). In training mode that
    normalises the teacher's and the student's batches each with its own statistics, and the
    score of one sample depends on the others, which breaks the per-sample gradient penalty
    of WGAN-GP; the shipped configs therefore feed class probabilities
    (``input_transform='softmax'``), a documented difference.

    Args:
        num_classes (int): Channels of the score map. :class:`AdversarialDistiller` fills it in
            from the teacher's recorded map when the config leaves it out (or None), so the
            critic follows the class count of the dataset.
        with_image (bool): Concatenate the (resized) input image with the score map (the
            paper's conditional critic); False judges the score map alone, as the official
            code. Defaults to True.
        image_channels (int): Channels of the image. Defaults to 3.
        base_channels (int): Width of the first convolution (the official code uses 64).
        input_transform (str): What the critic sees of the logits: ``'softmax'`` (class
            probabilities), ``'batchnorm'`` (official), ``'none'`` or ``'tanh'``. Defaults
            to ``'softmax'``.
        last_layer (str): ``'conv4x4'`` (official: 4x4, no padding) or ``'conv3x3'``
            (padded). Defaults to ``'conv4x4'``.
        min_size (int, optional): Smallest spatial size fed to the convolutions; smaller maps
            are upsampled. Defaults to None: 64 with ``'conv4x4'``, 16 with ``'conv3x3'``.
    """

    def __init__(self, num_classes: Optional[int] = None, with_image: bool = True,
                 image_channels: int = 3, base_channels: int = 64,
                 input_transform: str = 'softmax', last_layer: str = 'conv4x4',
                 min_size: Optional[int] = None) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f'StructKDDiscriminator: num_classes (channels of the score map) must be a '
                f'positive int, got {num_classes!r}. Built by AdversarialDistiller, the critic '
                'takes it from the teacher\'s recorded map when it is left out; built on its '
                'own, give it.')
        if input_transform not in ('softmax', 'batchnorm', 'none', 'tanh'):
            raise ValueError('StructKDDiscriminator: input_transform must be "softmax", '
                             f'"batchnorm", "none" or "tanh", got {input_transform!r}')
        if last_layer not in ('conv4x4', 'conv3x3'):
            raise ValueError('StructKDDiscriminator: last_layer must be "conv4x4" (official) or '
                             f'"conv3x3", got {last_layer!r}')
        self.num_classes = num_classes
        self.with_image = with_image
        self.input_transform = input_transform
        self.min_size = min_size if min_size is not None else (
            64 if last_layer == 'conv4x4' else 16)
        self.input_norm = nn.BatchNorm2d(num_classes) if input_transform == 'batchnorm' \
            else None
        in_channels = num_classes + (image_channels if with_image else 0)
        widths = [base_channels * m for m in (1, 2, 4, 8)]
        layers = []
        for i, width in enumerate(widths):
            layers.append(SpectralNormConv2d(in_channels, width, 4, 2, 1))
            layers.append(nn.LeakyReLU(0.1))
            if i >= 2:
                layers.append(SelfAttention(width))
            in_channels = width
        self.body = nn.Sequential(*layers)
        self.last = nn.Conv2d(in_channels, 1, 4) if last_layer == 'conv4x4' else \
            nn.Conv2d(in_channels, 1, 3, 1, 1)

    def build_input(self, logits: Tensor, image: Optional[Tensor] = None) -> Tensor:
        """The critic's input: score map (N, C, H, W) [+ image resized to H, W].

        The parameter-free transforms (softmax, tanh) are applied here, so the gradient
        penalty interpolates and differentiates in the space the critic compares (class
        probabilities). The official BatchNorm is part of the critic and runs in
        :meth:`forward`, as in the official code, whose penalty differentiates through it.
        """
        if logits.shape[1] != self.num_classes:
            raise ValueError(f'StructKDDiscriminator: score map has {logits.shape[1]} channels, '
                             f'num_classes is {self.num_classes}.')
        if self.input_transform == 'softmax':
            x = logits.softmax(dim=1)
        elif self.input_transform == 'tanh':
            x = torch.tanh(logits)
        else:
            x = logits
        if not self.with_image:
            return x
        if image is None:
            raise ValueError('StructKDDiscriminator(with_image=True) needs the image.')
        image = F.interpolate(image, size=x.shape[-2:], mode='bilinear', align_corners=False)
        return torch.cat([x, image.to(x.dtype)], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """Score a batch of critic inputs from :meth:`build_input`.

        Args:
            x (Tensor): shape (N, C_in, H, W).

        Returns:
            Tensor: Scores, shape (N, 1, h, w), higher where the input looks like the
            teacher's.
        """
        if self.input_norm is not None:
            scores = self.input_norm(x[:, :self.num_classes])
            x = torch.cat([scores, x[:, self.num_classes:]], dim=1) if self.with_image \
                else scores
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            scale = self.min_size / min(h, w)
            x = F.interpolate(x, size=(max(round(h * scale), self.min_size),
                                       max(round(w * scale), self.min_size)),
                              mode='bilinear', align_corners=False)
        return self.last(self.body(x))


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor,
                     generator: Optional[torch.Generator] = None,
                     score: str = 'sum') -> Tensor:
    """WGAN-GP penalty (Gulrajani et al., 2017): E[(||grad_x D(x_hat)||_2 - 1)^2].

    ``x_hat = alpha * real + (1 - alpha) * fake`` with one ``alpha ~ U(0, 1)`` per sample (both
    inputs detached); the norm is taken per sample over all of its elements.

    Args:
        critic (nn.Module): Maps (N, C, H, W) to scores (N, ...) (e.g. a score map).
        real (Tensor): Critic inputs from the teacher, shape (N, C, H, W).
        fake (Tensor): Critic inputs from the student, same shape.
        generator (torch.Generator, optional): CPU generator that draws ``alpha`` (the
            distiller's own, saved in checkpoints); None uses torch's global one.
        score (str): What is differentiated: ``'sum'`` of the critic's outputs over positions
            (the official code) or their ``'mean'`` per sample (one score per image, the WGAN-GP
            critic of the paper). For a critic with P output positions ``'sum'`` gives P times
            the gradient. Defaults to ``'sum'``.

    Returns:
        Tensor: The scalar penalty (with a graph to the critic's parameters).
    """
    if score not in ('sum', 'mean'):
        raise ValueError(f'gradient_penalty: score must be "sum" or "mean", got {score!r}')
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator)
    alpha = alpha.to(device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    scores = scores.reshape(scores.shape[0], -1)  # (N, positions); a critic of (N,) too
    total = scores.sum() if score == 'sum' else scores.mean(dim=1).sum()
    grads, = torch.autograd.grad(total, x_hat, create_graph=True)
    return (grads.flatten(1).norm(dim=1) - 1).pow(2).mean()
