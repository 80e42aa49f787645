"""Helpers shared by the distillation losses."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_to(student: Tensor, teacher: Tensor, loss_name: str,
              mode: str = 'bilinear') -> Tuple[Tensor, Tensor]:
    """Bring ``student`` to ``teacher``'s spatial size so that they can be compared.

    Args:
        student (Tensor): shape (N, C_s, *spatial_s).
        teacher (Tensor): shape (N, C_t, *spatial_t), same number of dims as ``student``.
        loss_name (str): Name of the calling loss, for error messages.
        mode (str): Interpolation mode for 2-D maps (``'bilinear'`` or ``'nearest'``).

    Returns:
        tuple[Tensor, Tensor]: ``student`` resized to shape (N, C_s, *spatial_t), and ``teacher``.
    """
    if student.dim() != teacher.dim():
        raise ValueError(f'{loss_name}: student {tuple(student.shape)} and teacher '
                         f'{tuple(teacher.shape)} have different numbers of dimensions; '
                         'record tensors of the same kind (e.g. both (N, C, H, W)).')
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(f'{loss_name}: batch sizes differ (student {student.shape[0]}, '
                         f'teacher {teacher.shape[0]}); teacher and student must see the same '
                         'batch.')
    if student.shape[2:] == teacher.shape[2:]:
        return student, teacher
    if student.dim() != 4:
        raise ValueError(f'{loss_name}: cannot align student {tuple(student.shape)} to teacher '
                         f'{tuple(teacher.shape)}: only (N, C, H, W) maps are resized.')
    align = dict(align_corners=False) if mode != 'nearest' else {}
    return F.interpolate(student, size=teacher.shape[2:], mode=mode, **align), teacher


def check_same_channels(student: Tensor, teacher: Tensor, loss_name: str) -> None:
    """Raise a clear error when channel counts differ and a connector is needed."""
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f'{loss_name}: student has {student.shape[1]} channels, teacher '
            f'{teacher.shape[1]}. Add a connector to the student mapping, e.g. '
            f'connectors=dict(adapter=dict(type="ConvConnector", '
            f'in_channels={student.shape[1]}, out_channels={teacher.shape[1]})) and '
            'connector="adapter" in its loss_forward_mappings entry.')


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Reduce an element-wise loss by ``'mean'``, ``'sum'`` or ``'none'``."""
    if reduction == 'mean':
        return loss.mean()
    if reduction == 'sum':
        return loss.sum()
    if reduction == 'none':
        return loss
    raise ValueError(f'reduction must be "mean", "sum" or "none", got {reduction!r}')


def check_reduction(reduction: str, allowed=('mean', 'sum', 'none')) -> str:
    if reduction not in allowed:
        raise ValueError(f'reduction must be one of {allowed}, got {reduction!r}')
    return reduction


def as_float(x: Tensor) -> Tensor:
    """Distillation losses are computed in fp32, also under AMP."""
    return x.float() if x.is_floating_point() else x


def kl_per_position(preds_S: Tensor, preds_T: Tensor, tau: float,
                    activation: str = 'softmax', divergence: str = 'kl') -> Tensor:
    """KL(teacher || student) of class distributions at every position.

    With ``divergence='ce'`` the cross-entropy ``-sum p_t log p_s`` instead: the KL plus the
    teacher's entropy, which has no gradient, so the same gradient and another value.

    Args:
        preds_S (Tensor): Student logits, shape (N, C, *spatial).
        preds_T (Tensor): Teacher logits, same shape (no gradient flows into them).
        tau (float): Temperature applied to both.
        activation (str): ``'softmax'`` over C, or ``'sigmoid'``: the per-class binary KL
            summed over C (for sigmoid classification heads).
        divergence (str): ``'kl'`` or ``'ce'`` (cross-entropy with the teacher's soft labels).

    Returns:
        Tensor: shape (N, *spatial).
    """
    if divergence not in ('kl', 'ce'):
        raise ValueError(f'divergence must be "kl" or "ce", got {divergence!r}')
    # The teacher's log-probabilities enter the KL only (the cross-entropy drops them).
    with_teacher_log = 1.0 if divergence == 'kl' else 0.0
    s, t = preds_S / tau, preds_T.detach() / tau
    if activation == 'softmax':
        log_p_t = F.log_softmax(t, dim=1)
        log_ratio = with_teacher_log * log_p_t - F.log_softmax(s, dim=1)
        return (log_p_t.exp() * log_ratio).sum(dim=1)
    if activation != 'sigmoid':
        raise ValueError(f'activation must be "softmax" or "sigmoid", got {activation!r}')
    p_t = torch.sigmoid(t)
    # p log(p/q) + (1-p) log((1-p)/(1-q)) with log-sigmoids (log(1 - sigmoid(x)) =
    # logsigmoid(-x)) for stability at large logits.
    kl = p_t * (with_teacher_log * F.logsigmoid(t) - F.logsigmoid(s)) + \
        (1 - p_t) * (with_teacher_log * F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.sum(dim=1)
