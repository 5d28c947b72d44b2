"""Library mode as a node: ``rebeam.init(node=..., connect=[...])``'s options, checked here and
turned into the options ``rebeam serve`` takes (the same as ``rebeam --node``'s).

Rules:
- every option but ``node`` needs ``node``, as on the command line;
- a wrong type or value raises at the call (TypeError or ValueError naming the argument), before
  any process starts; the governor checks again (the cookie file's mode, the endpoints) and says
  why on stderr when it refuses;
- the cookie never travels as an argument: ``cookie_file=``, else ``REBEAM_COOKIE`` in this
  process's environment, which the governor reads and keeps from the run's processes.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from numbers import Real

#: A node's name: letters, digits, '-', '_' and '.', as ``rebeam --node`` takes it.
_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")
#: The keys of ``tls=``: the CA every node's certificate is checked against, this node's own.
TLS_KEYS = ("ca", "cert", "key")


def serve_args(
    node=None,
    listen=(),
    connect=(),
    cookie_file=None,
    join_timeout=None,
    lease=None,
    authority=False,
    tls=None,
) -> list[str]:
    """The ``rebeam serve`` options for these settings (none when ``node`` is None)."""
    if node is None:
        given = {
            "listen": listen, "connect": connect, "cookie_file": cookie_file, "join_timeout": join_timeout,
            "lease": lease, "authority": authority, "tls": tls,
        }
        named = [k for k, v in given.items() if _is_set(v)]
        if named:
            raise ValueError(f"{named[0]}= is for a node: give node= too (this process's node's name)")
        return []
    args = ["--node", _name(node)]
    for endpoint in _endpoints("listen", listen):
        args += ["--listen", endpoint]
    for endpoint in _endpoints("connect", connect):
        args += ["--connect", endpoint]
    if cookie_file is not None:
        args += ["--cookie-file", _path("cookie_file", cookie_file)]
    if join_timeout is not None:
        args += ["--join-timeout", _seconds("join_timeout", join_timeout)]
    if lease is not None:
        args += ["--lease", _seconds("lease", lease)]
    if not isinstance(authority, bool):
        raise TypeError(f"authority={authority!r} must be True or False")
    if authority:
        args.append("--authority")
    if tls is not None:
        args += _tls(tls)
    return args


def _is_set(value) -> bool:
    """Whether an option was given: not its default (None, False or no endpoints); 0 is given."""
    return not (value is None or value is False or (isinstance(value, (tuple, list)) and not value))


def join_seconds(join_timeout) -> float:
    """How long the governor may take to join before it says it is listening."""
    return 0.0 if join_timeout is None else float(join_timeout)


def _name(node) -> str:
    if not isinstance(node, str):
        raise TypeError(f"node={node!r} must be a str, the node's name")
    if not _NAME.match(node):
        raise ValueError(f"node={node!r} is not a node's name: use letters, digits, '-', '_' and '.'")
    return node


def _endpoints(what: str, value) -> list[str]:
    """One endpoint, or an iterable of them (``tcp/HOST:PORT``, ``tls/HOST:PORT``)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, (bytes, Mapping)):
        raise TypeError(f"{what}={value!r} must be an endpoint (a str such as 'tcp/127.0.0.1:7447') or a list of them")
    items = list(items)
    for e in items:
        if not isinstance(e, str):
            raise TypeError(f"{what}= holds {e!r}: each endpoint is a str such as 'tcp/127.0.0.1:7447'")
        if "/" not in e or not e.split("/", 1)[1]:
            raise ValueError(f"{what}= holds {e!r}, which is not an endpoint: write it as tcp/HOST:PORT")
    return items


def _path(what: str, value) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{what}={value!r} must be a path (a str or os.PathLike)")
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise ValueError(f"{what}={value!r} must be a non-empty path")
    return os.path.abspath(os.path.expanduser(path))


def _seconds(what: str, value) -> str:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{what}={value!r} must be a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what}={value!r} must be a finite number of seconds ≥ 0")
    return repr(float(value))


def _tls(tls) -> list[str]:
    if not isinstance(tls, Mapping):
        raise TypeError(f"tls={tls!r} must be a dict with the keys {', '.join(TLS_KEYS)} (PEM files)")
    if set(tls) != set(TLS_KEYS):
        raise ValueError(f"tls= has the keys {sorted(tls)}; give exactly {', '.join(TLS_KEYS)} (PEM files)")
    args: list[str] = []
    for key in TLS_KEYS:
        args += [f"--tls-{key}", _path(f"tls[{key!r}]", tls[key])]
    return args
