"""Feed the teacher the normalisation it was trained with.

The distiller preprocesses each batch once, with the student's data preprocessor. A teacher
trained with another mean/std or channel order (say an RGB teacher for a BGR student) would
silently get wrongly normalised images; this module converts the student's batch instead.
"""
from typing import Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor, nn


def normalisation_of(preprocessor: nn.Module) -> Optional[Tuple[Tensor, Tensor, bool]]:
    """``(mean, std, swaps_channels)`` of an OpenMMLab image preprocessor, or None if unknown.

    mmengine/mmdet call the channel swap ``_channel_conversion``, mmseg ``channel_conversion``
    and mmpretrain ``to_rgb``.
    """
    for attr in ('_channel_conversion', 'channel_conversion', 'to_rgb'):
        if hasattr(preprocessor, attr):
            swaps = bool(getattr(preprocessor, attr))
            break
    else:
        return None
    if not hasattr(preprocessor, '_enable_normalize'):
        return None
    if preprocessor._enable_normalize:
        return preprocessor.mean.flatten().float(), preprocessor.std.flatten().float(), swaps
    return torch.zeros(1), torch.ones(1), swaps


class TeacherInputAdapter(nn.Module):
    """Maps the student-normalised batch to the teacher's normalisation (identity if equal).

    Args:
        student_preprocessor (nn.Module): The preprocessor that produced the batch.
        teacher_preprocessor (nn.Module, optional): The teacher's own preprocessor.
    """

    def __init__(self, student_preprocessor: nn.Module,
                 teacher_preprocessor: Optional[nn.Module]) -> None:
        super().__init__()
        self.identity = True
        student = normalisation_of(student_preprocessor)
        teacher = normalisation_of(teacher_preprocessor) if teacher_preprocessor else None
        if student is None or teacher is None:
            print_log('Teacher and student normalisation could not be compared '
                      f'({type(student_preprocessor).__name__} / '
                      f'{type(teacher_preprocessor).__name__}); the teacher gets the '
                      "student's preprocessed batch unchanged.", logger='current', level=30)
            return
        (s_mean, s_std, s_swap), (t_mean, t_std, t_swap) = student, teacher
        self.flip = s_swap != t_swap
        same = (not self.flip and s_mean.shape == t_mean.shape
                and torch.allclose(s_mean, t_mean) and torch.allclose(s_std, t_std))
        if same:
            return
        self.identity = False
        # Non-persistent: derived from the two configs, not part of any checkpoint.
        for name, value in (('s_mean', s_mean), ('s_std', s_std), ('t_mean', t_mean),
                            ('t_std', t_std)):
            self.register_buffer(name, value.view(1, -1, 1, 1), persistent=False)
        print_log(
            f'The teacher was trained with another input normalisation (mean {t_mean.tolist()}, '
            f'std {t_std.tolist()}, channel swap {t_swap}) than the student (mean '
            f'{s_mean.tolist()}, std {s_std.tolist()}, channel swap {s_swap}): the batch is '
            'converted for the teacher.', logger='current')

    def forward(self, inputs: Tensor) -> Tensor:
        """Args: inputs (Tensor): shape (N, C, H, W), student-normalised."""
        if self.identity:
            return inputs
        raw = inputs * self.s_std + self.s_mean
        if self.flip:
            raw = raw.flip(1)
        return (raw - self.t_mean) / self.t_std
