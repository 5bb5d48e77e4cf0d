# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared connection options: one definition for modules and plugins.

Internal to the collection; the API may change in any release.

Modules get their argument spec from ``argument_spec()`` (with ``env_fallback``); lookups
read the same options through Ansible's config system (``env``/``ini``/``vars`` declared in
the ``defender.tvm.connection.plugins`` doc fragment). Both then go through ``OptionAdapter``
and ``Settings.from_adapter`` so that defaults per cloud, validation and error messages are
written once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.six.moves.urllib.parse import urlsplit

from ansible_collections.defender.tvm.plugins.module_utils.errors import ConfigurationError

COLLECTION_VERSION = '1.1.0'

# Cloud -> (authority host, API host, token scope).
# Public: the docs' app-only flow asks for the legacy audience
# https://api.securitycenter.microsoft.com/.default while the current API host is
# api.security.microsoft.com; that audience is accepted on both hosts.
# US Government (defender-endpoint/gov.md, section "API"): GCC signs in on the commercial
# authority, GCC High and DoD on login.microsoftonline.us. Microsoft does not document the
# gov token scope; like msticpy (Microsoft OSS) we use "<gov API host>/.default".
CLOUDS = {
    'public': ('https://login.microsoftonline.com', 'https://api.security.microsoft.com',
               'https://api.securitycenter.microsoft.com/.default'),
    'gcc': ('https://login.microsoftonline.com', 'https://api-gcc.securitycenter.microsoft.us',
            'https://api-gcc.securitycenter.microsoft.us/.default'),
    'gcc_high': ('https://login.microsoftonline.us', 'https://api-gov.securitycenter.microsoft.us',
                 'https://api-gov.securitycenter.microsoft.us/.default'),
    'dod': ('https://login.microsoftonline.us', 'https://api-gov.securitycenter.microsoft.us',
            'https://api-gov.securitycenter.microsoft.us/.default'),
}

# The single definition of the shared options. ``env`` is in precedence order (first wins).
# The MDE_* names come first so that a collection-specific setting beats a generic Azure one.
OPTIONS = {
    'tenant_id': dict(type='str', env=['MDE_TENANT_ID', 'AZURE_TENANT_ID']),
    'client_id': dict(type='str', env=['MDE_CLIENT_ID', 'AZURE_CLIENT_ID']),
    'client_secret': dict(type='str', no_log=True, env=['MDE_CLIENT_SECRET', 'AZURE_CLIENT_SECRET']),
    'client_certificate_path': dict(type='path', env=['MDE_CLIENT_CERTIFICATE_PATH', 'AZURE_CLIENT_CERTIFICATE_PATH']),
    'client_certificate_password': dict(type='str', no_log=True,
                                        env=['MDE_CLIENT_CERTIFICATE_PASSWORD', 'AZURE_CLIENT_CERTIFICATE_PASSWORD']),
    'federated_token_file': dict(type='path', env=['MDE_FEDERATED_TOKEN_FILE', 'AZURE_FEDERATED_TOKEN_FILE']),
    'access_token': dict(type='str', no_log=True, env=['MDE_ACCESS_TOKEN']),
    'cloud': dict(type='str', default='public', choices=sorted(CLOUDS), env=['MDE_CLOUD']),
    'api_url': dict(type='str', env=['MDE_API_URL']),
    'authority_url': dict(type='str', env=['MDE_AUTHORITY_URL', 'AZURE_AUTHORITY_HOST']),
    'scope': dict(type='str', env=['MDE_SCOPE']),
    'validate_certs': dict(type='bool', default=True, env=['MDE_VALIDATE_CERTS']),
    'ca_path': dict(type='path', env=['MDE_CA_PATH']),
    'timeout': dict(type='float', default=30, env=['MDE_TIMEOUT']),
    'max_concurrency': dict(type='int', default=8, env=['MDE_MAX_CONCURRENCY']),
    'requests_per_minute': dict(type='int', default=100, env=['MDE_REQUESTS_PER_MINUTE']),
    'max_retries': dict(type='int', default=5, env=['MDE_MAX_RETRIES']),
}

MAX_CONCURRENCY_LIMIT = 64
CREDENTIAL_OPTIONS = ('client_secret', 'client_certificate_path', 'federated_token_file')

_TENANT_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9.-]*$')

NO_CREDENTIALS_MSG = (
    "No Defender credentials were given. Set tenant_id and client_id plus one of client_secret, "
    "client_certificate_path or federated_token_file (environment: MDE_TENANT_ID, MDE_CLIENT_ID, "
    "MDE_CLIENT_SECRET, MDE_CLIENT_CERTIFICATE_PATH, MDE_FEDERATED_TOKEN_FILE, or the AZURE_* names), "
    "or give a pre-acquired access_token (MDE_ACCESS_TOKEN)."
)


def argument_spec():
    """The module argument spec for the shared options, with environment fallbacks."""
    spec = {}
    for name, definition in OPTIONS.items():
        entry = dict((k, v) for k, v in definition.items() if k != 'env')
        # Ansible applies fallbacks before defaults, so MDE_TIMEOUT still beats the default.
        entry['fallback'] = (env_fallback, definition['env'])
        spec[name] = entry
    return spec


class OptionAdapter:
    """Read options the same way from a module's params, a plugin's config, or a dict (tests)."""

    def __init__(self, getter):
        self._getter = getter

    @classmethod
    def from_dict(cls, values):
        return cls(values.get)

    @classmethod
    def from_module(cls, module):
        return cls(module.params.get)

    @classmethod
    def from_plugin(cls, plugin):
        return cls(plugin.get_option)

    def get(self, name):
        value = self._getter(name)
        if isinstance(value, str) and not value.strip():
            return None  # an empty env var or '' means "not set", not "set to empty"
        return value


def _to_bool(name, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('1', 'true', 'yes', 'on', 'y', 't'):
        return True
    if text in ('0', 'false', 'no', 'off', 'n', 'f'):
        return False
    raise ConfigurationError("%s must be a boolean, got %r" % (name, value))


def _to_number(name, value, kind, minimum, maximum=None):
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError("%s must be a number, got %r" % (name, value))
    if number < minimum or (maximum is not None and number > maximum):
        bounds = ">= %s" % minimum if maximum is None else "between %s and %s" % (minimum, maximum)
        raise ConfigurationError("%s must be %s, got %s" % (name, bounds, value))
    return number


def _https_url(name, value):
    """Normalise a base URL; AZURE_AUTHORITY_HOST is often a bare host name."""
    value = value.strip().rstrip('/')
    if '://' not in value:
        value = 'https://' + value
    parts = urlsplit(value)
    if parts.scheme.lower() != 'https' or not parts.netloc:
        raise ConfigurationError(
            "%s must be an https:// URL, got %r: tokens are never sent over plain HTTP" % (name, value))
    return value


class Settings:
    """Validated, resolved connection settings. Built before any network call."""

    def __init__(self, **values):
        self.__dict__.update(values)

    @classmethod
    def from_adapter(cls, adapter):
        get = adapter.get
        cloud = get('cloud') or OPTIONS['cloud']['default']
        if cloud not in CLOUDS:
            raise ConfigurationError("cloud must be one of %s, got %r" % (', '.join(sorted(CLOUDS)), cloud))
        authority_default, api_default, scope_default = CLOUDS[cloud]

        authority_url = _https_url('authority_url', get('authority_url') or authority_default)
        api_url = _https_url('api_url', get('api_url') or api_default)
        if api_url.lower().endswith('/api'):
            api_url = api_url[:-4]  # users paste the documented ".../api" prefix; paths add it

        def number(name, kind, minimum, maximum=None):
            value = get(name)
            if value is None:
                value = OPTIONS[name]['default']
            return _to_number(name, value, kind, minimum, maximum)

        validate_certs = get('validate_certs')
        settings = cls(
            cloud=cloud,
            tenant_id=get('tenant_id'),
            client_id=get('client_id'),
            client_secret=get('client_secret'),
            client_certificate_path=get('client_certificate_path'),
            client_certificate_password=get('client_certificate_password'),
            federated_token_file=get('federated_token_file'),
            access_token=get('access_token'),
            authority_url=authority_url,
            # MSAL's instance discovery only knows Microsoft's own hosts.
            instance_discovery=authority_url.lower() == authority_default,
            api_url=api_url,
            scope=(get('scope') or scope_default).strip(),
            validate_certs=True if validate_certs is None else _to_bool('validate_certs', validate_certs),
            ca_path=get('ca_path'),
            timeout=number('timeout', float, 0.001),
            max_concurrency=number('max_concurrency', int, 1, MAX_CONCURRENCY_LIMIT),
            requests_per_minute=number('requests_per_minute', int, 0),
            max_retries=number('max_retries', int, 0, 50),
        )
        settings._validate()
        return settings

    @property
    def verify(self):
        """The value for requests' ``verify``: a CA bundle path, or a bool."""
        if not self.validate_certs:
            return False
        return self.ca_path or True

    @property
    def credential_type(self):
        if self.access_token:
            return 'access_token'
        for name in CREDENTIAL_OPTIONS:
            if getattr(self, name):
                return name
        return None

    def _validate(self):
        if self.ca_path and self.validate_certs and not os.path.isfile(self.ca_path):
            raise ConfigurationError("ca_path %s is not a readable file" % self.ca_path)
        if self.access_token:
            # A pre-acquired token skips Entra ID entirely; app credentials are not used.
            return
        given = [name for name in CREDENTIAL_OPTIONS if getattr(self, name)]
        if not given:
            raise ConfigurationError(NO_CREDENTIALS_MSG)
        if len(given) > 1:
            raise ConfigurationError(
                "Give exactly one credential, not %s (check the MDE_* and AZURE_* environment variables "
                "too): client_secret, client_certificate_path and federated_token_file are alternatives."
                % ' and '.join(given))
        missing = [name for name in ('tenant_id', 'client_id') if not getattr(self, name)]
        if missing:
            raise ConfigurationError(
                "%s %s required with %s (environment: %s)." % (
                    ' and '.join(missing), 'is' if len(missing) == 1 else 'are', given[0],
                    ', '.join('MDE_%s or AZURE_%s' % (m.upper(), m.upper()) for m in missing)))
        if not _TENANT_RE.match(self.tenant_id):
            raise ConfigurationError(
                "tenant_id must be a directory (tenant) ID or a domain such as contoso.onmicrosoft.com, got %r"
                % self.tenant_id)
        for name in ('client_certificate_path', 'federated_token_file'):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise ConfigurationError("%s %s does not exist or is not a file" % (name, path))
