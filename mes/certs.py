"""``mes certs init``: this controller's OPC UA application certificate.

OPC UA authenticates applications, not just users: every secure session starts with both
sides presenting an application instance certificate whose subjectAltName carries the
application URI the application announces (asyncua, like most stacks, refuses a session
whose URI does not match). One self-signed certificate serves the controller as a client
of its cells and as the plant's own server, so it carries both client and server
authentication; its key is written readable by its owner only.

Layout under the PKI folder (``pki`` by default)::

    own/cert.der     the certificate (give this to every server that must trust us)
    own/key.pem      its private key (mode 0600; never leaves this machine)
    trusted/         certificates of the peers we trust (servers, and SCADA clients)
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    generate_self_signed_app_certificate,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from mes.errors import MesError

CONTROLLER_URI = "urn:mes-batch-of-one:controller"
"""The application URI of this controller (client and plant server alike)."""


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    certificate: Path
    private_key: Path
    trust_dir: Path


def pki_files(folder: Path) -> CertificateFiles:
    """Where :func:`create_certificate` puts things under ``folder``."""
    own = folder / "own"
    return CertificateFiles(own / "cert.der", own / "key.pem", folder / "trusted")


def create_certificate(
    folder: Path,
    *,
    uri: str = CONTROLLER_URI,
    hosts: Sequence[str] = (),
    days: int = 730,
    force: bool = False,
) -> CertificateFiles:
    """Create a self-signed application certificate and key, and an empty trust folder.

    Args:
        folder: The PKI folder.
        uri: The application URI written into the certificate.
        hosts: Host names and IP addresses it is valid for; default: this host's name,
            ``localhost`` and ``127.0.0.1``.
        days: How long it is valid.
        force: Replace an existing certificate and key.

    Returns:
        The files written.

    Raises:
        MesError: a certificate exists and ``force`` is not set, or a file cannot be written.
    """
    files = pki_files(folder)
    if not force and (files.certificate.exists() or files.private_key.exists()):
        raise MesError(
            f"{files.certificate} already exists: every server that trusts it would have to "
            "trust a new one; pass --force to replace it"
        )
    names = list(hosts) or [socket.gethostname(), "localhost", "127.0.0.1"]
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    for name in dict.fromkeys(names):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    key = generate_private_key()
    certificate = generate_self_signed_app_certificate(
        key,
        f"mes-batch-of-one controller@{names[0]}",
        {},
        alt_names,
        [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
        days=days,
    )
    try:
        files.certificate.parent.mkdir(parents=True, exist_ok=True)
        files.trust_dir.mkdir(parents=True, exist_ok=True)
        # The key is created owner-only before a byte of it is written.
        descriptor = os.open(files.private_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(dump_private_key_as_pem(key))
        os.chmod(files.private_key, 0o600)  # also when it existed with wider rights
        files.certificate.write_bytes(certificate.public_bytes(Encoding.DER))
    except OSError as exc:
        raise MesError(f"cannot write the certificate under {folder}: {exc}") from exc
    return files
