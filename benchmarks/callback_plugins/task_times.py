# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark-only callback: how long each task took across all hosts, for profiling.

Enabled by the harness (``--task-times``); it writes one JSON line per task to the file in
``DEFENDER_TVM_TASK_TIMES``. A task's time runs from its start until the next task (or the
play's end) starts, which is what a linear play spends on it over all hosts.
"""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'task_times'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get('DEFENDER_TVM_TASK_TIMES')
        self._current = None

    def _close(self):
        if self._current and self._path:
            name, path, started = self._current
            with open(self._path, 'a') as handle:
                handle.write(json.dumps({'task': name, 'path': path, 's': round(time.monotonic() - started, 3)}) + '\n')
        self._current = None

    def _start(self, task):
        self._close()
        self._current = (task.get_name(), task.get_path() or '', time.monotonic())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def v2_playbook_on_play_start(self, play):
        self._close()

    def v2_playbook_on_stats(self, stats):
        self._close()
