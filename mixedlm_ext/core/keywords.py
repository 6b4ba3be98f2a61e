"""No keyword argument is silently dropped: unknown ones are refused by name."""
from __future__ import annotations

import difflib
import functools
import inspect
from typing import Iterable


def unknown_keyword_error(name: str, valid: Iterable[str], where: str) -> TypeError:
    """``TypeError`` naming ``name`` and the nearest valid keyword of ``where``."""
    valid = sorted(set(valid))
    near = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = ("; did you mean %r?" % near[0]) if near else ("; valid keywords: %s" % ", ".join(valid))
    return TypeError("%s got an unexpected keyword argument %r%s" % (where, name, hint))


def check_keywords(given: Iterable[str], valid: Iterable[str], where: str) -> None:
    """Raise :func:`unknown_keyword_error` for the first name of ``given`` not in ``valid``."""
    valid = list(valid)
    for name in given:
        if name not in valid:
            raise unknown_keyword_error(name, valid, where)


def refuse_unknown_keywords(func):
    """Decorator: a keyword ``func`` does not take raises :func:`unknown_keyword_error`
    (naming the nearest valid one) instead of Python's bare ``TypeError``."""
    params = inspect.signature(func).parameters
    valid = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"]
    where = "%s()" % func.__name__

    @functools.wraps(func)
    def checked(*args, **kwargs):
        check_keywords(kwargs, valid, where)
        return func(*args, **kwargs)
    return checked
