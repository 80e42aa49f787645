from .checkpoint import (allow_mmengine_checkpoint_globals, extract_student_state_dict,
                         load_teacher_checkpoint)
from .config_utils import build_model_from_spec, model_cfg_from_spec, resolve_config_path

__all__ = [
    'allow_mmengine_checkpoint_globals', 'load_teacher_checkpoint',
    'extract_student_state_dict', 'build_model_from_spec', 'model_cfg_from_spec',
    'resolve_config_path'
]
