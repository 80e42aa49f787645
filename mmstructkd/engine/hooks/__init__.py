from .distill_loss_weight_hook import DistillLossWeightHook, StopDistillationHook
from .student_checkpoint_hook import StudentCheckpointHook

__all__ = ['DistillLossWeightHook', 'StopDistillationHook', 'StudentCheckpointHook']
