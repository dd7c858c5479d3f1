"""nvdrec: photos to game-ready PBR assets by differentiable rendering.

Importing nvdrec loads no native code; kernels are compiled or loaded on first use.
"""

__version__ = "0.1.0"

from .errors import ConfigError, NvdrecError
from .train.config import Config, load_config

__all__ = ["Config", "ConfigError", "NvdrecError", "__version__", "load_config"]
