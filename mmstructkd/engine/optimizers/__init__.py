from .adversarial_constructor import AdversarialOptimWrapperConstructor

__all__ = ['AdversarialOptimWrapperConstructor']
