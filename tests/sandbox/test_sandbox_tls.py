"""The sandbox's own CA, its API server certificate and its token: what kubectl needs to send
the token at all (client-go sends credentials only over TLS), each file its owner's only."""

from __future__ import annotations

import base64
import stat
import threading

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from kadence.sandbox import kubeconfig, tls


def _certificate(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_server_certificate_names_only_the_loopback_addresses_and_comes_from_the_sandbox_ca(tmp_path):
    pki = tls.load_or_create(tmp_path)
    server, ca = _certificate(pki.server_cert), _certificate(pki.ca_cert)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(str(a) for a in names.get_values_for_type(x509.IPAddress)) == ["127.0.0.1", "::1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert server.issuer == ca.subject
    ca.public_key().verify(server.signature, server.tbs_certificate_bytes, ec.ECDSA(server.signature_hash_algorithm))
    for path in (pki.ca_cert, pki.ca_key, pki.server_cert, pki.server_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(pki.directory.stat().st_mode) == 0o700


def test_the_set_is_made_once_and_a_certificate_about_to_expire_is_reissued_by_the_same_ca(tmp_path, monkeypatch):
    first = tls.load_or_create(tmp_path)
    serial = _certificate(first.server_cert).serial_number
    ca = first.ca_cert.read_bytes()
    assert _certificate(tls.load_or_create(tmp_path).server_cert).serial_number == serial
    monkeypatch.setattr(tls, "RENEW_BEFORE_DAYS", tls.SERVER_DAYS + 1)
    renewed = tls.load_or_create(tmp_path)
    assert _certificate(renewed.server_cert).serial_number != serial
    assert renewed.ca_cert.read_bytes() == ca, "clients' kubeconfigs keep trusting the server"


def test_the_kubeconfig_carries_the_token_and_the_ca_and_is_its_owners_only(tmp_path):
    path = kubeconfig.write_kubeconfig(tmp_path, kubeconfig.api_url(6443))
    config = yaml.safe_load(path.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == tls.ca_file(tmp_path).read_bytes()
    assert user["token"] == kubeconfig.read_token(tmp_path) and len(user["token"]) >= 40
    for written in (path, kubeconfig.token_path(tmp_path)):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600, written


def test_processes_creating_the_token_at_once_all_get_the_same_one(tmp_path):
    tokens = []
    threads = [threading.Thread(target=lambda: tokens.append(kubeconfig.load_or_create_token(tmp_path)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1 and len(tokens) == 8
