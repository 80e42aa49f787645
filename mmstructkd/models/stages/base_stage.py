"""The base of distiller stages: work of a distillation step that needs a model.

A loss is a function of tensors. What needs a model to compute (the detector's positives from
its own assigner, the teacher's features of box crops) or the batch's data samples (their
labels, the mixing record) is a stage: the distiller runs its stages after the student's
forward, in the order of ``distill_stages``, and each returns named records that
``loss_forward_mappings`` read with ``dict(from_stage=<stage>, output=<record name>)``.
"""
from typing import Any, Dict, NamedTuple, Optional, Tuple

from torch import Tensor, nn


class StepInputs(NamedTuple):
    """What a stage may use besides its mapped records.

    Attributes:
        inputs (Tensor): The preprocessed batch, shape (N, C, H, W), student normalisation.
        data_samples (list, optional): The batch's data samples.
        student (nn.Module): The student.
        teacher (TeacherProvider): The frozen teacher, reached through its provider
            (``teacher_inputs``: the batch in its normalisation; ``probe``: outputs of its
            layers on images of one's own, in the configured teacher runtime).
    """
    inputs: Tensor
    data_samples: Optional[list]
    student: nn.Module
    teacher: Any


class DistillStage(nn.Module):
    """A stage: ``forward(step, **mapped)`` returns ``{record name: value}``.

    Subclasses list the names they return in :attr:`OUTPUTS` (mappings are checked against it
    when the distiller is built) and take their other inputs as keyword arguments mapped by
    ``stage_forward_mappings`` (recorded tensors, or an earlier stage's records).
    """

    #: The record names :meth:`forward` returns.
    OUTPUTS: Tuple[str, ...] = ()

    def forward(self, step: StepInputs, **mapped: Any) -> Dict[str, Any]:
        """Return ``{record name: value}`` for the names in :attr:`OUTPUTS`."""
        raise NotImplementedError(f'{type(self).__name__} is a DistillStage without its own '
                                  'forward(step, **mapped): a stage subclass defines it.')
