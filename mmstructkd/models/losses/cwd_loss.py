"""Channel-wise distillation (Shu et al., ICCV 2021, arXiv 2011.13256)."""
import torch.nn.functional as F
from torch import Tensor, nn

from mmstructkd.registry import MODELS
from .utils import as_float, check_same_channels, resize_to


@MODELS.register_module()
class ChannelWiseDivergence(nn.Module):
    """KL divergence of per-channel spatial distributions, teacher to student.

    Each channel c of a map (N, C, H, W) becomes a distribution over its H*W positions,
    ``phi(y_c) = softmax(y_c / tau)`` over positions; the loss is

    ``loss_weight * tau^2 / (N * C) * sum_{n, c} KL(phi(y^T_{n,c}) || phi(y^S_{n,c}))``

    (the KL summed over positions, averaged over channels and images): the CWD paper's Eq. 3-4
    and mmrazor's ``ChannelWiseDivergence``. It applies to logits (score maps) and to features;
    for features of another width put a connector (e.g. ``ConvConnector``) on the student side.
    A student map of another size is resized (bilinear) to the teacher's.

    The CWD paper's Cityscapes settings: logits, tau = 4, loss_weight = 3; mmrazor's PSPNet
    config: tau = 1, loss_weight = 3.

    Args:
        tau (float): Temperature. Defaults to 1.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'ChannelWiseDivergence: tau must be positive, got {tau}')
        self.tau = tau
        self.loss_weight = loss_weight

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor): Student map, shape (N, C, H, W).
            preds_T (Tensor): Teacher map, shape (N, C, H', W') (no gradient flows into it).

        Returns:
            Tensor: The weighted scalar loss.
        """
        if preds_S.dim() != 4:
            raise ValueError(f'ChannelWiseDivergence expects (N, C, H, W) maps, got student '
                             f'{tuple(preds_S.shape)}')
        preds_S, preds_T = resize_to(as_float(preds_S), as_float(preds_T),
                                     'ChannelWiseDivergence')
        check_same_channels(preds_S, preds_T, 'ChannelWiseDivergence')
        n, c = preds_T.shape[:2]
        log_p_s = F.log_softmax(preds_S.flatten(2) / self.tau, dim=2)  # (N, C, HW)
        log_p_t = F.log_softmax(preds_T.detach().flatten(2) / self.tau, dim=2)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
        return self.loss_weight * self.tau**2 * kl / (n * c)

    def extra_repr(self) -> str:
        return f'tau={self.tau}, loss_weight={self.loss_weight}'
