from .partial_forward import PartialForward
from .single_teacher_distiller import SingleTeacherDistiller

__all__ = ['SingleTeacherDistiller', 'PartialForward']
