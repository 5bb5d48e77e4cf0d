# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared helpers for the unit tests (a plain module; the fixtures are in conftest.py). Unit tests
may stub the network; integration tests may not."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import requests
from urllib3.response import HTTPResponse

from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient
from ansible_collections.defender.tvm.plugins.module_utils._errors import NotFoundError
from ansible_collections.defender.tvm.plugins.module_utils._options import OptionAdapter, Settings

TENANT = '11111111-2222-3333-4444-555555555555'
CLIENT = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'


def make_settings(**values):
    base = dict(tenant_id=TENANT, client_id=CLIENT, client_secret='s3cret-value')
    base.update(values)
    return Settings.from_adapter(OptionAdapter.from_dict(base))


def make_response(status=200, body=None, headers=None, text=None, url='https://api.example.test/api/x'):
    """A real requests.Response with a urllib3 raw response, as the transport sees it."""
    response = requests.Response()
    response.status_code = status
    response.url = url
    all_headers = {'Content-Type': 'application/json'}
    all_headers.update(headers or {})
    response.headers = requests.structures.CaseInsensitiveDict(all_headers)
    response.raw = HTTPResponse(body=b'', headers=all_headers, status=status, preload_content=False)
    if text is not None:
        response._content = text.encode('utf-8')
    else:
        response._content = json.dumps(body if body is not None else {}).encode('utf-8')
    return response


class FakeSession:
    """Answers GETs from a list of responses or exceptions, and records the requests."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def get(self, url, headers=None, **kwargs):
        self.calls.append((url, dict(headers or {})))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self):
        pass


class FakeTokens:
    token_requests = 1

    def __init__(self, refreshable=True):
        self.generation = 1
        self.refreshes = 0
        self.refreshable = refreshable

    def get(self):
        return self.generation, 'token-%d' % self.generation

    def refresh(self, generation):
        from ansible_collections.defender.tvm.plugins.module_utils._errors import AuthenticationError
        if not self.refreshable:
            raise AuthenticationError('static token rejected')
        self.refreshes += 1
        if generation == self.generation:
            self.generation += 1
        return self.get()


class FakeClient(DefenderClient):
    """The real client with the network replaced by tables: ``software`` and ``machines`` map an ID
    to the collection below it (``getmissingkbs``; absent: 404), ``listing`` is what
    ``GET /api/machines`` lists whatever its ``$filter`` (a server that ignores the filter; the
    collection checks what comes back). Every URL asked for is in ``requested``."""

    def __init__(self, software=None, machines=None, listing=None):
        super(FakeClient, self).__init__(make_settings(max_concurrency=1))
        self.software = software or {}
        self.machines = machines or {}
        self.listing = listing or []
        self.requested = []

    def get(self, url, what, permission, resource_id=None, budget=None, parse=None):
        self.requested.append(url)
        raise NotFoundError('%s not found' % url.rsplit('/', 1)[1], resource_id)

    def get_collection(self, url, what, permission, resource_id=None):
        self.requested.append(url)
        if '/api/machines?' in url or url.endswith('/api/machines'):
            return self.listing
        parts = url.split('/')
        table = self.software if parts[-3] == 'Software' else self.machines
        if parts[-2] not in table:
            raise NotFoundError('%s not found' % parts[-2], resource_id)
        return table[parts[-2]]
