# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import io

import pytest
import requests
from urllib3 import HTTPResponse

from ansible_collections.defender.tvm.plugins.module_utils._errors import (
    AuthenticationError,
    DownloadBrokenError,
    NotFoundError,
    PermissionDeniedError,
    ResponseError,
    SasExpiredError,
    TransportError,
)
from ansible_collections.defender.tvm.plugins.module_utils._transport import Transport, VerifyingSession
from ansible_collections.defender.tvm.tests.unit.helpers import FakeSession, FakeTokens, make_response, make_settings

URL = 'https://api.security.microsoft.com/api/Software/microsoft-_-edge/getmissingkbs'
OK = make_response(200, {'value': []})


def transport(answers, tokens=None, **options):
    sleeps = []
    now = [0.0]
    session = FakeSession(answers)
    t = Transport(make_settings(**options), session, tokens or FakeTokens(),
                  sleep=sleeps.append, clock=lambda: now[0])
    t.waits = []

    def advance(seconds):  # the pacer waits on a fake clock
        assert seconds is not None
        t.waits.append(seconds)
        now[0] += seconds

    t.pacer._wait = advance
    return t, session, sleeps


def call(t):
    return t.get_json(URL, 'Getting the missing KBs of software microsoft-_-edge', 'Software.Read.All',
                      resource_id='microsoft-_-edge')


def error_body(code, message):
    return {'error': {'code': code, 'message': message, 'target': 'c0ffee'}}


def test_success_sends_the_bearer_token():
    t, session, dummy = transport([OK])
    assert call(t) == {'value': []}
    assert session.calls[0][1]['Authorization'] == 'Bearer token-1'


def test_429_waits_as_retry_after_says_and_pauses_everyone():
    t, session, sleeps = transport([make_response(429, error_body('TooManyRequests', 'slow down'),
                                                  headers={'Retry-After': '7'}), OK])
    assert call(t) == {'value': []}
    assert t.pacer._paused_until == 7.0  # every worker waits, not only this one
    assert t.waits == [7.0]
    assert t.throttled == 1 and len(session.calls) == 2


def test_429_without_retry_after_still_backs_off():
    t, dummy, dummy2 = transport([make_response(429, {}), OK])
    call(t)
    assert t.pacer._paused_until >= 1.0


@pytest.mark.parametrize('status', [500, 502, 503, 504])
def test_transient_5xx_is_retried_with_exponential_backoff(status):
    t, session, sleeps = transport([make_response(status, {})] * 3 + [OK])
    assert call(t) == {'value': []}
    assert len(session.calls) == 4
    assert sleeps == [1.0, 2.0]  # urllib3 Retry: no wait before the 1st retry, then 0.5 * 2^n


def test_backoff_is_capped():
    t, dummy, sleeps = transport([make_response(503, {})] * 11 + [OK], max_retries=12)
    call(t)
    assert max(sleeps) == 30.0


def test_retries_are_bounded_and_the_error_says_so():
    t, session, dummy = transport([make_response(503, error_body('ServiceUnavailable', 'busy'))] * 3, max_retries=2)
    with pytest.raises(TransportError) as err:
        call(t)
    assert len(session.calls) == 3
    assert 'HTTP 503' in str(err.value) and 'after 3 attempts' in str(err.value) and 'busy' in str(err.value)


def test_persistent_429_suggests_lowering_the_rate():
    t, dummy, dummy2 = transport([make_response(429, {}, headers={'Retry-After': '1'})] * 2, max_retries=1)
    with pytest.raises(TransportError, match='requests_per_minute'):
        call(t)


def test_connection_errors_are_retried():
    t, session, dummy = transport([requests.exceptions.ConnectionError('reset'), OK])
    assert call(t) == {'value': []}
    assert len(session.calls) == 2


def test_connection_errors_give_up_with_a_clear_message():
    t, dummy, dummy2 = transport([requests.exceptions.ConnectionError('refused')] * 2, max_retries=1)
    with pytest.raises(TransportError, match=r'Cannot connect to https://api.security.microsoft.com .*gave up after 2'):
        call(t)


def test_tls_failures_are_not_retried_and_name_the_fix():
    t, session, dummy = transport([requests.exceptions.SSLError('CERTIFICATE_VERIFY_FAILED')])
    with pytest.raises(TransportError) as err:
        call(t)
    assert len(session.calls) == 1
    for word in ('certificate problem', 'ca_path', 'validate_certs', 'CERTIFICATE_VERIFY_FAILED'):
        assert word in str(err.value)


def test_401_gets_one_fresh_token_then_succeeds():
    tokens = FakeTokens()
    t, session, dummy = transport([make_response(401, error_body('Unauthorized', 'expired')), OK], tokens=tokens)
    assert call(t) == {'value': []}
    assert tokens.refreshes == 1
    assert session.calls[1][1]['Authorization'] == 'Bearer token-2'


def test_401_twice_is_an_authentication_error():
    t, dummy, dummy2 = transport([make_response(401, {})] * 2)
    with pytest.raises(AuthenticationError, match='rejected a freshly issued token'):
        call(t)


def test_401_with_a_static_token_says_to_get_a_new_one():
    t, dummy, dummy2 = transport([make_response(401, {})], tokens=FakeTokens(refreshable=False))
    with pytest.raises(AuthenticationError):
        call(t)


def test_403_names_the_permission():
    body = error_body('Forbidden', 'The application does not have any of the required application permissions '
                                   '(Software.Read.All) to access the resource.')
    t, dummy, dummy2 = transport([make_response(403, body)])
    with pytest.raises(PermissionDeniedError) as err:
        call(t)
    assert 'application permission Software.Read.All' in str(err.value)
    assert 'admin consent' in str(err.value)


def test_404_names_the_id():
    t, dummy, dummy2 = transport([make_response(404, error_body('ResourceNotFound', 'Software x was not found'))])
    with pytest.raises(NotFoundError) as err:
        call(t)
    assert err.value.resource_id == 'microsoft-_-edge'
    assert 'microsoft-_-edge was not found' in str(err.value)


def test_400_shows_the_server_code_and_message():
    t, dummy, dummy2 = transport([make_response(400, error_body('ODataError', 'Invalid filter'))])
    with pytest.raises(ResponseError, match=r'HTTP 400 \(ODataError: Invalid filter\).*filter syntax'):
        call(t)


def test_malformed_bodies_are_retried_then_reported():
    t, session, dummy = transport([make_response(200, text='{"value": [')] * 2 + [OK])
    assert call(t) == {'value': []}
    t, session, dummy = transport([make_response(200, text='{"value": [')] * 2, max_retries=1)
    with pytest.raises(ResponseError, match='not valid JSON'):
        call(t)


def test_every_attempt_goes_through_the_pacer():
    t, session, dummy = transport([make_response(503, {}), OK], requests_per_minute=1)
    call(t)
    # a budget of 1 per minute: the retry waits a window after the first response
    assert t.waits == [60.0] and len(session.calls) == 2


def test_session_forces_verification_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/etc/ssl/certs/ca-certificates.crt')
    seen = {}

    def fake_request(self, method, url, **kwargs):
        seen.update(kwargs)
        return 'sent'

    monkeypatch.setattr(requests.Session, 'request', fake_request)
    session = VerifyingSession(str(tmp_path / 'ca.pem'), 12.0, 8, 'ua')
    assert session.request('GET', 'https://x') == 'sent'
    assert seen['verify'] == str(tmp_path / 'ca.pem') and seen['timeout'] == 12.0
    VerifyingSession(False, 1, 8, 'ua').request('POST', 'https://x')
    assert seen['verify'] is False
    adapter = session.get_adapter('https://x')
    assert adapter._pool_maxsize >= 8


def test_the_summary_counts_429s_the_wait_and_the_retries():
    t, dummy, sleeps = transport([make_response(429, {}, headers={'Retry-After': '7'}),
                                  make_response(503, {}), make_response(429, {}, headers={'Retry-After': '2'}), OK])
    assert t.summary() is None  # nothing happened yet
    call(t)
    assert (t.throttled, t.retries) == (2, 3)
    assert t.waited == 7.0 + sleeps[0] + 2.0
    assert t.summary().startswith('The Defender API throttled 2 requests (HTTP 429), waited %.1f s in all and retried '
                                  '3 times.' % t.waited)


def test_a_run_without_retries_has_no_summary():
    t, dummy, dummy2 = transport([OK, OK])
    call(t)
    call(t)
    assert t.summary() is None and t.waited == 0


# -- endpoint budgets and file downloads (the vulnerability export) ------------------------------------


def test_an_endpoint_budget_paces_on_top_of_requests_per_minute():
    # the files route allows 5 calls a minute: the 6th waits for the first one's window
    t, session, dummy = transport([OK] * 6, requests_per_minute=100)
    waits = []
    for pacer in t.budgets['vulnerability-export-files']:
        pacer._wait = lambda seconds: (waits.append(seconds), t.pacer._wait(seconds))
    for dummy in range(6):
        t.get_json(URL, 'Getting the vulnerability export files', 'Vulnerability.Read.All',
                   budget='vulnerability-export-files')
    assert len(session.calls) == 6 and waits == [60.0]


def test_without_pacing_no_endpoint_budget_either():
    t, dummy, dummy2 = transport([OK], requests_per_minute=0)
    assert t.budgets == {}


def file_response(status, data=b'', missing=0):
    """A streamed download: ``data``, with a Content-Length ``missing`` bytes longer (a body that breaks off)."""
    response = make_response(status, url='https://blob.example/part-0.json.gz?sig=secret')
    response.raw = HTTPResponse(body=io.BytesIO(data), headers={'Content-Length': str(len(data) + missing)},
                                status=status, preload_content=False)
    return response


def test_a_file_is_downloaded_without_the_bearer_token_as_stored():
    data = gzip.compress(b'{"DeviceId": "a"}\n')
    t, session, dummy = transport([file_response(200, data)])
    body = t.open_file('https://blob.example/part-0.json.gz?sig=secret', 'Downloading file 1 of 1')
    assert 'Authorization' not in session.calls[0][1]
    assert body.read() == data  # still gzip: the reader decompresses it as a stream


def test_an_expired_sas_is_its_own_error_and_transient_statuses_are_retried():
    t, session, dummy = transport([file_response(503), file_response(403)])
    with pytest.raises(SasExpiredError, match='file 1 of 1 was refused \\(HTTP 403\\)'):
        t.open_file('https://blob.example/part-0.json.gz?sig=secret', 'Downloading file 1 of 1')
    assert len(session.calls) == 2


def test_a_body_that_breaks_off_says_so_and_never_shows_the_sas():
    t, dummy, dummy2 = transport([file_response(200, b'half a file', missing=100)])
    body = t.open_file('https://blob.example/part-0.json.gz?sig=secret', 'Downloading file 1 of 1')
    with pytest.raises(DownloadBrokenError, match='file 1 of 1 broke off before its end') as err:
        while body.read(4):
            pass
    assert 'secret' not in str(err.value)


def test_a_parsed_body_is_read_while_the_call_is_held_and_a_garbled_one_again():
    parsed = []

    def parse(response):  # what a streaming reader does: read the body, or raise ValueError
        parsed.append(response.status_code)
        return dict(response.json(), parsed=True)
    t, session, dummy = transport([make_response(200, text='{"value": ['), OK])
    assert t.get_json(URL, 'Reading a page', 'Vulnerability.Read.All', parse=parse) == {'value': [], 'parsed': True}
    assert len(session.calls) == 2 and parsed == [200, 200]
    # an error status is not parsed: it is the API's error, as without parse
    t, session, dummy = transport([make_response(403, error_body('Forbidden', 'Missing application roles'))])
    with pytest.raises(PermissionDeniedError, match='Vulnerability.Read.All'):
        t.get_json(URL, 'Reading a page', 'Vulnerability.Read.All', parse=parse)
    assert parsed == [200, 200]
