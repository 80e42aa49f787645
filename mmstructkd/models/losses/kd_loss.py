"""Logit knowledge distillation (Hinton et al., 2015)."""
from torch import Tensor, nn

from mmstructkd.registry import MODELS
from .utils import as_float, check_reduction, check_same_channels, kl_per_position, resize_to


@MODELS.register_module()
class KDLoss(nn.Module):
    """KL divergence between temperature-softened teacher and student class distributions.

    ``loss = loss_weight * tau^2 * KL(softmax(t / tau) || softmax(s / tau))``, where the KL sums
    over classes (dim 1). ``reduction='batchmean'`` averages over every position that has a class
    distribution: the N samples of (N, C) logits, or the N*H*W pixels of (N, C, H, W) score maps
    (a student map of another size is resized to the teacher's). The tau^2 factor keeps the
    gradient scale independent of tau.

    Args:
        tau (float): Temperature. Defaults to 1.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        reduction (str): ``'batchmean'`` (see above), ``'sum'`` or ``'none'`` (per position,
            shape (N, *spatial)). Defaults to ``'batchmean'``.
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0,
                 reduction: str = 'batchmean') -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'KDLoss: tau must be positive, got {tau}')
        self.tau = tau
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction, ('batchmean', 'sum', 'none'))

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor): Student logits, shape (N, C) or (N, C, H, W).
            preds_T (Tensor): Teacher logits, shape (N, C) or (N, C, H', W').

        Returns:
            Tensor: The weighted loss (a scalar unless ``reduction='none'``).
        """
        preds_S, preds_T = resize_to(as_float(preds_S), as_float(preds_T), 'KDLoss')
        check_same_channels(preds_S, preds_T, 'KDLoss')
        kl = kl_per_position(preds_S, preds_T, self.tau)  # (N, *spatial)
        if self.reduction == 'batchmean':
            kl = kl.mean()
        elif self.reduction == 'sum':
            kl = kl.sum()
        return self.loss_weight * self.tau**2 * kl
