"""Nodes over TLS on loopback: two nodes whose certificates one CA signed link (each checks
the other's) and call across, with the cookie still asked for on top; a stranger with the right
cookie but a certificate of its own CA gets no link, nor does one with the CA's certificate and
another cookie; TLS and plain endpoints do not mix."""

from __future__ import annotations

import shutil
import subprocess
import textwrap

import pytest

from test_nodes import CALLER, HOST, cookie_file, finish

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")

LEAF = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"


def openssl(cwd, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def authority(d, name: str) -> None:
    """A CA: {name}-ca.pem and its key."""
    openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", "-days", "2", "-subj", f"/CN={name} test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def leaf(d, ca: str, name: str) -> tuple[str, ...]:
    """A node's certificate signed by CA `ca`: the --tls-* options for it."""
    (d / "leaf.ext").write_text(LEAF)
    openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}-ca.pem", "-CAkey", f"{ca}-ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "leaf.ext")
    (d / f"{name}.key").chmod(0o600)
    return ("--tls-ca", str(d / f"{ca}-ca.pem"), "--tls-cert", str(d / f"{name}.pem"),
            "--tls-key", str(d / f"{name}.key"))


def test_two_nodes_link_over_tls_and_a_stranger_of_another_ca_is_refused(nodes, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    authority(keys, "system")
    authority(keys, "other")
    cookie = nodes.cookie
    _, endpoint = nodes.listening("a", HOST, *leaf(keys, "system", "a"), scheme="tls")
    caller = nodes.start("b", CALLER + textwrap.dedent('''
        wait_nodes("a", "b")
        show("add", call("counter", "add", 2))
    '''), "--connect", endpoint, *leaf(keys, "system", "b"), cookie=cookie)
    code, out, err = finish(caller)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "add: ok (2, 'a')" in out, out
    # The right cookie, but a certificate the system's CA did not sign: no link.
    stranger = nodes.start("intruder", CALLER + textwrap.dedent('''
        print("STRANGER RAN", flush=True)
    '''), "--connect", endpoint, "--join-timeout", "1", *leaf(keys, "other", "intruder"),
        cookie=cookie)
    code, out, err = finish(stranger)
    assert code != 0 and "STRANGER RAN" not in out, out
    assert "intruder cannot join" in err, err
    # A certificate the CA signed, but another cookie: still no link.
    guesser = nodes.start("guesser", CALLER, "--connect", endpoint, "--join-timeout", "1",
                          *leaf(keys, "system", "guesser"), cookie=cookie_file(tmp_path, "a-guess", "wrong-cookie"))
    code, out, err = finish(guesser)
    assert code != 0 and "guesser cannot join" in err, err
    # A plain endpoint beside TLS files is refused before anything starts.
    plain = nodes.start("c", CALLER, "--connect", endpoint.replace("tls/", "tcp/"), *leaf(keys, "system", "c"), cookie=cookie)
    code, out, err = finish(plain)
    assert code != 0 and "is not a TLS one" in err, err
