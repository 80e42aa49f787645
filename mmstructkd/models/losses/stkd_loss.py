"""Similarity transfer KD (STKD, Zhao et al., arXiv 2103.10047): KD on mixup virtual samples."""
from typing import Dict, Union

from torch import Tensor, nn

from mmstructkd.registry import MODELS
from .utils import as_float, kl_per_position


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` (N,) where ``mask`` (N,) is True; 0 (still in the graph) if none is."""
    mask = mask.to(values.device, values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


@MODELS.register_module()
class STKDLoss(nn.Module):
    """KL(teacher || student) of softened class distributions on STKD's virtual samples.

    The batch must come from the ``STKDMixup`` batch augment of the student's data preprocessor:
    teacher and student logits are then both computed on the same virtual (mixed) images; the
    distiller's ``STKDMixRecord`` stage gives which samples are virtual
    (``virtual=dict(from_stage=<its name>, output='virtual')``). Per sample
    ``kl_i = tau^2 * KL(softmax(t_i / tau) || softmax(s_i / tau))`` and

    ``loss = virtual_weight * mean_{i virtual} kl_i  [+ clean_weight * mean_{i clean} kl_i]``.

    The mixed-label task loss ``lam * CE(y_i) + (1 - lam) * CE(y_perm(i))`` is the student's own
    ``CrossEntropyLoss`` on the mixed ``gt_score`` (``calculate_student_loss=True``), weighted by
    its ``loss_weight``.

    Args:
        tau (float): Temperature T of both distributions. Defaults to 4.0.
        virtual_weight (float): Weight of the KD term on virtual samples. Defaults to 1.0.
        clean_weight (float): Weight of the KD term on the clean samples that
            ``STKDMixup(clean_ratio>0)`` keeps. With 0 (default) the loss is one tensor; otherwise
            a dict ``{'virtual': ..., 'clean': ...}`` (logged as ``distill.<name>.virtual`` and
            ``.clean``).
    """

    #: Where the distiller's mappings find the arguments that are no recorded tensors.
    ARG_SOURCES = dict(virtual="the STKDMixRecord stage: distill_stages=dict(mix=dict("
                       "type='STKDMixRecord')) and virtual=dict(from_stage='mix', "
                       "output='virtual')")

    def __init__(self, tau: float = 4.0, virtual_weight: float = 1.0,
                 clean_weight: float = 0.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'STKDLoss: tau must be positive, got {tau}')
        self.tau = tau
        self.virtual_weight = virtual_weight
        self.clean_weight = clean_weight

    def forward(self, preds_S: Tensor, preds_T: Tensor,
                virtual: Tensor) -> Union[Tensor, Dict[str, Tensor]]:
        """Compute the loss.

        Args:
            preds_S (Tensor): Student logits on the mixed batch, shape (N, C).
            preds_T (Tensor): Teacher logits on the same batch, shape (N, C).
            virtual (Tensor): shape (N,), bool: which samples of the batch are mixed.

        Returns:
            Tensor | dict[str, Tensor]: The virtual term (a scalar), or both terms.
        """
        preds_S, preds_T = as_float(preds_S), as_float(preds_T)
        if preds_S.dim() != 2 or preds_S.shape != preds_T.shape or \
                preds_S.shape[0] != len(virtual):
            raise ValueError(f'STKDLoss: expected student and teacher logits of shape (N, C) '
                             f'with N={len(virtual)} (the mixed batch), got student '
                             f'{tuple(preds_S.shape)}, teacher {tuple(preds_T.shape)}')
        kl = kl_per_position(preds_S, preds_T, self.tau) * self.tau**2  # (N,)
        virtual = virtual.bool()
        loss = self.virtual_weight * _masked_mean(kl, virtual)
        if self.clean_weight == 0:
            return loss
        return dict(virtual=loss, clean=self.clean_weight * _masked_mean(kl, ~virtual))
