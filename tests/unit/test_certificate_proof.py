"""Challenge signatures for certificate login, made with the shipped signer tool."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from certificates.proof import verify_possession
from tests.support.pki import make_ca

ROOT = Path(__file__).resolve().parents[2]


def _leaf_with_key(key):
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    ca = make_ca("Test CA", "Beijing")
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "公司")]))
        .issuer_name(ca.name).public_key(key.public_key()).serial_number(7)
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
        .sign(ca.key, hashes.SHA256())
    )


def _sign_with_tool(tmp_path, key, challenge, p12=False):
    if p12:
        cert = _leaf_with_key(key)
        path = tmp_path / "k.p12"
        path.write_bytes(pkcs12.serialize_key_and_certificates(b"c", key, cert, None,
                                                               serialization.BestAvailableEncryption(b"pw")))
        args = ["--p12", str(path), "--password-env", "P12PW"]
    else:
        path = tmp_path / "k.pem"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        args = ["--key", str(path)]
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "sign_challenge.py"), *args, challenge],
                         capture_output=True, text=True, check=True, env={"P12PW": "pw", "PATH": "/usr/bin"})
    return out.stdout.strip()


def test_ecdsa_and_rsa_signatures_from_the_tool_verify(tmp_path):
    for key in (ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048)):
        cert = _leaf_with_key(key)
        sig = _sign_with_tool(tmp_path, key, "challenge-123")
        assert verify_possession(cert, "challenge-123", sig)
        assert not verify_possession(cert, "challenge-124", sig)  # bound to the challenge


def test_pkcs12_input(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    sig = _sign_with_tool(tmp_path, key, "c-p12", p12=True)
    assert verify_possession(_leaf_with_key(key), "c-p12", sig)


def test_another_key_or_garbage_fails():
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    cert = _leaf_with_key(key)
    from cryptography.hazmat.primitives import hashes

    from certificates.proof import signed_bytes

    forged = base64.b64encode(other.sign(signed_bytes("c"), ec.ECDSA(hashes.SHA256()))).decode()
    assert not verify_possession(cert, "c", forged)
    assert not verify_possession(cert, "c", "not base64 !!")
    assert not verify_possession(cert, "c", "A" * 5000)
    # A signature over the bare challenge (no domain prefix) is not accepted.
    bare = base64.b64encode(key.sign(b"c", ec.ECDSA(hashes.SHA256()))).decode()
    assert not verify_possession(cert, "c", bare)
