"""nvdrec: photos to game-ready PBR assets by differentiable rendering.

Importing nvdrec loads no native code; kernels are compiled or loaded on first use.
"""

__version__ = "0.1.0"

from .errors import ConfigError, NvdrecError  # noqa: E402
from .train.config import Config, load_config  # noqa: E402

__all__ = ["__version__", "Config", "load_config", "Trainer", "ConfigError", "NvdrecError"]


def __getattr__(name):
    # the trainer pulls in the renderer and friends: import it only when asked for
    if name == "Trainer":
        from .train.trainer import Trainer

        return Trainer
    raise AttributeError(f"module 'nvdrec' has no attribute {name!r}")
