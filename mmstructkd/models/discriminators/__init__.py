from .spectral_norm_conv import SpectralNormConv2d
from .structkd_discriminator import SelfAttention, StructKDDiscriminator, gradient_penalty

__all__ = ['StructKDDiscriminator', 'SelfAttention', 'SpectralNormConv2d', 'gradient_penalty']
