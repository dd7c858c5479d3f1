"""nvdrec.render (see DESIGN.md)."""

__all__: list[str] = []
