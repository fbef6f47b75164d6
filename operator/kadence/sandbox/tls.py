"""The sandbox's own certificate authority and the API server's certificate.

kubectl (client-go) sends a kubeconfig's credentials only over TLS, so the locked API server
serves HTTPS with a certificate for 127.0.0.1, ::1 and localhost, issued by a CA generated for
the sandbox's state directory. The kubeconfig carries the CA (certificate-authority-data), so
kubectl, kopf and the kubernetes client verify the server without further setup; raw clients
use `client_context(state_dir)`.

Files, all mode 0600, under `<state_dir>/pki/`: ca.crt, ca.key, apiserver.crt, apiserver.key.
The set is created once (by whoever needs it first; a concurrent creator keeps the first set)
and the server certificate is reissued by the same CA when it is about to expire.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE_DAYS = 30
SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Pki:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "apiserver.key"


def pki_dir(state_dir: Path) -> Path:
    return state_dir / "pki"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM)


def _issue_server(ca_cert, ca_key):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _key()
    now = _now()
    names = [x509.DNSName(n) for n in SERVER_NAMES] + [x509.IPAddress(ipaddress.ip_address(a))
                                                        for a in SERVER_ADDRESSES]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kadence-sandbox-apiserver")]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _create(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    ca_key = _key()
    now = _now()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kadence-sandbox-ca")])
    ca_cert = (x509.CertificateBuilder()
               .subject_name(name).issuer_name(name)
               .public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    server_cert, server_key = _issue_server(ca_cert, ca_key)
    pki = Pki(directory)
    _write_private(pki.ca_key, _pem_key(ca_key))
    _write_private(pki.ca_cert, _pem_cert(ca_cert))
    _write_private(pki.server_key, _pem_key(server_key))
    _write_private(pki.server_cert, _pem_cert(server_cert))


def _renew_if_expiring(pki: Pki) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    if server.not_valid_after_utc - _now() > datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    cert, key = _issue_server(ca_cert, ca_key)
    for path, data in ((pki.server_key, _pem_key(key)), (pki.server_cert, _pem_cert(cert))):
        temporary = path.with_name(f".{path.name}.renew")
        _write_private(temporary, data)
        os.replace(temporary, path)


def load_or_create(state_dir: Path) -> Pki:
    """The sandbox's CA and server certificate, created on first use."""
    pki = Pki(pki_dir(state_dir))
    if not pki.server_cert.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".pki.", dir=state_dir))
        try:
            _create(staging)
            try:
                os.rename(staging, pki.directory)  # fails when another process made the set first
            except OSError:
                if not pki.server_cert.exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    os.chmod(pki.directory, 0o700)
    _renew_if_expiring(pki)
    return pki


def server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki.server_cert, pki.server_key)
    return context


def ca_file(state_dir: Path) -> Path:
    return Pki(pki_dir(state_dir)).ca_cert


def client_context(state_dir: Path) -> ssl.SSLContext:
    """Verifies the sandbox API server against the sandbox's CA (and nothing else)."""
    return ssl.create_default_context(cafile=str(ca_file(state_dir)))
