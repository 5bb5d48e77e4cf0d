# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS verification (ca_path beats REQUESTS_CA_BUNDLE, for the API and the token endpoint) and proxies."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
import requests

from ansible_collections.defender.tvm.tests.integration.helpers import ConnectProxy

pytestmark = pytest.mark.representative

ID = ['microsoft-_-windows_11']
PUBLIC_BUNDLE = requests.certs.where()  # a real CA bundle that does not trust the emulator's CA


def env_with(ansible, **changes):
    env = ansible.credentials()
    env.update(REQUESTS_CA_BUNDLE=PUBLIC_BUNDLE, CURL_CA_BUNDLE=PUBLIC_BUNDLE)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_ca_path_wins_over_requests_ca_bundle(ansible, emulator, playbook):
    run = ansible.run(playbook, env=env_with(ansible), extra_vars={'software_ids': ID, 'terms': ID})
    assert run.rc == 0 and not run.result.get('failed'), run
    assert emulator.stats()['token_requests'] == 1  # the token endpoint was verified with ca_path too


@pytest.mark.parametrize('playbook', ['module', 'lookup'])
def test_an_untrusted_certificate_is_a_clear_certificate_error(ansible, emulator, playbook):
    run = ansible.run(playbook, env=env_with(ansible, MDE_CA_PATH=None), extra_vars={'software_ids': ID, 'terms': ID})
    assert run.result['failed'] is True
    message = run.result['msg']
    assert 'certificate problem' in message and 'ca_path' in message and 'validate_certs' in message
    assert 'Traceback' not in message
    assert emulator.stats()['token_requests'] == 0


def test_validate_certs_false_turns_verification_off(ansible, emulator):
    run = ansible.run('module', env=env_with(ansible, MDE_CA_PATH=None, MDE_VALIDATE_CERTS='false'),
                      extra_vars={'software_ids': ID})
    assert run.rc == 0 and not run.result.get('failed'), run


def test_https_proxy_from_the_environment(ansible, emulator):
    proxy = ConnectProxy()
    try:
        run = ansible.run('module', env=env_with(ansible, HTTPS_PROXY=proxy.url), extra_vars={'software_ids': ID})
    finally:
        proxy.close()
    assert run.rc == 0 and not run.result.get('failed'), run
    target = emulator.url.split('://', 1)[1]
    assert proxy.tunnels and set(proxy.tunnels) == {target}
    assert emulator.stats()['token_requests'] == 1 and emulator.stats()['api_requests'] == 1
