"""nvdrec.geometry (see DESIGN.md)."""

__all__: list[str] = []
