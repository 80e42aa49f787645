"""The record of one STKD mixing, carried by the data samples from the preprocessor to the loss.

mmpretrain's ``ClsDataPreprocessor`` hands a batch augment only ``(inputs, one-hot scores)`` and
afterwards scatters the returned scores to its data samples with
``for sample, score in zip(data_samples, batch_score): sample.set_gt_score(score)``. A batch
augment never sees the data samples, so it cannot set fields on them. What it can do is return
scores whose rows, when that loop iterates them, carry the record as an attribute: every data
sample's ``gt_score`` (the mixed label the task loss uses) then holds ``gt_score.stkd_mix``, a
:class:`SampleMix` naming lam, the sample's mixing partner and the whole batch's permutation.
No other code path changes: the rows are plain tensors and every operation on the transient
batch tensor returns plain tensors.
"""
from dataclasses import dataclass
from typing import Iterator, List, NamedTuple, Optional, Sequence

import torch
from torch import Tensor

#: Attribute of a data sample's ``gt_score`` that holds its :class:`SampleMix`.
MIX_ATTR = 'stkd_mix'
#: How to fix a batch that carries no record (every error that means "not mixed by STKD").
ADD_AUGMENT_HINT = (
    "add dict(type='STKDMixup', alpha=1.0) to the student's data_preprocessor.batch_augments, "
    "e.g. data_preprocessor=dict(..., batch_augments=dict(augments=[dict(type='STKDMixup')])), "
    'as its only entry and without probs (RandomBatchAugment applies one entry per batch, '
    'and none at all with the remaining probability)')


@dataclass(frozen=True)
class MixRecord:
    """One mixing of a batch of N samples by ``STKDMixup``.

    Sample i of the mixed batch is ``lam * x_i + (1 - lam) * x_perm[i]`` where ``virtual[i]``,
    and the clean ``x_i`` otherwise; its label is mixed likewise.

    Attributes:
        lam (float): The mixing ratio, drawn from Beta(alpha, alpha) once per batch.
        perm (Tensor): shape (N,), long: the partner of every sample.
        virtual (Tensor): shape (N,), bool: which samples are mixed (virtual).
    """

    lam: float
    perm: Tensor
    virtual: Tensor

    def __len__(self) -> int:
        return self.perm.numel()


class SampleMix(NamedTuple):
    """What one data sample records: its index in the mixed batch and the batch's record."""

    index: int
    record: MixRecord

    @property
    def lam(self) -> float:
        """The weight of this sample's own image in it (1.0 for a clean sample)."""
        return self.record.lam if self.virtual else 1.0

    @property
    def partner(self) -> int:
        """Index of the sample it was mixed with (itself for a clean sample)."""
        return int(self.record.perm[self.index]) if self.virtual else self.index

    @property
    def virtual(self) -> bool:
        return bool(self.record.virtual[self.index])


class _ScoresWithRecord(Tensor):
    """Mixed scores whose rows, when iterated, carry the record (see the module docstring).

    Torch functions are disabled on this subclass: any operation on it returns a plain tensor,
    so nothing but the preprocessor's scatter loop ever sees the subclass.
    """

    __torch_function__ = torch._C._disabled_torch_function_impl
    _record: MixRecord

    def __iter__(self) -> Iterator[Tensor]:
        for index, row in enumerate(self.as_subclass(Tensor).unbind(0)):
            setattr(row, MIX_ATTR, SampleMix(index, self._record))
            yield row


def attach_record(scores: Tensor, record: MixRecord) -> Tensor:
    """Return ``scores`` (shape (N, C)) whose rows, as the preprocessor scatters them, carry
    ``record``."""
    if scores.shape[0] != len(record):
        raise ValueError(f'{len(record)} mixed samples but scores of shape {tuple(scores.shape)}')
    out = scores.as_subclass(_ScoresWithRecord)
    out._record = record
    return out


def is_hard_label(scores: Tensor) -> bool:
    """Whether every score is exactly 0 or 1 (one-hot, not mixed or smoothed)."""
    return bool(((scores == 0) | (scores == 1)).all())


def get_mix_record(data_samples: Optional[Sequence], who: str) -> MixRecord:
    """Return the record of the mixing that produced this batch, or raise an error naming the fix.

    Args:
        data_samples (list[DataSample]): The batch's data samples, in batch order, as the data
            preprocessor returned them.
        who (str): The caller, for error messages.

    Returns:
        MixRecord: The record shared by all data samples (they must be the whole mixed batch).
    """
    if not data_samples:
        raise ValueError(f'{who} needs the data samples of the batch (got {data_samples!r}); '
                         'it reads the STKD mixing record from them.')
    scores = [sample.get('gt_score', None) if hasattr(sample, 'get') else None
              for sample in data_samples]
    mixes: List[SampleMix] = [getattr(score, MIX_ATTR, None) for score in scores]
    if any(mix is None for mix in mixes):
        # A whole batch is checked: a mixed pair of the same class keeps a one-hot label.
        if any(score is not None and not is_hard_label(score) for score in scores):
            raise RuntimeError(
                f'{who}: this batch was mixed, but not by STKDMixup (its gt_score is soft '
                'and carries no STKD record): another batch augment (e.g. mmpretrain Mixup '
                'or CutMix) is configured beside STKDMixup. STKDMixup mixes the batch '
                'itself, so remove the others: ' + ADD_AUGMENT_HINT + '.')
        raise RuntimeError(
            f'{who}: the data samples carry no STKD mixing record (gt_score.{MIX_ATTR}), so '
            'this batch was not mixed by STKDMixup: ' + ADD_AUGMENT_HINT + '.')
    record = mixes[0].record
    if len(record) != len(mixes) or any(
            m.record is not record or m.index != i for i, m in enumerate(mixes)):
        raise RuntimeError(
            f'{who}: the data samples are not the mixed batch in its order ({len(mixes)} '
            f'samples, mixed batch of {len(record)}); pass the data samples the data '
            'preprocessor returned, unsliced and unreordered.')
    return record
