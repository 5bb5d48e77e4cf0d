# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one Defender API client that every module and plugin of the collection uses.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import threading

from ansible.module_utils.ansible_release import __version__ as ANSIBLE_VERSION
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode, urlsplit

from ansible_collections.defender.tvm.plugins.module_utils._auth import token_provider
from ansible_collections.defender.tvm.plugins.module_utils._errors import ConfigurationError, DefenderError, NotFoundError, ResponseError
from ansible_collections.defender.tvm.plugins.module_utils._version import COLLECTION_VERSION
from ansible_collections.defender.tvm.plugins.module_utils._transport import Transport, VerifyingSession

from concurrent.futures import ThreadPoolExecutor

USER_AGENT = 'defender.tvm/%s ansible-core/%s' % (COLLECTION_VERSION, ANSIBLE_VERSION)


def utc_now():
    """Now, in UTC, as the reports and the API write it (``2024-02-20T06:00:00Z``)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def path_segment(value, name='ID'):
    """Percent-encode one ID as exactly one URL path segment.

    ``/`` and every other reserved character are encoded, so ``x/../../machines`` stays one
    segment. ``.`` and ``..`` are refused: requests/urllib3 remove dot segments even when they
    are the whole ID, which would send the call to another endpoint.
    """
    if not isinstance(value, str):
        raise ConfigurationError("%s must be a string, got %r" % (name, value))
    text = value.strip()
    if not text:
        raise ConfigurationError("%s must not be empty or blank" % name)
    if text in ('.', '..'):
        raise ConfigurationError("%s %r is not a valid ID" % (name, text))
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ConfigurationError("%s %r contains control characters" % (name, text))
    return quote(text, safe='')


def odata_string(value):
    """An OData string literal: single quotes doubled, so a value cannot end the literal."""
    return "'%s'" % value.replace("'", "''")


def clean_ids(values, name):
    """Validate every ID before any network call; strip blanks around them, drop repeats."""
    if not values:
        raise ConfigurationError("%s must list at least one ID" % name)
    ids, seen = [], set()  # the set: a list scanned per ID is quadratic, minutes at 100,000 IDs
    for value in values:
        path_segment(value, name)  # raises for empty, blank and unsafe values
        text = value.strip()
        if text not in seen:
            seen.add(text)
            ids.append(text)
    return ids


class DefenderClient:
    """Options in, API data out: auth, pacing, retries, paging and concurrency in one place."""

    def __init__(self, settings, warn=None):
        """``warn(message)`` is told once, at ``close()``, when the run was throttled or retried
        (``module.warn`` in modules, ``display.warning`` in lookups and action plugins)."""
        self.settings = settings
        self.session = VerifyingSession(settings.verify, settings.timeout, settings.max_concurrency, USER_AGENT)
        self.tokens = token_provider(settings, self.session)
        self.transport = Transport(settings, self.session, self.tokens)
        self._warn = warn
        self._origin = self._split_origin(settings.api_url)

    @staticmethod
    def _split_origin(url):
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.netloc.lower()

    def url(self, *segments, **params):
        """``<api_url>/api/<segments>``; each segment given as ``('ID name', value)`` is encoded."""
        path = []
        for segment in segments:
            if isinstance(segment, tuple):
                path.append(path_segment(segment[1], segment[0]))
            else:
                path.append(segment)
        url = '%s/api/%s' % (self.settings.api_url, '/'.join(path))
        query = dict((k, v) for k, v in params.items() if v is not None)
        if query:
            url += '?' + urlencode(sorted(query.items()), quote_via=quote, safe="$,'()")
        return url

    def get(self, url, what, permission, resource_id=None, budget=None, parse=None):
        """The JSON body at ``url``. ``budget`` names an endpoint's own call limits (``BUDGETS`` of
        the transport), kept on top of requests_per_minute. ``parse(response)``, if given, reads the
        body instead of ``response.json()`` as it arrives (``Transport.get_json``; the export's pages
        with ``_json_stream.parse_odata_page``)."""
        return self.transport.get_json(url, what, permission, resource_id, budget, parse=parse)

    def known(self, call, *args, **kwargs):
        """``call(*args, **kwargs)`` (``get`` or ``get_collection`` with a ``resource_id``), or None
        when Defender answers 404 for that ID: Defender does not know it."""
        try:
            return call(*args, **kwargs)
        except NotFoundError:
            return None

    def answers_by_id(self, func, ids, kind, ignore_unknown):
        """``func(id)`` for every ID concurrently (None for an unknown one), and the unknown IDs.

        Unknown IDs fail the call, naming all of them, unless ``ignore_unknown``.
        """
        answers = self.map(func, ids)
        not_found = [i for i, answer in zip(ids, answers) if answer is None]
        if not_found and not ignore_unknown:
            raise NotFoundError(
                "Defender does not know %d %s ID%s: %s. Check the IDs (software IDs look like vendor-_-product, "
                "e.g. microsoft-_-edge; devices are 40-hex device IDs or computer DNS names), or set "
                "ignore_unknown: true to skip unknown IDs." % (
                    len(not_found), kind, '' if len(not_found) == 1 else 's', ', '.join(not_found)),
                not_found)
        return answers, not_found

    def get_collection(self, url, what, permission, resource_id=None):
        """All items of an OData collection, following ``@odata.nextLink`` to the end."""
        return [item for page in self.pages(url, what, permission, resource_id) for item in page]

    def pages(self, url, what, permission, resource_id=None, budget=None, parse=None):
        """The pages (``value`` lists) of an OData collection, one at a time, following
        ``@odata.nextLink`` to the end: a reader that streams never holds them all. With ``parse``
        (``get``), each page's body is what ``parse`` makes of it."""
        seen = set()
        while url:
            body = self.get(url, what, permission, resource_id, budget, parse=parse)
            if not isinstance(body, dict) or not isinstance(body.get('value'), list):
                raise ResponseError("%s returned no OData collection ('value' list)" % what)
            yield body['value']
            url = body.get('@odata.nextLink')
            if url:
                if self._split_origin(url) != self._origin:
                    # The link is followed with our bearer token: only ever to the API host.
                    raise ResponseError("%s returned an @odata.nextLink to another host (%s); refusing to send the "
                                        "token there" % (what, urlsplit(url).netloc))
                if url in seen:
                    raise ResponseError("%s returned the same @odata.nextLink twice; stopping" % what)
                seen.add(url)

    def open_file(self, url, what):
        """A streaming response for a file that a SAS URL names (the export's blob files): never with
        the bearer token - the SAS is the credential, and the host is not the API's."""
        return self.transport.open_file(url, what)

    def get_pages(self, segments, what, permission, page_size, **params):
        """Every item of a listing that pages with ``$top``/``$skip`` until a short page.

        For the listings whose documented paging is ``$top`` (at most 10,000) and ``$skip``, which
        give no ``@odata.nextLink`` with ``$top``.
        """
        items, skip = [], 0
        while True:
            query = dict(params, **{'$top': page_size, '$skip': skip or None})
            page = self.get_collection(self.url(*segments, **query), what, permission)
            items.extend(page)
            if len(page) < page_size:
                return items
            skip += page_size

    def map(self, func, items):
        """``[func(item) for item in items]`` on up to max_concurrency threads, in input order.

        The first failure stops work that has not started yet and is raised (the earliest in
        input order); a failed run never returns partial data.
        """
        if len(items) <= 1 or self.settings.max_concurrency == 1:
            return [func(item) for item in items]
        stop = threading.Event()

        def run(item):
            if stop.is_set():
                return None
            try:
                return func(item)
            except Exception:
                stop.set()
                raise

        workers = min(self.settings.max_concurrency, len(items))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run, item) for item in items]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            # Prefer errors that say what to fix over unexpected ones.
            known = [e for e in errors if isinstance(e, DefenderError)]
            raise (known or errors)[0]
        return [f.result() for f in futures]

    def close(self):
        summary = self.transport.summary()
        if summary and self._warn is not None:
            self._warn(summary)
        self.session.close()
