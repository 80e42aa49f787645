from .adversarial_distiller import AdversarialDistiller
from .partial_forward import PartialForward
from .single_teacher_distiller import SingleTeacherDistiller, StepRecords, StepResult
from .teacher_provider import TeacherProvider
from .teacher_runtime import TeacherRuntime

__all__ = ['SingleTeacherDistiller', 'AdversarialDistiller', 'PartialForward', 'TeacherRuntime',
           'TeacherProvider', 'StepRecords', 'StepResult']
