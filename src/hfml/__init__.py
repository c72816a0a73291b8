"""hfml: a reproducible machine-learning workflow for ALICE heavy-flavour analyses."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hfml")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
