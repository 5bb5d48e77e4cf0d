"""Key and certificate material kept in the state dir.

Everything is generated with ``cryptography`` on first start and reused
afterwards: RSA key generation dominates start-up time, and a stable CA lets a
long-lived client trust the emulator across restarts.
"""

import base64
import datetime
import hashlib
import ipaddress
import os
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from . import constants as C

KEY_BITS = 2048
DEFAULT_SERVER_NAMES = ("127.0.0.1", "::1", "localhost")


def write_atomic(path, data, private=False):
    """Write via a temp file and rename, so a concurrent reader never sees half a key."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def b64url(data):
    """Base64url without padding (JWT/JWK encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _key_pem(key, password=None):
    encryption = (serialization.BestAvailableEncryption(password.encode("utf-8"))
                  if password else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_or_create_key(path):
    if os.path.exists(path):
        return serialization.load_pem_private_key(_read_bytes(path), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    write_atomic(path, _key_pem(key), private=True)
    return key


def _load_cert(path):
    if not os.path.exists(path):
        return None
    cert = x509.load_pem_x509_certificate(_read_bytes(path))
    # Regenerate certificates that are about to expire rather than fail TLS later.
    if cert.not_valid_after_utc < _now() + datetime.timedelta(days=1):
        return None
    return cert


def _name(common_name):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MDE emulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _builder(subject, issuer, public_key, days):
    now = _now()
    return (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=days)))


def _san_entries(names):
    entries = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def _cert_names(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def thumbprint_sha1(cert):
    """Upper-case hex SHA-1 thumbprint (what MSAL's "thumbprint" expects)."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # nosec - x5t is SHA-1 by definition


def thumbprint_sha256(cert):
    """Upper-case hex SHA-256 thumbprint (x5t#S256)."""
    return cert.fingerprint(hashes.SHA256()).hex().upper()


class KeyMaterial:  # pylint: disable=too-many-instance-attributes
    """Loads or creates every key and certificate the emulator needs."""

    def __init__(self, state_dir, server_names=DEFAULT_SERVER_NAMES):
        self.state_dir = state_dir
        os.makedirs(state_dir, exist_ok=True)
        self.path = lambda name: os.path.join(state_dir, name)
        self._ensure_ca()
        self._ensure_server(server_names)
        self.token_signing_key = _load_or_create_key(self.path(C.TOKEN_SIGNING_KEY_FILE))
        self.token_signing_kid = b64url(hashlib.sha256(self._public_der(self.token_signing_key)).digest())[:27]
        self.idp_key = _load_or_create_key(self.path(C.FEDERATED_IDP_KEY_FILE))
        self.idp_kid = b64url(hashlib.sha256(self._public_der(self.idp_key)).digest())[:27]
        self._ensure_cert_app()

    @staticmethod
    def _public_der(key):
        return key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def ca_path(self):
        """Path of ca.pem."""
        return self.path(C.CA_CERT_FILE)

    @property
    def server_cert_path(self):
        """Path of server.pem."""
        return self.path(C.SERVER_CERT_FILE)

    @property
    def server_key_path(self):
        """Path of server.key."""
        return self.path(C.SERVER_KEY_FILE)

    def _ensure_ca(self):
        self.ca_key = _load_or_create_key(self.path(C.CA_KEY_FILE))
        cert = _load_cert(self.path(C.CA_CERT_FILE))
        if cert is None or cert.public_key().public_numbers() != self.ca_key.public_key().public_numbers():
            name = _name("MDE emulator test CA")
            cert = (_builder(name, name, self.ca_key.public_key(), 3650)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                 key_encipherment=False, data_encipherment=False,
                                                 key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()),
                                   critical=False)
                    .sign(self.ca_key, hashes.SHA256()))
            write_atomic(self.path(C.CA_CERT_FILE), _cert_pem(cert))
            # A new CA invalidates the old server certificate.
            for stale in (C.SERVER_CERT_FILE, C.SERVER_KEY_FILE):
                if os.path.exists(self.path(stale)):
                    os.unlink(self.path(stale))
        self.ca_cert = cert

    def _ensure_server(self, names):
        names = list(dict.fromkeys(list(DEFAULT_SERVER_NAMES) + [n for n in names if n not in ("0.0.0.0", "::")]))
        key = _load_or_create_key(self.server_key_path)
        cert = _load_cert(self.server_cert_path)
        if (cert is None or not set(names) <= _cert_names(cert)
                or cert.issuer != self.ca_cert.subject
                or cert.public_key().public_numbers() != key.public_key().public_numbers()):
            cert = (_builder(_name(names[0]), self.ca_cert.subject, key.public_key(), 825)
                    .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                    .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                                   critical=False)
                    .sign(self.ca_key, hashes.SHA256()))
            write_atomic(self.server_cert_path, _cert_pem(cert))

    def _ensure_cert_app(self):
        """The "cert" app's credential: a self-signed certificate, as typically uploaded to an app registration."""
        pem_path = self.path(C.CERT_APP_PEM_FILE)
        key = cert = None
        if os.path.exists(pem_path):
            data = _read_bytes(pem_path)
            key = serialization.load_pem_private_key(data, password=None)
            cert = x509.load_pem_x509_certificate(data)
            if cert.not_valid_after_utc < _now() + datetime.timedelta(days=1):
                key = cert = None
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
            name = _name("defender-tvm-emulator-app")
            cert = _builder(name, name, key.public_key(), 730).sign(key, hashes.SHA256())
            write_atomic(pem_path, _key_pem(key) + _cert_pem(cert), private=True)
        self.cert_app_key = key
        self.cert_app_cert = cert
        password = C.CERT_PASSWORD
        derived = {
            C.CERT_APP_ENCRYPTED_PEM_FILE: lambda: _key_pem(key, password) + _cert_pem(cert),
            C.CERT_APP_CERT_FILE: lambda: _cert_pem(cert),
            C.CERT_APP_PASSWORD_FILE: lambda: f"{password}\n",
            C.CERT_APP_PFX_FILE: lambda: pkcs12.serialize_key_and_certificates(
                b"defender-tvm-emulator-app", key, cert, None,
                serialization.BestAvailableEncryption(password.encode("utf-8"))),
        }
        crt_path = self.path(C.CERT_APP_CERT_FILE)
        fresh = os.path.exists(crt_path) and _read_bytes(crt_path) == _cert_pem(cert)
        for name, make in derived.items():
            if not fresh or not os.path.exists(self.path(name)):
                write_atomic(self.path(name), make(), private=name != C.CERT_APP_CERT_FILE)

    @property
    def cert_app_thumbprint(self):
        """SHA-1 thumbprint of the "cert" app's certificate."""
        return thumbprint_sha1(self.cert_app_cert)

    @property
    def cert_app_thumbprint_sha256(self):
        """SHA-256 thumbprint of the "cert" app's certificate."""
        return thumbprint_sha256(self.cert_app_cert)

    def jwks(self):
        """Public keys of the emulated Entra (JWKS document for ``jwks_uri``)."""
        numbers = self.token_signing_key.public_key().public_numbers()

        def as_b64(value):
            return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        return {"keys": [{"kty": "RSA", "use": "sig", "kid": self.token_signing_kid,
                          "n": as_b64(numbers.n), "e": as_b64(numbers.e)}]}
