"""What this project's OPC UA servers share (the simulated machines and the plant's face).

* :class:`Logins`: who may open a session. asyncua's default user manager makes every
  client, anonymous too, an administrator who may add and delete nodes; ours never does:
  listed users by password (compared in constant time), or anyone as a plain user when no
  list is given, with no administrator at all.
* :func:`secure`: one security policy and mode per server, the application certificate
  and key, and (optionally) a directory of client certificates that alone are trusted.
* :func:`write`: a value written into the address space by the server itself, with its
  variant type and source timestamp; a refusal is a bug in the node model, so it raises.
* :func:`argument`, :func:`check_arguments`: method arguments declared and checked
  (asyncua does not check a call's input arguments against the declaration).
* :func:`stop`: stop a server in milliseconds (asyncua's clock task ticks once a second
  and ``stop()`` waits for the tick).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.internal_server import InternalServer
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes as Status
from cryptography import x509

log = logging.getLogger(__name__)

#: (policy, mode) -> asyncua's endpoint policy type.
POLICY_TYPES: dict[tuple[str, str], ua.SecurityPolicyType] = {
    ("Basic256Sha256", "Sign"): ua.SecurityPolicyType.Basic256Sha256_Sign,
    ("Basic256Sha256", "SignAndEncrypt"): ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ("Aes256_Sha256_RsaPss", "Sign"): ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    ("Aes256_Sha256_RsaPss", "SignAndEncrypt"): (
        ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt
    ),
}


class Logins(UserManager):
    """Users by name and password, or (``users`` None) anyone; never an administrator."""

    def __init__(self, users: Mapping[str, str] | None) -> None:
        self._users = dict(users) if users is not None else None

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        """The user if allowed in, else None (access denied)."""
        if self._users is None:
            return User(role=UserRole.User, name=username)
        expected = self._users.get(username or "")
        if (
            expected is None
            or password is None
            or not hmac.compare_digest(expected.encode(), password.encode())
        ):
            log.warning(
                "OPC UA login refused: %s", f"user {username!r}" if username else "anonymous"
            )
            return None
        return User(role=UserRole.User, name=username)


async def secure(
    server: Server,
    policy: str | None,
    mode: str = "SignAndEncrypt",
    *,
    certificate: str | Path | None = None,
    private_key: str | Path | None = None,
    trust_dir: str | Path | None = None,
    users: Mapping[str, str] | None = None,
) -> None:
    """Set the server's one endpoint policy, its certificate and who may log in.

    Args:
        server: An initialised server, not started yet.
        policy: ``Basic256Sha256`` or ``Aes256_Sha256_RsaPss``; None: no security.
        mode: ``Sign`` or ``SignAndEncrypt``.
        certificate: The server's certificate (DER or PEM); needed with a policy.
        private_key: Its private key (PEM).
        trust_dir: Client certificates trusted; None: any client certificate.
        users: User name -> password; when given only user-name logins are offered.

    Raises:
        ValueError: a policy without certificate and key, or an unknown policy or mode.
        OSError: a certificate, key or trust directory cannot be read.
    """
    if policy is None:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    else:
        if certificate is None or private_key is None:
            raise ValueError(f"security policy {policy} needs a certificate and a private key")
        try:
            policy_type = POLICY_TYPES[(policy, mode)]
        except KeyError:
            raise ValueError(f"unknown security policy {policy!r} or mode {mode!r}") from None
        await server.load_certificate(str(certificate))
        await server.load_private_key(str(private_key))
        server.set_security_policy([policy_type])
        if trust_dir is not None:
            store = TrustStore([Path(trust_dir)], [])
            await store.load()
            options = (
                CertificateValidatorOptions.TRUSTED_VALIDATION
                | CertificateValidatorOptions.PEER_CLIENT
            )
            validator = CertificateValidator(options, store)

            async def check(certificate: x509.Certificate, app: ua.ApplicationDescription) -> None:
                try:
                    await validator(certificate, app)
                except ServiceError as exc:
                    log.warning(
                        "OPC UA client %s (%s) refused: %s; if it may connect, copy its "
                        "certificate into %s",
                        app.ApplicationUri,
                        certificate.subject.rfc4514_string(),
                        ua.StatusCode(ua.UInt32(exc.code)).name,
                        trust_dir,
                    )
                    raise

            server.set_certificate_validator(check)
    server.iserver.set_user_manager(Logins(users))
    if users is not None:
        server.set_identity_tokens([ua.UserNameIdentityToken])


async def write(server: Server, nodeid: ua.NodeId, value: object, vtype: ua.VariantType) -> None:
    """Write ``value`` as ``vtype`` into the address space, stamped now.

    Raises:
        UaStatusCodeError: the address space refused it (a bug in the node model).
    """
    now = ua.DateTime.now(UTC)
    datavalue = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=now, ServerTimestamp=now)
    status = await server.iserver.aspace.write_attribute_value(
        nodeid, AttributeIds.Value, datavalue
    )
    status.check()


async def stop(server: Server) -> None:
    """Stop ``server`` without waiting for its clock's next tick."""
    if (clock := server.iserver.time_task) is not None:
        clock.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await clock
        server.iserver.time_task = None
    await server.stop()


def argument(name: str, vtype: ua.VariantType) -> ua.Argument:
    """A scalar method argument of type ``vtype``."""
    return ua.Argument(Name=name, DataType=ua.NodeId(ua.Int32(vtype.value)), ValueRank=-1)


def refusal(status: int, arguments: Sequence[int] = ()) -> ua.CallMethodResult:
    """A method call refused with ``status`` (and a status per input argument)."""
    return ua.CallMethodResult(
        StatusCode=ua.StatusCode(ua.UInt32(status)),
        InputArgumentResults=[ua.StatusCode(ua.UInt32(code)) for code in arguments],
    )


def check_arguments(
    args: Sequence[ua.Variant], types: Sequence[ua.VariantType]
) -> ua.CallMethodResult | None:
    """A refusal if ``args`` do not match ``types`` in number and variant type, else None."""
    if len(args) != len(types):
        return refusal(
            Status.BadArgumentsMissing if len(args) < len(types) else Status.BadTooManyArguments
        )
    codes = [
        Status.Good if a.VariantType == t else Status.BadTypeMismatch
        for a, t in zip(args, types, strict=True)
    ]
    return refusal(Status.BadInvalidArgument, codes) if any(codes) else None
