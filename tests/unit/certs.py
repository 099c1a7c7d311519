"""Certificates made in the test: a server CA and certificate for 127.0.0.1, a client CA and one
client certificate, and a stranger CA that trusts nothing of the others."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Pki:
    """PEM files of the test certificates."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_ca: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def make_pki(directory: Path) -> Pki:
    """Issue every certificate and write the PEM files into `directory`."""
    server_ca, client_ca, other_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("127.0.0.1", "localhost")
    client = client_ca.issue_cert("prometheus.example.test")
    pki = Pki(**{name: directory / f"{name}.pem" for name in Pki.__dataclass_fields__})
    server_ca.cert_pem.write_to_path(str(pki.ca))
    server.cert_chain_pems[0].write_to_path(str(pki.server_cert))
    server.private_key_pem.write_to_path(str(pki.server_key))
    client_ca.cert_pem.write_to_path(str(pki.client_ca))
    client.cert_chain_pems[0].write_to_path(str(pki.client_cert))
    client.private_key_pem.write_to_path(str(pki.client_key))
    other_ca.cert_pem.write_to_path(str(pki.other_ca))
    return pki
