"""Which schedulers ``--scheduler`` may connect to, and how.

A Dask scheduler is trusted with this process: Dask exchanges pickled objects, so whoever answers at
the address can make the client run code of its choosing. Hence:

* ``tls://HOST:PORT`` verifies the scheduler against a CA certificate (and presents a client
  certificate): Dask's ``Security`` from ``--tls-ca-file/--tls-cert/--tls-key`` or, without them, from
  Dask's configuration (``distributed.comm.tls.ca-file``, ``.client.cert``, ``.client.key``);
* ``tcp://`` (or no scheme) only to a loopback address, unless ``--insecure-scheduler`` is given;
* the address is checked before connecting (one line, exit 2), and an unreachable scheduler fails in
  seconds, not after Dask's 30 s connection timeout.
"""
from __future__ import annotations

import ipaddress
import re
import socket

from ..exceptions import InputError

CONNECT_TIMEOUT = 5.0   # seconds, for the reachability check and the client's connection
_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)"
                      r"(?::(?P<port>\d{1,5}))?/?$")


class Checked(str):
    """A scheduler address that :func:`check_scheduler` has accepted (not checked again)."""


def parse_address(address: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a scheduler address; InputError when it is not one."""
    m = _ADDRESS.match(address.strip())
    if not m or not (m["scheme"] or m["port"]):
        raise InputError(f"--scheduler: expected an address like tls://host:8786 (or tcp://127.0.0.1:8786), "
                         f"got {address!r}")
    scheme = m["scheme"] or "tcp"
    if scheme not in ("tcp", "tls"):
        raise InputError(f"--scheduler: only tcp:// and tls:// addresses are supported, got {scheme}://")
    port = int(m["port"] or 8786)
    if not 0 < port < 65536:
        raise InputError(f"--scheduler: port {port} is out of range (1-65535)")
    return scheme, m["host"].strip("[]"), port


def resolve(host: str, port: int) -> list:
    """IP addresses of ``host`` (resolution only: nothing is sent to the host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--scheduler: cannot resolve host {host!r} ({exc.strerror})") from None
    return sorted({i[4][0] for i in infos})


def is_loopback(ips: list) -> bool:
    return bool(ips) and all(ipaddress.ip_address(ip.split("%")[0]).is_loopback for ip in ips)


def security_for(scheme: str, ca_file=None, cert=None, key=None):
    """Dask ``Security`` for a tls:// scheduler (flags first, else Dask's configuration); None for tcp://."""
    if scheme != "tls":
        if ca_file or cert or key:
            raise InputError("--tls-ca-file/--tls-cert/--tls-key apply to tls:// scheduler addresses")
        return None
    from distributed.security import Security

    if ca_file or cert or key:
        sec = Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True)
    else:
        sec = Security(require_encryption=True)   # distributed.comm.tls.* from Dask's configuration
    if not sec.tls_ca_file:
        raise InputError("--scheduler tls://: a CA certificate is needed to verify the scheduler: give "
                         "--tls-ca-file (and --tls-cert/--tls-key if the scheduler asks for a client "
                         "certificate), or set distributed.comm.tls.ca-file in Dask's configuration")
    for what, f in (("--tls-ca-file", sec.tls_ca_file), ("--tls-cert", sec.tls_client_cert),
                    ("--tls-key", sec.tls_client_key)):
        if f:
            try:
                with open(f, "rb"):
                    pass
            except OSError as exc:
                raise InputError(f"{what}: cannot read it ({exc.strerror})", path=f) from None
    return sec


def _handshake(sock, sec, host: str) -> None:
    """A TLS handshake with the client's context: a scheduler whose certificate the CA did not sign is
    refused here, with the reason, instead of after Dask's retries."""
    import ssl

    ctx = sec.get_connection_args("client").get("ssl_context")
    if ctx is None:
        return
    try:
        with ctx.wrap_socket(sock, server_hostname=host if ctx.check_hostname else None):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise InputError(f"--scheduler: the scheduler's certificate is not trusted "
                         f"({exc.verify_message or exc.reason}); check --tls-ca-file") from None
    except ssl.SSLError as exc:
        raise InputError(f"--scheduler: TLS handshake failed ({exc.reason or exc})") from None


def check_scheduler(address: str, *, insecure: bool = False, ca_file=None, cert=None, key=None, security=None):
    """Validate ``address`` and build its security; returns (address, Security or None). Refuses
    plain tcp:// to an address that is not loopback unless ``insecure``; checks that the port answers."""
    scheme, host, port = parse_address(address)
    ips = resolve(host, port)
    if scheme == "tcp" and not insecure and not is_loopback(ips):
        raise InputError(f"--scheduler: refusing plain tcp:// to {host} ({', '.join(ips)}), which is not this "
                         "machine: whoever answers there can run code in this process (Dask exchanges "
                         "pickled objects). Use tls:// with --tls-ca-file/--tls-cert/--tls-key, or "
                         "--insecure-scheduler on a network you trust")
    sec = security if security is not None else security_for(scheme, ca_file, cert, key)
    try:   # fail fast: Dask itself retries for 30 s before giving up
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as sock:
            if sec is not None:
                _handshake(sock, sec, host)
    except InputError:
        raise
    except OSError as exc:
        why = exc.strerror or ("timed out" if isinstance(exc, TimeoutError) else type(exc).__name__)
        raise InputError(f"--scheduler: cannot connect to {scheme}://{host}:{port} ({why})") from None
    return Checked(f"{scheme}://{host if ':' not in host else '[' + host + ']'}:{port}"), sec
