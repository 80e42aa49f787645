from .adversarial_distiller import AdversarialDistiller
from .partial_forward import PartialForward
from .single_teacher_distiller import SingleTeacherDistiller
from .teacher_runtime import TeacherRuntime

__all__ = ['SingleTeacherDistiller', 'AdversarialDistiller', 'PartialForward', 'TeacherRuntime']
