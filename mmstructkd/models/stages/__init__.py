from .base_stage import DistillStage, StepInputs
from .cls2det_stage import Cls2DetStage, module_probe
from .label_stages import SegLabels, STKDMixRecord, stack_seg_labels

__all__ = ['DistillStage', 'StepInputs', 'Cls2DetStage', 'module_probe', 'SegLabels',
           'STKDMixRecord', 'stack_seg_labels']
