from .distiller_ddp import DistillerDDP

__all__ = ['DistillerDDP']
