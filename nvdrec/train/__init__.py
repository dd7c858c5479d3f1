"""Training engine: configuration, trainer, bake, checkpoints, metrics."""

from .config import Config, config_keys, load_config

__all__ = ["Config", "load_config", "config_keys", "Trainer"]


def __getattr__(name):
    if name == "Trainer":
        from .trainer import Trainer

        return Trainer
    raise AttributeError(f"module 'nvdrec.train' has no attribute {name!r}")
