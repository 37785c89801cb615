"""One exception hierarchy for everything idsbench reports to a person.

Every error says what was wrong, where (file, column, row, option), what was expected and what
was found, and suggests a fix where one can be guessed.  The CLI prints these without a
traceback; anything else that escapes is a bug in idsbench.
"""

from __future__ import annotations

import difflib
from typing import Iterable

#: the largest seed NumPy and scikit-learn accept (seeds and split seeds are 0..MAX_SEED)
MAX_SEED = 2**32 - 1


class IdsbenchError(Exception):
    """Base class of all errors idsbench raises on purpose."""


class ConfigError(IdsbenchError, ValueError):
    """An option or parameter has a value idsbench cannot use."""


class DataError(IdsbenchError, ValueError):
    """A data file is missing, unreadable, or does not match the dataset's schema."""


class ChecksumError(DataError):
    """A data file's SHA-256 differs from the manifest's."""


class ModelError(IdsbenchError, RuntimeError):
    """A model broke its contract (wrong shapes, non-finite probabilities, ...)."""


class UnknownNameError(ConfigError, KeyError):
    """A name (model, dataset, option value) that is not among the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0] if self.args else ""


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to ``name``, best first (may be empty)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UnknownNameError:
    """Build the error for an unknown ``kind`` called ``name``, listing the valid ones."""
    choices = sorted(choices)
    plural = kind + ("es" if kind.endswith(("s", "x", "ch", "sh")) else "s")
    msg = f"unknown {kind} {name!r}; known {plural}: {', '.join(choices)}"
    guess = closest(name, choices)
    if guess:
        msg += f". Did you mean {guess[0]!r}?"
    return UnknownNameError(msg)
