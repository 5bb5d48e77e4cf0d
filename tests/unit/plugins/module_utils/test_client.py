# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

import pytest

from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient, clean_ids, path_segment
from ansible_collections.defender.tvm.plugins.module_utils._errors import ConfigurationError, PermissionDeniedError, ResponseError
from ansible_collections.defender.tvm.tests.unit.helpers import FakeSession, FakeTokens, make_response, make_settings


@pytest.mark.parametrize('value,encoded', [
    ('microsoft-_-edge', 'microsoft-_-edge'),
    ('notepad_plus_plus-_-notepad++', 'notepad_plus_plus-_-notepad%2B%2B'),
    ('microsoft-_-edge_chromium-based', 'microsoft-_-edge_chromium-based'),
    ('microsoft-_-.net_framework', 'microsoft-_-.net_framework'),
    ('x/../../machines/abc', 'x%2F..%2F..%2Fmachines%2Fabc'),
    ('a b?c#d%e', 'a%20b%3Fc%23d%25e'),
    (' microsoft-_-edge ', 'microsoft-_-edge'),
])
def test_ids_are_one_encoded_segment(value, encoded):
    assert path_segment(value) == encoded
    assert '/' not in path_segment(value)


@pytest.mark.parametrize('value,message', [
    ('', 'must not be empty or blank'), ('   ', 'must not be empty or blank'), ('.', 'not a valid ID'),
    ('..', 'not a valid ID'), ('a\nb', 'control characters'), (None, 'must be a string'), (42, 'must be a string'),
])
def test_unsafe_ids_are_refused(value, message):
    with pytest.raises(ConfigurationError, match=message):
        path_segment(value, 'software_ids')


def test_clean_ids_validates_all_first_and_drops_repeats():
    assert clean_ids(['a-_-b', ' a-_-b', 'c-_-d'], 'software_ids') == ['a-_-b', 'c-_-d']
    with pytest.raises(ConfigurationError, match='at least one'):
        clean_ids([], 'software_ids')
    with pytest.raises(ConfigurationError, match='empty'):
        clean_ids(['a-_-b', ''], 'software_ids')


def client_with(answers, **options):
    client = DefenderClient(make_settings(**options))
    client.transport.session = FakeSession(answers)
    client.transport.tokens = FakeTokens()
    return client


def test_url_building_with_query_parameters():
    client = DefenderClient(make_settings(api_url='https://eu.api.security.microsoft.com'))
    url = client.url('Software', ('software ID', 'notepad_plus_plus-_-notepad++'), 'machineReferences')
    assert url == 'https://eu.api.security.microsoft.com/api/Software/notepad_plus_plus-_-notepad%2B%2B/machineReferences'
    url = client.url('Software', **{'$filter': "vendor eq 'microsoft'", '$top': 10, '$skip': None})
    assert url == "https://eu.api.security.microsoft.com/api/Software?$filter=vendor%20eq%20'microsoft'&$top=10"


def test_paging_follows_next_links_on_the_api_host():
    base = 'https://api.security.microsoft.com/api/Software/x/getmissingkbs'
    client = client_with([
        make_response(200, {'value': [{'id': '1'}], '@odata.nextLink': base + '?$skiptoken=a'}),
        make_response(200, {'value': [{'id': '2'}], '@odata.nextLink': base + '?$skiptoken=b'}),
        make_response(200, {'value': [{'id': '3'}]}),
    ])
    assert [i['id'] for i in client.get_collection(base, 'x', 'Software.Read.All')] == ['1', '2', '3']
    assert [c[0] for c in client.transport.session.calls][1:] == [base + '?$skiptoken=a', base + '?$skiptoken=b']


@pytest.mark.parametrize('link', ['https://evil.example/api/x', 'http://api.security.microsoft.com/api/x',
                                  'https://api.security.microsoft.com:8443/api/x'])
def test_next_links_elsewhere_are_refused_before_the_token_is_sent(link):
    client = client_with([make_response(200, {'value': [], '@odata.nextLink': link})])
    with pytest.raises(ResponseError, match='another host'):
        client.get_collection('https://api.security.microsoft.com/api/x', 'x', 'Software.Read.All')
    assert len(client.transport.session.calls) == 1


def test_a_looping_next_link_stops():
    url = 'https://api.security.microsoft.com/api/x'
    client = client_with([make_response(200, {'value': [], '@odata.nextLink': url + '?p=1'})] * 3)
    with pytest.raises(ResponseError, match='same @odata.nextLink twice'):
        client.get_collection(url, 'x', 'Software.Read.All')


def test_a_body_without_value_is_an_error():
    client = client_with([make_response(200, {'id': 'entity'})])
    with pytest.raises(ResponseError, match="no OData collection"):
        client.get_collection('https://api.security.microsoft.com/api/x', 'Listing', 'Software.Read.All')


def test_map_keeps_input_order_and_runs_concurrently():
    client = DefenderClient(make_settings(max_concurrency=4))
    barrier = threading.Barrier(4, timeout=10)  # only passes if 4 calls run at the same time

    def work(item):
        if item < 4:
            barrier.wait()
        return item * 10

    assert client.map(work, list(range(10))) == [i * 10 for i in range(10)]


def test_map_raises_the_helpful_error_and_stops_queued_work():
    client = DefenderClient(make_settings(max_concurrency=2))
    started = []

    def work(item):
        started.append(item)
        if item == 1:
            raise PermissionDeniedError('needs Software.Read.All')
        return item

    with pytest.raises(PermissionDeniedError):
        client.map(work, list(range(50)))
    assert len(started) < 50


def test_close_warns_once_when_the_run_was_throttled():
    warnings = []
    client = DefenderClient(make_settings(), warn=warnings.append)
    client.close()
    assert warnings == []  # nothing to say
    client = DefenderClient(make_settings(), warn=warnings.append)
    client.transport.retries, client.transport.throttled, client.transport.waited = 3, 2, 9.5
    client.close()
    assert len(warnings) == 1 and 'throttled 2 requests (HTTP 429), waited 9.5 s in all and retried 3 times' in warnings[0]
