"""layers of avalanche-sparse."""

__all__: list[str] = []
