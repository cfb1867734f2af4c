"""Scripts that reproduce the project's tables and figures (not installed)."""
