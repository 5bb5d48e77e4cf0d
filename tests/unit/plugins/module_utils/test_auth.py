# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ansible_collections.defender.tvm.plugins.module_utils import _auth as auth
from ansible_collections.defender.tvm.plugins.module_utils._errors import (
    AuthenticationError,
    ConfigurationError,
    entra_error_message,
)
from ansible_collections.defender.tvm.tests.unit.helpers import make_settings


@pytest.fixture(scope='module')
def key_and_cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'defender-tvm-test')])
    now = datetime.datetime(2026, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return key, cert


def pem(key, cert, password=None):
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
            + cert.public_bytes(serialization.Encoding.PEM))


def test_pem_with_key_and_certificate(tmp_path, key_and_cert):
    path = tmp_path / 'app.pem'
    path.write_bytes(pem(*key_and_cert))
    credential = auth.load_certificate(str(path), None)
    assert credential['private_key'].startswith('-----BEGIN PRIVATE KEY-----')
    assert credential['public_certificate'].startswith('-----BEGIN CERTIFICATE-----')


def test_encrypted_pem_needs_the_right_password(tmp_path, key_and_cert):
    path = tmp_path / 'app.pem'
    path.write_bytes(pem(key_and_cert[0], key_and_cert[1], 'pw'))
    assert 'PRIVATE KEY' in auth.load_certificate(str(path), 'pw')['private_key']
    with pytest.raises(ConfigurationError, match='is encrypted: set client_certificate_password'):
        auth.load_certificate(str(path), None)
    with pytest.raises(ConfigurationError, match='wrong client_certificate_password'):
        auth.load_certificate(str(path), 'nope')


def test_pfx_with_password(tmp_path, key_and_cert):
    key, cert = key_and_cert
    path = tmp_path / 'app.pfx'
    path.write_bytes(pkcs12.serialize_key_and_certificates(b'app', key, cert, None,
                                                           serialization.BestAvailableEncryption(b'pw')))
    assert 'CERTIFICATE' in auth.load_certificate(str(path), 'pw')['public_certificate']
    with pytest.raises(ConfigurationError, match='wrong or missing client_certificate_password'):
        auth.load_certificate(str(path), 'bad')


def test_a_pem_without_the_certificate_is_refused(tmp_path, key_and_cert):
    path = tmp_path / 'key-only.pem'
    path.write_bytes(key_and_cert[0].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    with pytest.raises(ConfigurationError, match='must hold both the private key and the certificate'):
        auth.load_certificate(str(path), None)


def test_federated_assertion_is_read_at_each_request(tmp_path):
    path = tmp_path / 'token'
    path.write_text(u'first.jwt\n')
    assertion = auth._FederatedAssertion(str(path))
    assert assertion() == 'first.jwt'
    path.write_text(u'rotated.jwt')
    assert assertion() == 'rotated.jwt'
    path.write_text(u'')
    with pytest.raises(AuthenticationError, match='is empty'):
        assertion()


def test_entra_errors_become_one_line_with_the_fix():
    message = entra_error_message({
        'error': 'invalid_client',
        'error_description': 'AADSTS7000215: Invalid client secret provided.\r\nTrace ID: abc\r\nCorrelation ID: '
                             'def\r\nTimestamp: 2026-01-01',
        'error_codes': [7000215], 'correlation_id': 'def'})
    assert message == ('Entra ID refused the token request (invalid_client): AADSTS7000215: Invalid client secret '
                       'provided. Fix: check client_secret: send the secret\'s value, not its ID (correlation ID def)')
    assert '..' not in message  # Entra's full stop is not doubled
    assert 'Trace ID' not in message
    assert 'AADSTS90002' in entra_error_message({'error': 'invalid_request',
                                                 'error_description': 'AADSTS90002: Tenant x not found.'})


class FakeApp:
    def __init__(self, results):
        self.results = list(results)
        self.calls = 0
        self.removed = 0

    def acquire_token_for_client(self, scopes):
        self.calls += 1
        return self.results.pop(0)

    def remove_tokens_for_client(self):
        self.removed += 1


def provider_with(app):
    provider = auth.MsalTokenProvider(make_settings(), http_client=None)
    provider._build_app = lambda: app
    return provider


def test_one_token_for_all_workers():
    app = FakeApp([{'access_token': 'A'}])
    provider = provider_with(app)
    tokens = []
    threads = [threading.Thread(target=lambda: tokens.append(provider.get())) for dummy in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert app.calls == 1 and set(tokens) == {(1, 'A')}


def test_refresh_replaces_a_rejected_token_once():
    app = FakeApp([{'access_token': 'A'}, {'access_token': 'B'}])
    provider = provider_with(app)
    generation, token = provider.get()
    assert provider.refresh(generation) == (2, 'B')
    assert provider.refresh(generation) == (2, 'B')  # a second worker that saw the same 401
    assert app.calls == 2 and app.removed == 1


def test_a_failed_token_request_is_not_repeated_by_other_workers():
    app = FakeApp([{'error': 'invalid_client', 'error_description': 'AADSTS7000215: Invalid client secret.'}])
    provider = provider_with(app)
    for dummy in range(3):
        with pytest.raises(AuthenticationError, match='AADSTS7000215'):
            provider.get()
    assert app.calls == 1


def test_static_tokens_are_not_refreshable():
    provider = auth.token_provider(make_settings(access_token='tok'), None)
    assert provider.get() == (0, 'tok') and provider.token_requests == 0
    with pytest.raises(AuthenticationError, match='access_token'):
        provider.refresh(0)


def test_the_credential_follows_the_options(tmp_path, key_and_cert):
    cert = tmp_path / 'app.pem'
    cert.write_bytes(pem(*key_and_cert))
    token_file = tmp_path / 'federated.jwt'
    token_file.write_text(u'header.payload.signature')

    def credential(**options):
        return auth.MsalTokenProvider(make_settings(**options), http_client=None)._credential()

    assert credential() == 's3cret-value'
    assert set(credential(client_secret=None, client_certificate_path=str(cert))) == {
        'private_key', 'public_certificate'}
    assertion = credential(client_secret=None, federated_token_file=str(token_file))['client_assertion']
    assert assertion() == 'header.payload.signature'
    assert isinstance(auth.token_provider(make_settings(access_token='t'), None), auth.StaticTokenProvider)
    assert isinstance(auth.token_provider(make_settings(), None), auth.MsalTokenProvider)
