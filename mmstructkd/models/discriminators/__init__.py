from .structkd_discriminator import SelfAttention, StructKDDiscriminator, gradient_penalty

__all__ = ['StructKDDiscriminator', 'SelfAttention', 'gradient_penalty']
