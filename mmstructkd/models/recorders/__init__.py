from .base_recorder import BaseRecorder, get_submodule_or_raise
from .method_inputs_recorder import MethodInputsRecorder
from .method_outputs_recorder import MethodOutputsRecorder
from .module_recorders import ModuleInputsRecorder, ModuleOutputsRecorder
from .recorder_manager import RecorderManager

__all__ = [
    'BaseRecorder', 'ModuleOutputsRecorder', 'ModuleInputsRecorder', 'MethodOutputsRecorder',
    'MethodInputsRecorder', 'RecorderManager', 'get_submodule_or_raise'
]
