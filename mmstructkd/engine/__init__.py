from .hooks import *  # noqa: F401,F403
from .model_wrappers import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .runner import RUNNERS, SafeRunner, SafeRunnerMixin, build_safe_runner, safe_runner_class

__all__ = ['RUNNERS', 'SafeRunner', 'SafeRunnerMixin', 'build_safe_runner', 'safe_runner_class']
