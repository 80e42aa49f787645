from .distill_loss_weight_hook import DistillLossWeightHook, StopDistillationHook
from .schedule_check_hook import ScheduleCheckHook, schedule_problems
from .student_checkpoint_hook import StudentCheckpointHook

__all__ = ['DistillLossWeightHook', 'StopDistillationHook', 'StudentCheckpointHook',
           'ScheduleCheckHook', 'schedule_problems']
