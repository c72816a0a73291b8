"""Exceptions raised on bad input, with messages a physicist can act on."""

import difflib
from collections.abc import Iterable


class HfmlError(Exception):
    """Base class of every error hfml raises on bad input."""


class ConfigError(HfmlError):
    """The configuration is invalid; the message names the key."""


class InputError(HfmlError):
    """An input file, tree or branch is missing or malformed."""


def nearest(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return ``"; did you mean 'a', 'b'?"`` for the names closest to ``name``.

    Empty when nothing is close, so that it can be appended to any message.
    """
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    if not close:
        return ""
    return "; did you mean " + ", ".join(repr(c) for c in close) + "?"
