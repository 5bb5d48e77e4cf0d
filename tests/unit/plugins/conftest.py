# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the tests of the modules, the lookup and the action plugin.

Nothing here is autouse: a test asks for what it needs. Unit tests may stub the network; these
fixtures replace the client's ``get``/``get_collection`` with a table of API paths, and make any
request that would still reach the wire fail the test.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import copy
import json
import threading

import pytest

from ansible.module_utils import basic
from ansible.module_utils.six.moves.urllib.parse import unquote, urlsplit

from ansible_collections.defender.tvm.plugins.module_utils import _transport as transport
from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient
from ansible_collections.defender.tvm.plugins.module_utils._errors import NotFoundError
from ansible_collections.defender.tvm.plugins.plugin_utils import _defender_plugin

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core 2.16 to 2.18
    patch_module_args = None

try:  # ansible-core >= 2.19 decides per process whether fail_json keeps a traceback
    from ansible.module_utils._internal import _traceback
except ImportError:  # ansible-core 2.16 to 2.18: kept when given, or at -vvv
    _traceback = None


class FakeDefender:
    """The Defender API as a table: ``routes[path]`` is the answer to ``GET /api/<path>``.

    ``path`` is the decoded path after ``/api/``, without the query. An answer is a list (a
    collection's items), a dict (one entity), or an exception to raise; a path that is not in
    the table answers 404 (NotFoundError), as the transport reports it. ``requests`` lists every
    requested URL, query included, in order.
    """

    def __init__(self):
        self.routes = {}
        self.requests = []
        self._lock = threading.Lock()

    @staticmethod
    def path(url):
        return unquote(urlsplit(url).path.split('/api/', 1)[1])

    @staticmethod
    def query(url):
        return unquote(urlsplit(url).query)

    def answer(self, url, resource_id):
        with self._lock:
            self.requests.append(url)
        path = self.path(url)
        if path not in self.routes:
            raise NotFoundError('%s not found' % path, resource_id)
        answer = self.routes[path]
        if isinstance(answer, BaseException):
            raise answer
        return copy.deepcopy(answer)

    def paths(self):
        return [self.path(url) for url in self.requests]


@pytest.fixture
def defender_api(monkeypatch):
    """A FakeDefender behind every DefenderClient; a request that reaches requests fails the test."""
    api = FakeDefender()

    def get(client, url, what, permission, resource_id=None, budget=None, parse=None):
        return api.answer(url, resource_id)

    def get_collection(client, url, what, permission, resource_id=None):
        answer = api.answer(url, resource_id)
        assert isinstance(answer, list), 'the route for %s must be a list of items' % url
        return answer

    def no_network(session, method, url, **kwargs):
        raise AssertionError('a unit test sent a real %s request to %s' % (method, url))

    monkeypatch.setattr(DefenderClient, 'get', get)
    monkeypatch.setattr(DefenderClient, 'get_collection', get_collection)
    monkeypatch.setattr(transport.VerifyingSession, 'request', no_network)
    return api


@pytest.fixture
def client_settings(monkeypatch):
    """The Settings of every client the lookups and action plugins build, in order."""
    seen = []

    class RecordingClient(DefenderClient):
        def __init__(self, settings, warn=None):
            seen.append(settings)
            super(RecordingClient, self).__init__(settings, warn=warn)

    monkeypatch.setattr(_defender_plugin, 'DefenderClient', RecordingClient)
    return seen


@pytest.fixture
def module_args(monkeypatch):
    """``module_args(args, tracebacks=False)``: the args the next AnsibleModule reads.

    Uses ansible.module_utils.testing.patch_module_args where it exists (ansible-core 2.19+), else
    sets basic._ANSIBLE_ARGS as community.hashi_vault's patch_ansible_module fixture does.
    ``tracebacks``: whether fail_json keeps tracebacks (ansible-core 2.19+ asks the controller's
    display_traceback setting; older versions keep the ``exception`` a module gives).
    """
    stack = contextlib.ExitStack()

    def set_args(args, tracebacks=False):
        args = dict(args)
        args.setdefault('_ansible_remote_tmp', '/tmp')
        args.setdefault('_ansible_keep_remote_files', False)
        if patch_module_args is not None:
            stack.enter_context(patch_module_args(args))
        else:
            monkeypatch.setattr(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode('utf-8'))
        if _traceback is not None:
            monkeypatch.setattr(_traceback, '_is_traceback_enabled', lambda event: tracebacks)
        return args

    yield set_args
    stack.close()


@pytest.fixture
def patch_ansible_module(request, module_args):
    """The module args from the test's indirect parametrisation, as in community.hashi_vault."""
    return module_args(request.param)


@pytest.fixture
def fail_json_calls(monkeypatch):
    """The keyword arguments of every AnsibleModule.fail_json call, as the module made it.

    ansible-core 2.19+ drops an ``exception`` that a module passes unless tracebacks are enabled,
    so the printed result alone cannot show whether the module sent one.
    """
    calls = []
    original = basic.AnsibleModule.fail_json

    def fail_json(module, msg, **kwargs):
        calls.append(dict(kwargs, msg=msg))
        return original(module, msg, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    return calls


@pytest.fixture
def run_module(capsys):
    """``run_module(main)``: run a module's main(); ``(exit code, result, everything it printed)``.

    The module must exit (exit_json or fail_json) and print exactly one JSON result on stdout.
    """
    def run(main):
        with pytest.raises(SystemExit) as exc_info:
            main()
        out, err = capsys.readouterr()
        return exc_info.value.code, json.loads(out), out + err
    return run


@pytest.fixture
def secrets(tmp_path):
    """Values for every no_log option, each distinct enough to spot in any output."""
    certificate = tmp_path / 'app.pem'
    certificate.write_text(u'not a real certificate\n')
    return dict(client_secret='no-log-client-secret-7Qv', client_certificate_path=str(certificate),
                client_certificate_password='no-log-pfx-password-3Kd', access_token='no-log-access-token-9Wm')
