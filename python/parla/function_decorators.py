"""Parla 0.2's ``parla.function_decorators`` path."""

from parla._variants import specialize, specialized

__all__ = ["specialize", "specialized"]
