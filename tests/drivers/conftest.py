"""What the OPC UA driver tests share: one set of self-signed certificates per test run,
and the settings of a secure simulator and of a driver that logs in to it.

The certificates are made once per session (RSA keys take a while), synchronously, so the
fixture suits tests on any event loop scope.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from drivers.sim.opcua_server import APPLICATION_URI
from mes.certs import CONTROLLER_URI, create_certificate

USER, PASSWORD = "operator", "s3cret"


def make_pki(folder: Path) -> Path:
    """Self-signed certificates in ``folder``: ``server`` and ``client`` ``.der`` + ``.pem``,
    made by ``mes certs init``'s own code (the client's is the controller's certificate).

    Trust directories beside them: ``trusted`` holds the server's certificate, ``other``
    only the client's (some other certificate), ``empty`` nothing.
    """
    for name, uri in (("server", APPLICATION_URI), ("client", CONTROLLER_URI)):
        made = create_certificate(folder / name, uri=uri, days=30)
        shutil.copy(made.certificate, folder / f"{name}.der")
        shutil.copy(made.private_key, folder / f"{name}.pem")
    for trusted, files in (("trusted", ["server.der"]), ("other", ["client.der"]), ("empty", [])):
        (folder / trusted).mkdir()
        for file in files:
            shutil.copy(folder / file, folder / trusted / file)
    return folder


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder :func:`make_pki` filled, made once per test session."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def secure_server(pki: Path) -> dict[str, Any]:
    """``OpcuaSimServer`` options: Basic256Sha256 SignAndEncrypt, user ``operator`` only."""
    return {
        "security": "sign_encrypt",
        "certificate": pki / "server.der",
        "private_key": pki / "server.pem",
        "users": {USER: PASSWORD},
    }


def secure_login(pki: Path, *, password: str = PASSWORD, trust: str = "trusted") -> dict[str, Any]:
    """``OpcuaSettings`` fields for a driver that logs in to :func:`secure_server`,
    trusting the server certificates in ``pki / trust``."""
    return {
        "policy": "Basic256Sha256",
        "mode": "SignAndEncrypt",
        "certificate": str(pki / "client.der"),
        "private_key": str(pki / "client.pem"),
        "trust_dir": str(pki / trust),
        "application_uri": CONTROLLER_URI,
        "user": USER,
        "password": password,
    }
