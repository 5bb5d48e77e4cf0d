# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP for the Defender API: TLS, pacing, retries, token refresh.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time
import traceback

from ansible_collections.defender.tvm.plugins.module_utils._errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    DownloadBrokenError,
    ResponseError,
    SasExpiredError,
    TransportError,
    api_error_fields,
    describe_api_error,
)
from ansible_collections.defender.tvm.plugins.module_utils._pacing import RatePacer

try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.exceptions import HTTPError as Urllib3Error, MaxRetryError
    from urllib3.util.retry import Retry
except ImportError:
    requests = None
    HTTPAdapter = object
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
else:
    REQUESTS_IMPORT_ERROR = None

RETRY_STATUSES = (429, 500, 502, 503, 504)
# Endpoints with call limits of their own (get-assessment-software-vulnerabilities.md): kept on top
# of requests_per_minute, each as (calls, seconds) sliding windows.
BUDGETS = {
    'vulnerability-export-json': ((30, 60.0), (1000, 3600.0)),
    'vulnerability-export-files': ((5, 60.0), (20, 3600.0)),
}
BACKOFF_FACTOR = 0.5   # urllib3 Retry: 0, 1, 2, 4, 8 ... seconds between attempts
BACKOFF_MAX = 30.0     # cap for one backoff; Retry-After is honoured as sent
MIN_THROTTLE_DELAY = 1.0  # a 429 without Retry-After


class VerifyingSession(requests.Session if requests else object):
    """A requests session whose TLS verification cannot be overridden by the environment.

    requests replaces a session-level ``verify`` with REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
    whenever the per-request ``verify`` is None or True, and MSAL never passes one. Setting it
    on every request makes ``ca_path`` and ``validate_certs: false`` mean what they say, for
    the API and for MSAL's calls to the token endpoint alike. ``trust_env`` stays on, so
    HTTPS_PROXY / NO_PROXY still work.
    """

    def __init__(self, verify, timeout, pool_size, user_agent):
        super(VerifyingSession, self).__init__()
        self._verify = verify
        self._timeout = timeout
        # One pool per host, as large as the number of workers, so connections are reused
        # instead of being opened and dropped (urllib3 keeps 10 by default).
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 10), max_retries=0)
        self.mount('https://', adapter)
        self.mount('http://', adapter)
        self.headers['User-Agent'] = user_agent

    def request(self, method, url, **kwargs):  # pylint: disable=arguments-differ
        if self._verify is not True:
            kwargs['verify'] = self._verify
        kwargs.setdefault('timeout', self._timeout)
        return super(VerifyingSession, self).request(method, url, **kwargs)


def network_error(exc, url):
    """A TransportError that says what to fix for a requests exception (no traceback)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return TransportError(
            "TLS certificate verification failed for %s: this is a certificate problem (%s). If the server uses a "
            "private CA, set ca_path (MDE_CA_PATH) to its CA bundle; validate_certs: false turns verification off "
            "(never in production)." % (_origin(url), _reason(exc)))
    if isinstance(exc, requests.exceptions.ProxyError):
        return TransportError("Cannot connect to %s through the proxy (%s). Check HTTPS_PROXY and NO_PROXY."
                              % (_origin(url), _reason(exc)))
    if isinstance(exc, requests.exceptions.Timeout):
        return TransportError("%s did not answer within the timeout (%s). Raise timeout, or check the network."
                              % (_origin(url), _reason(exc)))
    return TransportError("Cannot connect to %s (%s). Check api_url/authority_url, DNS, proxies and firewalls."
                          % (_origin(url), _reason(exc)))


def _origin(url):
    parts = requests.utils.urlparse(url)
    return '%s://%s' % (parts.scheme, parts.netloc)


def _reason(exc):
    """The innermost useful reason of a requests/urllib3 exception, one line."""
    reason = exc
    while True:
        inner = getattr(reason, 'reason', None)
        if not isinstance(inner, Exception) and reason.args and isinstance(reason.args[0], Exception):
            inner = reason.args[0]
        if not isinstance(inner, Exception) or inner is reason:
            break
        reason = inner
    text = str(reason).strip()
    return text.splitlines()[0] if text else type(reason).__name__


def _make_retry(max_retries):
    kwargs = dict(total=max_retries, backoff_factor=BACKOFF_FACTOR, status_forcelist=RETRY_STATUSES,
                  allowed_methods=frozenset(['GET']), respect_retry_after_header=True, raise_on_status=False)
    try:
        return Retry(backoff_max=BACKOFF_MAX, **kwargs)
    except TypeError:  # urllib3 < 2 has a class attribute instead
        retry = Retry(**kwargs)
        retry.BACKOFF_MAX = retry.DEFAULT_BACKOFF_MAX = BACKOFF_MAX
        return retry


class Transport:
    """Sends GETs to the Defender API: paced, retried, authenticated.

    Retries 429 (honouring Retry-After, in seconds) and 500/502/503/504, connection errors and
    unparseable bodies with capped exponential backoff; urllib3's ``Retry`` does the counting,
    the Retry-After parsing and the backoff arithmetic, while this loop does the waiting so
    that every attempt goes through the pacer. On 401 it gets a fresh token once.
    """

    def __init__(self, settings, session, tokens, sleep=time.sleep, clock=time.monotonic):
        self.settings = settings
        self.session = session
        self.tokens = tokens
        self.pacer = RatePacer(settings.requests_per_minute, clock=clock)
        # An endpoint's own limits apply only when the collection paces at all (requests_per_minute > 0).
        self.budgets = dict((name, [RatePacer(calls, window, clock=clock) for calls, window in limits])
                            for name, limits in BUDGETS.items()) if settings.requests_per_minute else {}
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self.api_requests = 0
        self.retries = 0
        self.throttled = 0
        self.waited = 0.0  # seconds spent in backoff and Retry-After pauses

    def summary(self):
        """One sentence on the throttling and retries of this run, or None when there were none."""
        if not self.retries:
            return None
        throttled = ('the Defender API throttled %d request%s (HTTP 429), ' % (self.throttled, '' if self.throttled == 1 else 's')
                     if self.throttled else 'the Defender API failed transiently, ')
        return ('%swaited %.1f s in all and retried %d time%s. Lower requests_per_minute or max_concurrency if '
                'other clients share this app, or raise max_retries if the API is degraded.'
                % (throttled[0].upper() + throttled[1:], self.waited, self.retries, '' if self.retries == 1 else 's'))

    def _token(self, refresh_generation=None):
        try:
            if refresh_generation is None:
                return self.tokens.get()
            return self.tokens.refresh(refresh_generation)
        except requests.exceptions.RequestException as exc:
            raise network_error(exc, self.settings.authority_url)

    def get_json(self, url, what, permission, resource_id=None, budget=None, parse=None):
        """GET ``url`` and return its JSON body; ``what`` names the call in messages, ``budget`` the
        endpoint's own limits (BUDGETS).

        ``parse(response)``, if given, reads a successful body instead of ``response.json()``, as it
        streams in (the request is sent with ``stream=True``), and its result is returned. Everything
        else is as without it: the body is read while the pacers hold the call, a broken connection
        while reading is retried as one before the response, and a ValueError from ``parse`` as a
        body that is not valid JSON.
        """
        retry = _make_retry(self.settings.max_retries)
        generation, token = self._token()
        refreshed = False
        pacers = self.budgets.get(budget, []) + [self.pacer]
        while True:
            for pacer in pacers:
                pacer.acquire()
            parsed, invalid = None, False
            try:
                self._bump('api_requests')
                response = self.session.get(url, headers={'Authorization': 'Bearer ' + token, 'Accept': 'application/json'},
                                            stream=parse is not None)
                if parse is not None:
                    parsed, invalid = _consume(response, parse)
            except requests.exceptions.SSLError as exc:
                raise network_error(exc, url)
            except requests.exceptions.RequestException as exc:
                retry = self._count(retry, url, error=exc)
                self._backoff(retry, None)
                continue
            finally:
                for pacer in pacers:
                    pacer.release()

            status = response.status_code
            if status == 401 and not refreshed:
                # Revoked or expired early: one fresh token, then the same request again.
                refreshed = True
                generation, token = self._token(generation)
                continue
            if retry.is_retry('GET', status, has_retry_after='Retry-After' in response.headers):
                retry = self._count(retry, url, response=response, what=what)
                self._backoff(retry, response)
                continue
            if status >= 400:
                raise self._http_error(response, what, permission, resource_id)
            if parse is None:
                try:
                    return response.json()
                except ValueError:
                    invalid = True
            elif not invalid:
                return parsed
            # A truncated or garbled body is a transient fault as far as we can tell.
            retry = self._count(retry, url, error=ResponseError("invalid JSON"), what=what, response=response)
            self._backoff(retry, None)

    def open_file(self, url, what):
        """A streaming GET of a file that a SAS URL names, without the bearer token (the SAS is the
        credential and the host is blob storage, not the API). Retries connection errors and
        transient statuses as ``get_json`` does; 403 is a SAS that expired (SasExpiredError)."""
        retry = _make_retry(self.settings.max_retries)
        while True:
            try:
                response = self.session.get(url, stream=True)
            except requests.exceptions.SSLError as exc:
                raise network_error(exc, url)
            except requests.exceptions.RequestException as exc:
                retry = self._count(retry, url, error=exc)
                self._backoff(retry, None)
                continue
            status = response.status_code
            if retry.is_retry('GET', status, has_retry_after='Retry-After' in response.headers):
                response.close()
                retry = self._count(retry, url, response=response, what=what)
                self._backoff(retry, response)
                continue
            if status == 403:
                response.close()
                raise SasExpiredError("%s was refused (HTTP 403): its SAS link has expired or is not valid" % what)
            if status >= 400:
                response.close()
                raise ResponseError("%s failed with HTTP %s" % (what, status))
            return _FileBody(response, what)

    def _count(self, retry, url, error=None, response=None, what=None):
        """Count an attempt against the retry budget; turn exhaustion into a clear error."""
        self._bump('retries')
        try:
            raw = response.raw if response is not None and error is None else None
            return retry.increment('GET', url, response=raw, error=error)
        except MaxRetryError:
            attempts = self.settings.max_retries + 1
            if error is not None and not isinstance(error, ResponseError):
                exc = network_error(error, url)
                raise TransportError("%s (gave up after %d attempts)" % (exc, attempts))
            if error is not None:
                raise ResponseError("%s returned a body that is not valid JSON (HTTP %s), %d times in a row"
                                    % (what, response.status_code, attempts))
            text = describe_api_error(response, what)
            if response.status_code == 429:
                raise TransportError(
                    "%s, still throttled after %d attempts. Lower requests_per_minute or max_concurrency (another "
                    "client may share this app's budget), or raise max_retries." % (text, attempts))
            raise TransportError("%s, still failing after %d attempts; the Defender API may be degraded, try later."
                                 % (text, attempts))

    def _backoff(self, retry, response):
        delay = retry.get_retry_after(response.raw) if response is not None else None
        if delay is None:
            delay = retry.get_backoff_time()
        if response is not None and response.status_code == 429:
            self._bump('throttled')
            # The budget is per app and tenant: hold every worker, not just this one. Without a
            # Retry-After, never come straight back.
            delay = max(delay, MIN_THROTTLE_DELAY)
            self._add_wait(delay)
            self.pacer.pause_until(self._clock() + delay)
        elif delay > 0:
            self._add_wait(delay)
            self._sleep(delay)

    def _bump(self, counter):
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def _add_wait(self, seconds):
        with self._lock:
            self.waited += seconds

    def _http_error(self, response, what, permission, resource_id):
        status = response.status_code
        code, message, dummy = api_error_fields(response)
        if status == 404 and resource_id is not None:
            return NotFoundError("%s: %s was not found" % (what, resource_id), resource_id)
        if status == 403:
            return PermissionDeniedError(
                "%s was denied (HTTP 403%s): the app needs the application permission %s on the WindowsDefenderATP "
                "API, with admin consent granted, and a token issued after the grant."
                % (what, ', ' + message if message else '', permission))
        if status == 401:
            return AuthenticationError(
                "%s: the Defender API rejected a freshly issued token (HTTP 401%s). Check that scope matches the "
                "API host's cloud (cloud, api_url, scope)." % (what, ', ' + message if message else ''))
        if status == 400 and code == 'ODataError':
            return ResponseError(describe_api_error(response, what) + ". Check the filter syntax.")
        return ResponseError(describe_api_error(response, what))


def _consume(response, parse):
    """A streamed body read at once, while the pacers still hold the call: ``parse(response)`` for
    a success (a ValueError from it marks the body invalid), else the whole body, as a GET without
    ``stream`` reads it. ``(parsed, invalid)``; a connection lost meanwhile raises as requests does."""
    try:
        if response.status_code >= 400:
            response.content  # pylint: disable=pointless-statement
            return None, False
        try:
            return parse(response), False
        except ValueError:
            return None, True
    finally:
        response.close()


class _FileBody:
    """The body of a file download as a binary stream of its bytes as stored (a gzip file stays
    compressed, whatever Content-Encoding says); a connection that breaks off mid-body raises
    DownloadBrokenError, so that the reader can read that file again."""

    def __init__(self, response, what):
        self._response = response
        self._what = what

    def read(self, size=-1):
        try:
            return self._response.raw.read(None if size is None or size < 0 else size, decode_content=False)
        except (requests.exceptions.RequestException, Urllib3Error, OSError) as exc:
            raise DownloadBrokenError("%s broke off before its end (%s)" % (self._what, _reason(exc)))

    def readable(self):
        return True

    def close(self):
        self._response.close()
