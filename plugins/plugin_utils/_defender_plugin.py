# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the collection's controller-side plugins (lookups, action plugins) share: the
ansible_mde_* variables, and the client with its errors turned into AnsibleError.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from contextlib import contextmanager

from ansible.errors import AnsibleError

from ansible_collections.defender.tvm.plugins.module_utils import _transport as transport
from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient
from ansible_collections.defender.tvm.plugins.module_utils._errors import DefenderError
from ansible_collections.defender.tvm.plugins.module_utils._options import VARIABLE_PREFIX, Settings


def option_variables(templar, variables):
    """The ansible_mde_* variables, templated: Ansible hands plugins the raw values."""
    return dict((name, templar.template(value)) for name, value in (variables or {}).items()
                if name.startswith(VARIABLE_PREFIX))


@contextmanager
def defender_client(adapter, warn, plugin_name):
    """A client on the options ``adapter`` resolves; DefenderError becomes AnsibleError."""
    if transport.REQUESTS_IMPORT_ERROR:
        raise AnsibleError("%s needs the Python library 'requests' on the controller" % plugin_name)
    client = None
    try:
        client = DefenderClient(Settings.from_adapter(adapter), warn=warn)
        yield client
    except DefenderError as exc:
        # No chained exception: Ansible would print it, and plugins get no no_log masking.
        raise AnsibleError(str(exc)) from None
    finally:
        if client is not None:
            client.close()
