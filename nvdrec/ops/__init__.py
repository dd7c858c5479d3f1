"""nvdrec.ops (see DESIGN.md)."""

__all__: list[str] = []
