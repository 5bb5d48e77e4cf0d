# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the role's action plugins (defender.tvm.kb_plan, defender.tvm.kb_report): each built
by Ansible's action loader around a fake task, with ``kb_patching.ask_defender`` recorded."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import action_loader
from ansible.template import Templar

from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient
from ansible_collections.defender.tvm.plugins.plugin_utils import _kb_patching as kb_patching

HOSTS = ['web01', 'db01']


class FakeTask:
    """What ActionBase reads of a task."""

    def __init__(self, args, check_mode=False, action='defender.tvm.kb_plan'):
        self.args = args
        self.action = action
        self.async_val = 0
        self.check_mode = check_mode


class UnusedConnection:
    """ActionBase.run reads ``_connection._shell.tmpdir``; the role's actions must touch nothing else.

    (``connection=None`` cannot be used: ActionBase.run dereferences it on every ansible-core
    version from 2.16; Ansible always hands an action a connection object, connected or not.)
    """

    class _Shell:
        tmpdir = None

    def __init__(self):
        self._shell = self._Shell()
        self.used = []

    def __getattr__(self, name):
        self.__dict__['used'].append(name)
        raise AttributeError(name)


@pytest.fixture
def asked(monkeypatch):
    """The calls to kb_patching.ask_defender, as ``(client, kwargs)``; each returns a new plan."""
    calls = []

    def ask_defender(client, **query):
        calls.append((client, query))
        return {'strategy': query['strategy'], 'hosts': dict((h, {'kbs': []}) for h in query['hosts'])}

    monkeypatch.setattr(kb_patching, 'ask_defender', ask_defender)
    return calls


@pytest.fixture
def closed(monkeypatch):
    clients = []

    def close(client):
        clients.append(client)

    monkeypatch.setattr(DefenderClient, 'close', close)
    return clients


@pytest.fixture
def run_action():
    """``run_action(args, task_vars=None, check_mode=False, action='defender.tvm.kb_plan')``: the action's result dict."""
    connections = []

    def run(args, task_vars=None, check_mode=False, action='defender.tvm.kb_plan'):
        task_vars = dict(task_vars if task_vars is not None else {'ansible_play_hosts_all': list(HOSTS)})
        loader = DataLoader()
        connection = UnusedConnection()
        connections.append(connection)
        plugin = action_loader.get(action, task=FakeTask(dict(args), check_mode, action), connection=connection,
                                   play_context=PlayContext(), loader=loader,
                                   templar=Templar(loader=loader, variables=task_vars), shared_loader_obj=None)
        assert plugin is not None, 'the action loader did not find %s' % action
        return plugin.run(task_vars=task_vars)

    yield run
    assert [c.used for c in connections] == [[]] * len(connections), 'the action used its connection'
