"""Training engine: configuration (and, later, the trainer)."""

from .config import Config, config_keys, load_config

__all__ = ["Config", "config_keys", "load_config"]
