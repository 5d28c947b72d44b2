"""rebeam.init()'s node options: checked at the call, turned into `rebeam serve`'s options."""

from __future__ import annotations

import os
import pathlib

import pytest

import rebeam
from rebeam import _node_options


def test_no_node_is_no_options_and_every_node_option_needs_a_node():
    assert _node_options.serve_args() == []
    for kw in ({"listen": "tcp/127.0.0.1:1"}, {"connect": ["tcp/127.0.0.1:1"]}, {"cookie_file": "c"},
               {"lease": 0}, {"join_timeout": 1}, {"authority": True}, {"tls": {}}):
        (name,) = kw
        with pytest.raises(ValueError, match=f"{name}= is for a node: give node= too"):
            _node_options.serve_args(**kw)


def test_every_option_becomes_its_command_line_option(tmp_path):
    args = _node_options.serve_args(
        node="b.1", listen="tcp/127.0.0.1:7448", connect=("tcp/127.0.0.1:7447", "tls/10.0.0.2:7447"),
        cookie_file=pathlib.Path("cookie"), join_timeout=3, lease=0.5, authority=True,
        tls={"ca": tmp_path / "ca.pem", "cert": "b.pem", "key": "b.key"},
    )
    assert args == [
        "--node", "b.1", "--listen", "tcp/127.0.0.1:7448",
        "--connect", "tcp/127.0.0.1:7447", "--connect", "tls/10.0.0.2:7447",
        "--cookie-file", os.path.abspath("cookie"), "--join-timeout", "3.0", "--lease", "0.5", "--authority",
        "--tls-ca", str(tmp_path / "ca.pem"), "--tls-cert", os.path.abspath("b.pem"),
        "--tls-key", os.path.abspath("b.key"),
    ]


@pytest.mark.parametrize("kw, error, words", [
    ({"node": 7}, TypeError, "node=7 must be a str"),
    ({"node": "b c"}, ValueError, "node='b c' is not a node's name"),
    ({"node": ""}, ValueError, "is not a node's name"),
    ({"node": "b", "connect": 7447}, TypeError, "connect=7447 must be an endpoint"),
    ({"node": "b", "connect": [7447]}, TypeError, "connect= holds 7447"),
    ({"node": "b", "listen": ["127.0.0.1:7447"]}, ValueError, "listen= holds '127.0.0.1:7447', which is not an"),
    ({"node": "b", "cookie_file": 3}, TypeError, "cookie_file=3 must be a path"),
    ({"node": "b", "cookie_file": ""}, ValueError, "cookie_file='' must be a non-empty path"),
    ({"node": "b", "lease": "2"}, TypeError, "lease='2' must be a number of seconds"),
    ({"node": "b", "lease": True}, TypeError, "lease=True must be a number of seconds"),
    ({"node": "b", "join_timeout": -1}, ValueError, "join_timeout=-1 must be a finite number of seconds"),
    ({"node": "b", "lease": float("inf")}, ValueError, "lease=inf must be a finite number"),
    ({"node": "b", "authority": 1}, TypeError, "authority=1 must be True or False"),
    ({"node": "b", "tls": ("ca", "cert", "key")}, TypeError, "tls=.* must be a dict"),
    ({"node": "b", "tls": {"ca": "x", "cert": "y"}}, ValueError, r"tls= has the keys \['ca', 'cert'\]"),
])
def test_wrong_options_are_refused_naming_the_argument(kw, error, words):
    with pytest.raises(error, match=words):
        _node_options.serve_args(**kw)


def test_init_checks_its_options_before_it_starts_anything():
    with pytest.raises(ValueError, match="workers=0 must be a whole number"):
        rebeam.init(0)
    with pytest.raises(TypeError, match="node=1 must be a str"):
        rebeam.init(node=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'nod'"):
        rebeam.init(nod="b")
    # Library mode is off in these tests: good options get as far as saying so.
    with pytest.raises(rebeam.NotRunning, match="library mode is off"):
        rebeam.init(2, node="b", connect="tcp/127.0.0.1:7447")
