"""A spectral-normalised convolution with the power iteration of the structured-KD code."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _unit(x: Tensor, eps: float = 1e-12) -> Tensor:
    """``x / (||x|| + eps)``: the normalisation of the SAGAN spectral norm (not ``max(||x||,
    eps)`` as ``F.normalize``)."""
    return x / (x.norm() + eps)


class SpectralNormConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight is divided by its largest singular value (Miyato et al. 2018).

    The estimate follows the spectral norm that the structured-KD critic uses (SAGAN's): every
    forward call, in training and in evaluation alike, runs ``power_iterations`` steps
    ``v = W^T u / ||W^T u||``, then ``u = W v / ||W v||`` (``W`` the weight as a
    ``(out_channels, -1)`` matrix, no gradient), and divides by ``sigma = u^T W v`` with the
    gradient through ``W``. torch's ``spectral_norm`` updates ``u`` before ``v`` and only in
    training mode, which gives other values: a critic that is run three times per step (teacher
    map, student map, interpolation for the penalty) advances its estimate three times.

    ``u`` and ``v`` are buffers (saved in checkpoints, never trained), initialised from a
    standard normal and normalised.

    Args:
        *args: Arguments of ``nn.Conv2d``.
        power_iterations (int): Power-iteration steps per forward call. Defaults to 1.
        **kwargs: Keyword arguments of ``nn.Conv2d``.
    """

    def __init__(self, *args, power_iterations: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if power_iterations < 1:
            raise ValueError(f'SpectralNormConv2d: power_iterations must be >= 1, got '
                             f'{power_iterations}')
        self.power_iterations = power_iterations
        height = self.weight.shape[0]
        width = self.weight[0].numel()
        self.register_buffer('weight_u', _unit(torch.randn(height)))
        self.register_buffer('weight_v', _unit(torch.randn(width)))

    def normalised_weight(self) -> Tensor:
        """Advance the power iteration and return ``W / sigma``, shape of ``weight``."""
        matrix = self.weight.flatten(1)
        with torch.no_grad():
            u, v = self.weight_u, self.weight_v
            for _ in range(self.power_iterations):
                v = _unit(matrix.detach().t() @ u)
                u = _unit(matrix.detach() @ v)
            self.weight_u.copy_(u)
            self.weight_v.copy_(v)
        sigma = torch.dot(u, matrix @ v)
        return self.weight / sigma

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): shape (N, C_in, H, W). Returns: shape (N, C_out, H', W')."""
        return F.conv2d(x, self.normalised_weight(), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)
