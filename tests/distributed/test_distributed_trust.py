"""``--scheduler`` does not trust whoever answers: plain tcp:// only to this machine unless
``--insecure-scheduler``; tls:// verifies the scheduler's certificate (generated here with the
cryptography package; all traffic stays on the loopback interface)."""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys

import pytest

from lveval.distributed import trust
from lveval.exceptions import InputError

distributed = pytest.importorskip("distributed")


def run_cli(args, env=None):
    e = dict(os.environ)
    e.pop("LVEVAL_MEMORY_LIMIT", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "lveval.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=180, env=e)


@pytest.fixture
def gt_file(lvis_path):
    return lvis_path


@pytest.fixture(scope="module")
def results_file(tmp_path_factory, lvis_path):
    from lveval.simulate import simulate

    p = tmp_path_factory.mktemp("trust") / "r.json"
    p.write_text(json.dumps(simulate(lvis_path, seed=1, candidates_per_image=30)))
    return p


def own_address() -> str | None:
    """This machine's non-loopback IPv4 address, if it has one (a UDP 'connect' sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ipaddress.ip_address(ip).is_loopback else ip


@pytest.fixture
def no_connections(monkeypatch):
    def refuse(*a, **kw):
        raise AssertionError("a connection was attempted")
    monkeypatch.setattr(trust.socket, "create_connection", refuse)


def test_plain_tcp_to_another_host_is_refused_before_connecting(no_connections, monkeypatch):
    with pytest.raises(InputError, match="refusing plain tcp:// to 192.0.2.1"):
        trust.check_scheduler("tcp://192.0.2.1:8786")
    with pytest.raises(InputError, match="refusing plain tcp://"):
        trust.check_scheduler("192.0.2.1:8786")   # no scheme is tcp://
    real = socket.getaddrinfo
    monkeypatch.setattr(trust.socket, "getaddrinfo", lambda host, *a, **kw: (
        [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", 8786))] if host == "head-node"
        else real(host, *a, **kw)))
    with pytest.raises(InputError, match=r"head-node \(10.20.30.40\)"):
        trust.check_scheduler("tcp://head-node:8786")


def test_addresses_that_are_not_addresses():
    for bad, says in (("not a url", "expected an address"), ("http://x:1", "only tcp:// and tls://"),
                      ("tcp://127.0.0.1:99999", "out of range")):
        with pytest.raises(InputError, match=says):
            trust.parse_address(bad)


@pytest.fixture(scope="module")
def rogue():
    """A scheduler (with one worker) listening on every interface, standing for one somebody else runs."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                                  host="0.0.0.0", dashboard_address=None) as cluster:
        yield cluster


def test_rogue_scheduler_on_the_network_is_refused_unless_insecure(rogue, gt_file, results_file, tmp_path):
    ip = own_address()
    if ip is None:
        pytest.skip("the machine has no non-loopback address")
    port = rogue.scheduler.port
    out = tmp_path / "out.json"
    seen = len(rogue.scheduler.clients)
    r = run_cli(["evaluate", gt_file, results_file, "--scheduler", f"tcp://{ip}:{port}", "--json", out])
    assert r.returncode == 2 and r.stderr.startswith(f"lveval: error: --scheduler: refusing plain tcp:// to {ip}")
    assert len(r.stderr.splitlines()) == 1 and not out.exists()
    assert len(rogue.scheduler.clients) == seen   # it was never contacted
    # the loopback address of the same scheduler is this machine: allowed
    r = run_cli(["evaluate", gt_file, results_file, "--scheduler", f"tcp://127.0.0.1:{port}", "--json", out])
    assert r.returncode == 0, r.stderr


def test_unreachable_scheduler_fails_fast(gt_file, results_file):
    import time

    t = time.perf_counter()
    r = run_cli(["evaluate", gt_file, results_file, "--scheduler", "tcp://127.0.0.1:1"])
    assert r.returncode == 2 and "cannot connect to tcp://127.0.0.1:1" in r.stderr
    assert time.perf_counter() - t < 15   # Dask alone waits 30 s


# ------------------------------------------------------------------------------------------ TLS

def _certificates(d, name: str):
    """A CA and, signed by it, certificates for 127.0.0.1 (scheduler and worker) and a client."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def write(k, cert, stem):
        (d / f"{stem}.key").write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
        (d / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    write(ca_key, ca, f"{name}-ca")
    for stem in ("server", "client"):
        k = key()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {stem}")]))
                .issuer_name(ca_name).public_key(k.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        write(k, cert, f"{name}-{stem}")
    return {k: str(d / f"{name}-{k}") for k in ("ca", "server", "client")}


def _tls_cluster(c):
    from distributed.security import Security

    sec = Security(tls_ca_file=c["ca"] + ".pem", tls_scheduler_cert=c["server"] + ".pem",
                   tls_scheduler_key=c["server"] + ".key", tls_worker_cert=c["server"] + ".pem",
                   tls_worker_key=c["server"] + ".key", tls_client_cert=c["client"] + ".pem",
                   tls_client_key=c["client"] + ".key", require_encryption=True)
    return distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls://",
                                    host="127.0.0.1", security=sec, dashboard_address=None)


def test_tls_scheduler_with_generated_certificates(tmp_path, lvis_path):
    pytest.importorskip("cryptography")
    from lveval.simulate import simulate

    ours = _certificates(tmp_path, "ours")
    theirs = _certificates(tmp_path, "theirs")
    res = tmp_path / "r.json"
    res.write_text(json.dumps(simulate(lvis_path, seed=1, candidates_per_image=30)))
    single = tmp_path / "single.json"
    assert run_cli(["evaluate", lvis_path, res, "--json", single]).returncode == 0
    flags = ["--tls-ca-file", ours["ca"] + ".pem", "--tls-cert", ours["client"] + ".pem",
             "--tls-key", ours["client"] + ".key"]
    with _tls_cluster(ours) as cluster:
        addr = cluster.scheduler.address
        assert addr.startswith("tls://127.0.0.1:")
        out = tmp_path / "tls.json"
        r = run_cli(["evaluate", lvis_path, res, "--scheduler", addr, "--json", out, *flags])
        assert r.returncode == 0, r.stderr
        assert json.loads(out.read_text()) == json.loads(single.read_text())
        r = run_cli(["evaluate", lvis_path, res, "--scheduler", addr])   # no CA: nothing to verify it with
        assert r.returncode == 2 and "a CA certificate is needed" in r.stderr
        # the same scheduler through Dask's configuration instead of flags
        (tmp_path / "config").mkdir()
        cfg = tmp_path / "config" / "dask.yaml"
        cfg.write_text("distributed:\n  comm:\n    tls:\n"
                       f"      ca-file: {ours['ca']}.pem\n      client:\n"
                       f"        cert: {ours['client']}.pem\n        key: {ours['client']}.key\n")
        r = run_cli(["evaluate", lvis_path, res, "--scheduler", addr, "--json", tmp_path / "cfg.json"],
                    env={"DASK_CONFIG": str(tmp_path / "config")})
        assert r.returncode == 0, r.stderr
    with _tls_cluster(theirs) as cluster:   # a scheduler whose certificate our CA did not sign
        out = tmp_path / "rogue.json"
        r = run_cli(["evaluate", lvis_path, res, "--scheduler", cluster.scheduler.address, "--json", out, *flags])
        assert r.returncode == 2 and "certificate" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
        assert not out.exists()
