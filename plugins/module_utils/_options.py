# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared connection options: one definition for modules and plugins.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.

Modules get their argument spec from ``argument_spec()`` (with ``env_fallback``); lookups
read the same options through Ansible's config system (``env``/``ini``/``vars`` declared in
the ``defender.tvm.connection.plugins`` doc fragment). Both then go through ``OptionAdapter``
and ``Settings.from_adapter`` so that defaults per cloud, validation and error messages are
written once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os
import re

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.six.moves.urllib.parse import urlsplit, urlunsplit

from ansible_collections.defender.tvm.plugins.module_utils._errors import ConfigurationError

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

# Variables that set the options for lookups and action plugins: ansible_mde_<option>.
VARIABLE_PREFIX = 'ansible_mde_'

MAX_CONCURRENCY_LIMIT = 64
CREDENTIAL_OPTIONS = ('client_secret', 'client_certificate_path', 'federated_token_file')
# The credential is taken as a whole from one source (see Settings._credential), so that an
# explicit client_certificate_path is not mixed with an exported MDE_CLIENT_SECRET: the access
# token or the app credentials, and the certificate's password with its certificate.
CREDENTIAL_GROUP = ('access_token',) + CREDENTIAL_OPTIONS + ('client_certificate_password',)

# Where an option's value came from, in precedence order (lower wins).
TASK, VARIABLES, MDE_ENVIRONMENT, AZURE_ENVIRONMENT, ANSIBLE_CFG = range(5)
SOURCE_NAMES = {
    TASK: "the task's options (its arguments, module_defaults, a lookup's keywords)",
    VARIABLES: 'the ansible_mde_* variables',
    MDE_ENVIRONMENT: 'the MDE_* environment variables',
    AZURE_ENVIRONMENT: 'the AZURE_* environment variables',
    ANSIBLE_CFG: 'the [defender_tvm] section of ansible.cfg',
}

_TENANT_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9.-]*$')
_HOST_LABEL_RE = re.compile(r'^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$')

NO_CREDENTIALS_MSG = (
    "No Defender credentials were given. Set tenant_id and client_id plus one of client_secret, "
    "client_certificate_path or federated_token_file (environment: MDE_TENANT_ID, MDE_CLIENT_ID, "
    "MDE_CLIENT_SECRET, MDE_CLIENT_CERTIFICATE_PATH, MDE_FEDERATED_TOKEN_FILE, or the AZURE_* names), "
    "or give a pre-acquired access_token (MDE_ACCESS_TOKEN)."
)


def argument_spec(late_binding=False):
    """The module argument spec for the shared options, with environment fallbacks.

    The credential options have none: the adapter reads their environment variables late, so
    that it knows which values were given explicitly (see CREDENTIAL_GROUP). With
    ``late_binding`` (action plugins, whose ansible_mde_* variables rank above the environment)
    no option has a fallback or a default: OptionAdapter.from_action and Settings supply them.
    """
    spec = {}
    for name, definition in OPTIONS.items():
        entry = dict((k, v) for k, v in definition.items() if k != 'env')
        if late_binding:
            entry.pop('default', None)
        elif name not in CREDENTIAL_GROUP:
            # Ansible applies fallbacks before defaults, so MDE_TIMEOUT still beats the default.
            entry['fallback'] = (env_fallback, definition['env'])
        spec[name] = entry
    return spec


def _unset(value):
    # an empty env var or '' means "not set", not "set to empty"
    return value is None or (isinstance(value, str) and not value.strip())


def _from_environment(name, environ):
    """``(value, source)`` of the first of the option's environment variables that is set."""
    for variable in OPTIONS[name]['env']:
        value = environ.get(variable)
        if not _unset(value):
            return value, MDE_ENVIRONMENT if variable.startswith('MDE_') else AZURE_ENVIRONMENT
    return None, None


def _plugin_source(origin):
    """The source of a value from Ansible's config origin (``env: MDE_X``, an ini file path, ``default``)."""
    if origin == 'default':
        return None
    if origin == 'Direct':
        return TASK
    if origin.startswith('var: '):
        return VARIABLES
    if origin.startswith('env: '):
        return MDE_ENVIRONMENT if origin[5:].startswith('MDE_') else AZURE_ENVIRONMENT
    return ANSIBLE_CFG


class OptionAdapter:
    """Read options the same way from a module's params, a plugin's config, or a dict (tests).

    ``lookup(name)`` gives the value and its source (TASK, VARIABLES, MDE_ENVIRONMENT, ...); only
    the credential options need the source, the others resolve per option as Ansible does.
    """

    def __init__(self, lookup):
        self._lookup = lookup

    @classmethod
    def from_dict(cls, values, environ=None):
        """The task's ``values``; the credential options also from ``environ``, as for a module."""
        return cls(_late_binding(lambda name: (values.get(name), TASK), environ or {}))

    @classmethod
    def from_module(cls, module):
        return cls(_late_binding(lambda name: (module.params.get(name), TASK), os.environ))

    @classmethod
    def from_action(cls, args, variables, environ=None):
        """An action plugin's options: its task arguments (``module_defaults`` included), then the
        ``ansible_mde_*`` variables (templated), then the environment."""
        def given(name):
            value = args.get(name)
            return (value, TASK) if not _unset(value) else (variables.get(VARIABLE_PREFIX + name), VARIABLES)
        return cls(_late_binding(given, os.environ if environ is None else environ, OPTIONS))

    @classmethod
    def from_plugin(cls, plugin, keywords, variables):
        """A lookup's options; ``keywords`` and ``variables`` name those given as its keyword arguments
        and as ansible_mde_* variables (Ansible's config resolved them, with the environment and
        ansible.cfg)."""
        def lookup(name):
            if name in keywords or name not in CREDENTIAL_GROUP:
                return plugin.get_option(name), TASK
            if name in variables:
                return plugin.get_option(name), VARIABLES
            # The environment or ansible.cfg; Ansible's config origin says which.
            value, origin = plugin.get_option_and_origin(name)
            return value, _plugin_source(origin)
        return cls(lookup)

    def lookup(self, name):
        value, source = self._lookup(name)
        return (None, None) if _unset(value) else (value, source)

    def get(self, name):
        return self.lookup(name)[0]


def _late_binding(given, environ, names=CREDENTIAL_GROUP):
    """``given(name)`` is ``(value, source)``; for ``names`` an unset value is looked up in the
    environment variables of the option (first wins)."""
    def lookup(name):
        value, source = given(name)
        if _unset(value) and name in names:
            return _from_environment(name, environ)
        return value, source
    return lookup


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


def _valid_host(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.rstrip('.').split('.')
        return len(host) <= 253 and all(_HOST_LABEL_RE.match(label) for label in labels)


def _https_url(name, value, example, path_allowed):
    """A base URL, checked before any network call: https, a valid host and port, no query.

    A bare host name (``login.microsoftonline.com``, as AZURE_AUTHORITY_HOST and Microsoft's list
    of regional API hosts give it) gets ``https://``; anything else must be a whole https URL.
    """
    text = str(value).strip()
    wrong = "%s must be an https:// URL such as %s (or a bare host name), got %r" % (name, example, text)
    if any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise ConfigurationError("%s: it contains whitespace or control characters" % wrong)
    if '://' not in text:
        host = text.rstrip('/')
        if not re.match(r'^[A-Za-z0-9.-]+(:[0-9]+)?$', host) or not _valid_host(host.split(':', maxsplit=1)[0]):
            raise ConfigurationError(wrong)
        text = 'https://' + host
    parts = urlsplit(text)
    if parts.scheme.lower() != 'https':
        raise ConfigurationError(
            "%s must be an https:// URL, got %r: tokens are never sent over plain HTTP" % (name, text))
    if '@' in parts.netloc:
        raise ConfigurationError("%s must not contain a user name or password, got a URL with '@' in its host" % name)
    try:
        valid_port = parts.port is None or 0 < parts.port
    except ValueError:  # not a number, or out of range
        valid_port = False
    if not valid_port:
        raise ConfigurationError("%s has an invalid port, got %r" % (name, text))
    if not parts.hostname or not _valid_host(parts.hostname):
        raise ConfigurationError(wrong)
    if parts.query or parts.fragment or text.endswith(('?', '#')):
        raise ConfigurationError("%s must not have a query or a fragment (the part from '?' or '#'), got %r"
                                 % (name, text))
    path = parts.path.rstrip('/')
    if path and not path_allowed:
        raise ConfigurationError("%s must be the host only, without a path, got %r (the tenant is added from "
                                 "tenant_id)" % (name, text))
    return urlunsplit(('https', parts.netloc, path, '', ''))


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

        authority_url = _https_url('authority_url', get('authority_url') or authority_default, authority_default,
                                   path_allowed=False)
        api_url = _https_url('api_url', get('api_url') or api_default, api_default, path_allowed=True)
        if api_url.lower().endswith('/api'):
            api_url = api_url[:-4]  # users paste the documented ".../api" prefix; paths add it

        def number(name, kind, minimum, maximum=None):
            value = get(name)
            if value is None:
                value = OPTIONS[name]['default']
            return _to_number(name, value, kind, minimum, maximum)

        validate_certs = get('validate_certs')
        credential_source, credential = cls._credential(adapter)
        settings = cls(
            cloud=cloud,
            tenant_id=get('tenant_id'),
            client_id=get('client_id'),
            credential_source=credential_source,
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
            **credential
        )
        settings._validate()
        return settings

    @staticmethod
    def _credential(adapter):
        """``(source, values)``: every option of CREDENTIAL_GROUP from the first source that sets a
        credential (the task's options, then ansible_mde_* variables, then MDE_*, then AZURE_*, then
        ansible.cfg); None for the rest.

        Options given explicitly must win over an exported credential of another kind, as a whole:
        the "exactly one credential" rule then applies within that one source.
        """
        by_source = {}
        for name in CREDENTIAL_GROUP:
            value, source = adapter.lookup(name)
            if value is not None:
                by_source.setdefault(source, {})[name] = value
        chosen = None
        for source in sorted(by_source):
            if any(name in by_source[source] for name in CREDENTIAL_GROUP[:-1]):  # not just a password
                chosen = source
                break
        values = dict((name, by_source.get(chosen, {}).get(name)) for name in CREDENTIAL_GROUP)
        if not values['client_certificate_path']:
            values['client_certificate_password'] = None
        elif values['client_certificate_password'] is None:
            # A password given more explicitly than its certificate goes with it (the path exported,
            # the password from a vault variable); one from a less explicit source never does.
            values['client_certificate_password'] = next(
                (by_source[source]['client_certificate_password'] for source in sorted(by_source)
                 if source < chosen and 'client_certificate_password' in by_source[source]), None)
        return chosen, values

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
                "Give exactly one credential, not %s (all from %s): client_secret, client_certificate_path "
                "and federated_token_file are alternatives." % (' and '.join(given), SOURCE_NAMES[self.credential_source]))
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
