# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The defender.tvm.missing_kbs lookup, loaded by Ansible's plugin loader and run with a stubbed API.

``defender_api`` (tests/unit/plugins/conftest.py) answers the client's GETs; ``client_settings``
records the Settings each client was built with, which is where the options end up.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

import pytest
import yaml

from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader
from ansible.template import Templar

from ansible_collections.defender.tvm.plugins.module_utils._errors import AuthenticationError, PermissionDeniedError

try:  # ansible-core >= 2.19 templates only trusted strings, as variables from the inventory are
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19 templates every string
    def trust_as_template(value):
        return value

pytestmark = pytest.mark.usefixtures('clean_environment')

TENANT = '11111111-2222-3333-4444-555555555555'
CLIENT = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'
CREDENTIALS = dict(tenant_id=TENANT, client_id=CLIENT, client_secret='unit-client-secret-value')
EDGE, WINDOWS = 'microsoft-_-edge', 'microsoft-_-windows_11'


def fix(kb, cves, missed=1, products=('windows_11',)):
    """A missing-KB record as Defender sends it (PublicProductFixDto)."""
    return {'id': kb, 'name': 'Update %s' % kb, 'productsNames': list(products),
            'url': 'https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB%s' % kb,
            'machineMissedOn': missed, 'cveAddressed': cves}


def record(kb, cves, missed, products, software_id):
    """What the lookup returns for that record."""
    return {'id': kb, 'kb': 'KB' + kb, 'name': 'Update %s' % kb, 'products_names': list(products),
            'url': 'https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB%s' % kb,
            'machine_missed_on': missed, 'cve_addressed': cves, 'software_id': software_id}


def load(variables=None):
    loader = DataLoader()
    return lookup_loader.get('defender.tvm.missing_kbs', loader=loader, templar=Templar(loader=loader, variables=variables))


@pytest.fixture
def api(defender_api):
    defender_api.routes.update({
        'Software/%s/getmissingkbs' % EDGE: [fix('1001', 3, 240, ['edge']), fix('1002', 14, 10, ['edge'])],
        'Software/%s/getmissingkbs' % WINDOWS: [fix('1002', 9, 50)],
    })
    return defender_api


@pytest.fixture
def warnings(monkeypatch):
    """The warnings the lookup shows (through its module's Display)."""
    lookup_module = sys.modules[type(load()).__module__]
    shown = []
    monkeypatch.setattr(lookup_module.display, 'warning', lambda msg, *args, **kwargs: shown.append(msg))
    return shown


def test_the_loader_finds_the_lookup_by_its_fqcn():
    lookup = load()
    assert lookup is not None
    assert type(lookup).__module__ == 'ansible_collections.defender.tvm.plugins.lookup.missing_kbs'


def test_terms_are_flattened_and_each_record_carries_its_software_id(api):
    lookup = load()
    records = lookup.run([[EDGE, WINDOWS], ' %s ' % EDGE], {}, **CREDENTIALS)

    # repeated IDs are queried once; one record per KB per software ID, most CVEs first per ID
    assert sorted(api.paths()) == ['Software/%s/getmissingkbs' % EDGE, 'Software/%s/getmissingkbs' % WINDOWS]
    assert records == [record('1002', 14, 10, ['edge'], EDGE), record('1001', 3, 240, ['edge'], EDGE),
                       record('1002', 9, 50, ['windows_11'], WINDOWS)]
    documented = yaml.safe_load(sys.modules[type(lookup).__module__].RETURN)
    assert set(records[0]) == set(documented['_raw']['contains'])


def test_a_nested_list_inside_a_list_term_is_refused_before_any_request(api):
    with pytest.raises(AnsibleError) as exc_info:
        load().run([[EDGE, [WINDOWS]]], {}, **CREDENTIALS)
    assert 'software_ids must be a string' in str(exc_info.value)
    assert api.requests == []


@pytest.mark.parametrize('ignore_unknown', [False, True])
def test_unknown_ids_fail_or_are_skipped_with_a_warning(api, warnings, ignore_unknown):
    terms = [EDGE, 'contoso-_-nothing', 'fabrikam-_-nothing']
    if ignore_unknown:
        records = load().run(terms, {}, ignore_unknown=True, **CREDENTIALS)
        assert [r['software_id'] for r in records] == [EDGE, EDGE]
        assert warnings == ['Defender does not know these software IDs, skipped: contoso-_-nothing, fabrikam-_-nothing']
    else:
        with pytest.raises(AnsibleError) as exc_info:
            load().run(terms, {}, **CREDENTIALS)
        assert 'Defender does not know 2 software IDs: contoso-_-nothing, fabrikam-_-nothing' in str(exc_info.value)
        assert warnings == []


@pytest.mark.parametrize('error', [
    AuthenticationError('Entra ID refused the token request (invalid_client). Fix: check client_secret'),
    PermissionDeniedError('Getting the missing KBs failed with HTTP 403: the app needs Software.Read.All'),
])
def test_a_defender_error_becomes_an_ansible_error_without_its_cause(api, error):
    api.routes['Software/%s/getmissingkbs' % EDGE] = error
    with pytest.raises(AnsibleError) as exc_info:
        load().run([EDGE], {}, **CREDENTIALS)

    raised = exc_info.value
    assert str(error) in str(raised)
    assert raised.__cause__ is None and raised.__suppress_context__ is True  # "raise ... from None"
    assert getattr(raised, 'orig_exc', None) is None


VALID_CLOUDS = ('dod', 'gcc', 'gcc_high', 'public')


@pytest.mark.parametrize('kwargs,variables,environ', [
    (dict(cloud='moon'), {}, {}),
    ({}, dict(ansible_mde_cloud='moon'), {}),
    ({}, {}, dict(MDE_CLOUD='moon')),
])
def test_an_invalid_choice_lists_the_valid_values(api, monkeypatch, kwargs, variables, environ):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(AnsibleError) as exc_info:
        load().run([EDGE], variables, **dict(CREDENTIALS, **kwargs))

    message = str(exc_info.value)
    assert 'moon' in message and 'cloud' in message
    for cloud in VALID_CLOUDS:
        assert cloud in message
    assert exc_info.value.__cause__ is None
    assert api.requests == []


@pytest.mark.parametrize('kwargs,message', [
    (dict(timeout='soon'), 'timeout'),
    (dict(max_concurrency=0), 'max_concurrency must be between 1 and 64, got 0'),
    (dict(api_url='http://api.security.microsoft.com'), 'api_url must be an https:// URL'),
    (dict(client_secret=None), 'No Defender credentials were given'),
])
def test_bad_options_are_refused_before_any_request(api, kwargs, message):
    with pytest.raises(AnsibleError) as exc_info:
        load().run([EDGE], {}, **dict(CREDENTIALS, **kwargs))
    assert message in str(exc_info.value)
    assert api.requests == []


# where each option comes from: lookup keywords > ansible_mde_* variables > MDE_* > AZURE_* > defaults
@pytest.mark.parametrize('kwargs,variables,environ,expected', [
    (dict(tenant_id='tenant-kwarg'), dict(ansible_mde_tenant_id='tenant-var'), dict(MDE_TENANT_ID='tenant-env'),
     'tenant-kwarg'),
    ({}, dict(ansible_mde_tenant_id='tenant-var'), dict(MDE_TENANT_ID='tenant-env'), 'tenant-var'),
    ({}, {}, dict(MDE_TENANT_ID='tenant-mde', AZURE_TENANT_ID='tenant-azure'), 'tenant-mde'),
    ({}, {}, dict(AZURE_TENANT_ID='tenant-azure'), 'tenant-azure'),
])
def test_tenant_id_precedence(api, client_settings, monkeypatch, kwargs, variables, environ, expected):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    load().run([EDGE], variables, client_id=CLIENT, client_secret='s', **kwargs)
    assert [s.tenant_id for s in client_settings] == [expected]


@pytest.mark.parametrize('kwargs,variables,environ,expected', [
    (dict(timeout=11), dict(ansible_mde_timeout=22), dict(MDE_TIMEOUT='33'), 11.0),
    ({}, dict(ansible_mde_timeout=22), dict(MDE_TIMEOUT='33'), 22.0),
    ({}, {}, dict(MDE_TIMEOUT='33'), 33.0),
    ({}, {}, {}, 30.0),
])
def test_timeout_precedence(api, client_settings, monkeypatch, kwargs, variables, environ, expected):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    load().run([EDGE], variables, **dict(CREDENTIALS, **kwargs))
    assert [s.timeout for s in client_settings] == [expected]


def test_ansible_mde_variables_beat_the_environment_and_are_templated(api, client_settings, monkeypatch):
    monkeypatch.setenv('MDE_API_URL', 'https://env.example.test')
    monkeypatch.setenv('MDE_TENANT_ID', 'tenant-env')
    monkeypatch.setenv('MDE_CLIENT_ID', 'client-env')
    monkeypatch.setenv('MDE_CLIENT_SECRET', 'secret-env')
    variables = dict(ansible_mde_api_url='https://vars.example.test', ansible_mde_access_token=trust_as_template('{{ token }}'),
                     token='token-from-a-vault', unrelated='{{ undefined_variable }}')
    load(variables).run([EDGE], variables)

    settings, = client_settings
    assert settings.api_url == 'https://vars.example.test'
    assert api.requests[0].startswith('https://vars.example.test/api/')
    # the credential comes as a whole from the variables: the exported secret is not mixed in
    assert settings.credential_type == 'access_token'
    assert settings.access_token == 'token-from-a-vault'
    assert settings.client_secret is None
    assert settings.tenant_id == 'tenant-env'  # not given as a variable: the environment still applies


def test_ignore_unknown_is_not_a_connection_variable(api, warnings):
    # only ansible_mde_* variables are options; a plain 'ignore_unknown' variable changes nothing
    with pytest.raises(AnsibleError):
        load().run([EDGE, 'contoso-_-nothing'], dict(ignore_unknown=True), **CREDENTIALS)
    assert warnings == []
