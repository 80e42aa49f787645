from .batch_augments import *  # noqa: F401,F403  (STKDMixup only with mmpretrain)
from .connectors import *  # noqa: F401,F403
from .discriminators import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .recorders import *  # noqa: F401,F403
from .stages import *  # noqa: F401,F403
