"""Feature regression between student and teacher maps (FitNets-style hints)."""
from torch import Tensor, nn

from mmstructkd.registry import MODELS
from .utils import as_float, check_reduction, check_same_channels, reduce_loss, resize_to


@MODELS.register_module()
class FeatureMSELoss(nn.Module):
    """Mean squared error between a student feature and a teacher feature.

    A student map of another spatial size is resized (bilinear) to the teacher's; differing
    channel counts need a connector (the error says which one to add).

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'``. Defaults to ``'mean'``.
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction)

    def forward(self, s_feature: Tensor, t_feature: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            s_feature (Tensor): Student feature, shape (N, C, H, W) or (N, C).
            t_feature (Tensor): Teacher feature, shape (N, C, H', W') or (N, C).

        Returns:
            Tensor: The weighted loss.
        """
        s_feature, t_feature = resize_to(
            as_float(s_feature), as_float(t_feature), 'FeatureMSELoss')
        check_same_channels(s_feature, t_feature, 'FeatureMSELoss')
        loss = (s_feature - t_feature.detach()).pow(2)
        return self.loss_weight * reduce_loss(loss, self.reduction)
