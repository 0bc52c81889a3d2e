"""fmhub: a self-hosted model catalog for foundation models.

Browse the catalog, fine-tune a model on your own data for a language task, evaluate it, register
the result and (later) deploy it. See the README for the two commands that do everything.
"""

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]


def __getattr__(name: str):
    """``fmhub.Client`` is imported on first use (the package itself stays light)."""
    if name == "Client":
        from fmhub.client import Client

        return Client
    raise AttributeError(f"module 'fmhub' has no attribute {name!r}")
