from .checkpoint import (atomic_save, extract_student_state_dict, load_latest_intact,
                         load_model_checkpoint, load_teacher_checkpoint)
from .config_utils import build_model_from_spec, model_cfg_from_spec, resolve_config_path
from .safe_load import (CheckpointError, CorruptCheckpointError, UnsafeCheckpointError,
                        safe_load)

__all__ = [
    'safe_load', 'CheckpointError', 'UnsafeCheckpointError', 'CorruptCheckpointError',
    'load_teacher_checkpoint', 'load_model_checkpoint', 'load_latest_intact', 'atomic_save',
    'extract_student_state_dict', 'build_model_from_spec', 'model_cfg_from_spec',
    'resolve_config_path'
]
