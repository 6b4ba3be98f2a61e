"""The entry point: a whole ``mixed`` command -> :class:`~mixedlm_ext.spec.model.ModelSpec`."""
from __future__ import annotations

import re
from functools import lru_cache

from ...core.errors import StataSyntaxError
from ...spec.model import ModelSpec, ResidualSpec
from .fixed_segment import parse_fixed_segment
from .random_segment import parse_re_segment
from .scan import check_balanced, split_top
from .settings import CommandSettings

__all__ = ["parse_stata"]


def _strip_command(command: str) -> str:
    """Remove surrounding blanks and the optional leading ``mixed``."""
    if not isinstance(command, str):
        raise TypeError("command must be a string, got %s" % type(command).__name__)
    text = command.strip()
    m = re.match(r"mixed(?![A-Za-z0-9_.])\s*", text)
    if m is not None:
        text = text[m.end() :]
    if not text:
        raise StataSyntaxError("empty command: %r" % command)
    return text


def parse_stata(command: str) -> ModelSpec:
    """Parse a Stata ``mixed`` command into a :class:`ModelSpec`.

    Parameters
    ----------
    command : str
        E.g. ``"mixed weight week || id: week, covariance(unstructured) reml"``.
        The leading ``mixed`` is optional.

    Returns
    -------
    ModelSpec
        ``random`` holds one :class:`REEquation` per ``||`` segment, in the
        order given (coarsest first); ``options`` holds the display and
        maximisation options as ``(key, value)`` pairs.

    Raises
    ------
    StataSyntaxError
        With a message quoting the offending token and segment.

    Examples
    --------
    >>> spec = parse_stata("mixed gsp private emp || region: || state:")
    >>> [eq.group for eq in spec.random]
    [('region',), ('region', 'state')]
    """
    if not isinstance(command, str):
        raise TypeError("command must be a string, got %s" % type(command).__name__)
    return _parse_command(command)


@lru_cache(maxsize=256)
def _parse_command(command: str) -> ModelSpec:
    """:func:`parse_stata` of a string (cached: a :class:`ModelSpec` is immutable)."""
    text = _strip_command(command)
    check_balanced(text, command.strip())
    segments = split_top(text, "||")
    g = CommandSettings()
    head = parse_fixed_segment(segments[0], g)
    path: list[str] = []
    random = tuple(parse_re_segment(seg, path, g) for seg in segments[1:])
    return ModelSpec(
        response=head.response,
        fixed=head.fixed,
        constant=head.constant,
        random=random,
        residual=g.residual or ResidualSpec(),
        reml=bool(g.reml),
        subset=head.subset,
        in_range=head.in_range,
        options=tuple(g.options.items()),
        weights=tuple(g.weights),
        pwscale=g.pwscale,
    )
