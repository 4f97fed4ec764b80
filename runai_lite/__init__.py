"""runai-lite: a runai-compatible researcher CLI and the control plane behind it."""

__version__ = "0.1.0"
