"""Placeholder until the CUDA kernels land: nothing to load."""

from __future__ import annotations


def try_load():
    return None
