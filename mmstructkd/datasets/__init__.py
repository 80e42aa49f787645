"""Dataset wrappers."""
from .replayable_views import KEY_FIELD, ReplayableViews, seeded_rngs

__all__ = ['ReplayableViews', 'KEY_FIELD', 'seeded_rngs']
