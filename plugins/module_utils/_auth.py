# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Access tokens for the Defender API: MSAL client credentials, or a pre-acquired token.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import traceback

from ansible_collections.defender.tvm.plugins.module_utils._errors import (
    AuthenticationError,
    ConfigurationError,
    entra_error_message,
)

try:
    import msal
except ImportError:
    msal = None
    MSAL_IMPORT_ERROR = traceback.format_exc()
else:
    MSAL_IMPORT_ERROR = None

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
except ImportError:
    x509 = serialization = pkcs12 = None


def load_certificate(path, password):
    """Read a PEM (private key + certificate) or PFX/PKCS#12 file for MSAL.

    Returns ``{"private_key": <unencrypted PEM>, "public_certificate": <PEM>}``; MSAL then
    signs a PS256 client assertion with the certificate's SHA-256 thumbprint. Reading the file
    here, not in MSAL, gives one clear error for either format before any network call.
    """
    if x509 is None:
        raise ConfigurationError("client_certificate_path needs the Python library 'cryptography' (installed with msal)")
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise ConfigurationError("cannot read client_certificate_path %s: %s" % (path, exc.strerror or exc))
    secret = password.encode('utf-8') if password else None
    if b'-----BEGIN' in data:
        key, cert = _load_pem(path, data, secret)
    else:
        key, cert = _load_pfx(path, data, secret)
    if key is None or cert is None:
        raise ConfigurationError(
            "client_certificate_path %s must hold both the private key and the certificate "
            "(a PEM file with both blocks, or a PFX/PKCS#12 file)" % path)
    return {
        'private_key': key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode('ascii'),
        'public_certificate': cert.public_bytes(serialization.Encoding.PEM).decode('ascii'),
    }


def _load_pem(path, data, secret):
    key = cert = None
    if b'PRIVATE KEY-----' in data:
        try:
            key = serialization.load_pem_private_key(data, password=secret)
        except TypeError:
            raise ConfigurationError(
                "the private key in %s is encrypted: set client_certificate_password" % path
                if secret is None else
                "the private key in %s is not encrypted: remove client_certificate_password" % path)
        except ValueError:
            raise ConfigurationError(
                "cannot load the private key in %s: wrong client_certificate_password, or not a key" % path)
    if b'CERTIFICATE-----' in data:
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise ConfigurationError("cannot parse the certificate in %s" % path)
    return key, cert


def _load_pfx(path, data, secret):
    try:
        key, cert, dummy = pkcs12.load_key_and_certificates(data, secret)
    except ValueError:
        raise ConfigurationError(
            "cannot open %s as PEM or PFX: wrong or missing client_certificate_password, or not a certificate file"
            % path)
    return key, cert


class _FederatedAssertion:
    """The workload-identity token, read from its file at each token request.

    Kubernetes and CI systems rotate that file, so it must not be cached.
    """

    def __init__(self, path):
        self.path = path

    def __call__(self):
        try:
            with open(self.path) as handle:
                token = handle.read().strip()
        except (IOError, OSError) as exc:
            raise AuthenticationError("cannot read federated_token_file %s: %s" % (self.path, exc.strerror or exc))
        if not token:
            raise AuthenticationError("federated_token_file %s is empty" % self.path)
        return token


class StaticTokenProvider:
    """A pre-acquired access token: no Entra ID call, and nothing to refresh."""

    token_requests = 0

    def __init__(self, token):
        self._token = token

    def get(self):
        return 0, self._token

    def refresh(self, generation):
        raise AuthenticationError(
            "The Defender API rejected the given access_token (HTTP 401): it has expired or was issued for "
            "another audience. Acquire a new token for the scope of your cloud, or use app credentials instead.")


class MsalTokenProvider:
    """Client-credentials tokens from Entra ID through MSAL.

    Thread-safe; a token is requested once and shared by all workers. ``refresh`` after a 401
    fetches one new token however many workers saw the 401 at the same time (generations).
    """

    def __init__(self, settings, http_client):
        if msal is None:
            raise ConfigurationError("the Python library 'msal' is required for app credentials; install msal>=1.35")
        self._settings = settings
        self._http_client = http_client
        self._lock = threading.Lock()
        self._app = None
        self._token = None
        self._generation = 0
        self._error = None
        self.token_requests = 0

    def _credential(self):
        settings = self._settings
        if settings.client_certificate_path:
            return load_certificate(settings.client_certificate_path, settings.client_certificate_password)
        if settings.federated_token_file:
            return {'client_assertion': _FederatedAssertion(settings.federated_token_file)}
        return settings.client_secret

    def _build_app(self):
        settings = self._settings
        kwargs = dict(
            client_credential=self._credential(),
            authority='%s/%s' % (settings.authority_url, settings.tenant_id),
            http_client=self._http_client,
            timeout=settings.timeout,
        )
        if not settings.instance_discovery:
            # A private or emulated authority: MSAL would otherwise ask Microsoft's public
            # instance-discovery endpoint whether the host is a valid authority.
            kwargs['instance_discovery'] = False
        # The constructor already performs OIDC discovery over the network; the transport
        # turns TLS/connection failures into clear errors.
        try:
            return msal.ConfidentialClientApplication(settings.client_id, **kwargs)
        except ValueError as exc:
            raise AuthenticationError(self._discovery_error(kwargs['authority'], exc))

    def _discovery_error(self, authority, exc):
        """MSAL drops Entra's error body when OIDC discovery fails; fetch it again for the AADSTS code."""
        try:
            body = self._http_client.get(authority + '/v2.0/.well-known/openid-configuration').json()
        except Exception:  # pylint: disable=broad-except
            body = None
        if isinstance(body, dict) and body.get('error'):
            return entra_error_message(body)
        return ("Cannot use the authority %s: %s. Check tenant_id, authority_url and cloud."
                % (authority, str(exc).splitlines()[0]))

    def _acquire(self):
        if self._app is None:
            self._app = self._build_app()
        self.token_requests += 1
        result = self._app.acquire_token_for_client(scopes=[self._settings.scope])
        if 'access_token' not in result:
            raise AuthenticationError(entra_error_message(result))
        self._token = result['access_token']
        self._generation += 1

    def get(self):
        with self._lock:
            if self._error is not None:
                raise self._error  # the other workers must not ask Entra ID again
            if self._token is None:
                try:
                    self._acquire()
                except Exception as exc:
                    self._error = exc
                    raise
            return self._generation, self._token

    def refresh(self, generation):
        """Replace the token the caller saw rejected; return the current ``(generation, token)``."""
        with self._lock:
            if generation == self._generation:
                # MSAL would answer from its cache; drop the rejected token first.
                self._app.remove_tokens_for_client()
                self._acquire()
            return self._generation, self._token


def token_provider(settings, http_client):
    if settings.access_token:
        return StaticTokenProvider(settings.access_token)
    return MsalTokenProvider(settings, http_client)
