"""nvdrec.data: datasets, image cache, preflight, framing, poses from photos (see
docs/architecture.md)."""

__all__: list[str] = []
