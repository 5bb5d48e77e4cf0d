# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AnsibleModule with the shared options, the client, and errors turned into fail_json.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.defender.tvm.plugins.module_utils import _transport as transport
from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient
from ansible_collections.defender.tvm.plugins.module_utils._errors import DefenderError
from ansible_collections.defender.tvm.plugins.module_utils._options import OptionAdapter, Settings
from ansible_collections.defender.tvm.plugins.module_utils._options import argument_spec as shared_argument_spec


class DefenderModule(AnsibleModule):
    """A module of this collection: shared options added to the module's own."""

    def __init__(self, argument_spec=None, **kwargs):
        spec = shared_argument_spec()
        spec.update(argument_spec or {})
        super(DefenderModule, self).__init__(argument_spec=spec, **kwargs)
        if transport.REQUESTS_IMPORT_ERROR:
            self.fail_json(msg=missing_required_lib('requests'), exception=transport.REQUESTS_IMPORT_ERROR)

    def run(self, query):
        """Run ``query(client)`` and exit with its result dict (never ``changed``)."""
        client, failure, result = None, None, None
        try:
            client = DefenderClient(Settings.from_adapter(OptionAdapter.from_module(self)), warn=self.warn)
            result = query(client)
        except DefenderError as exc:
            failure = dict(msg=str(exc))
        except Exception as exc:  # pylint: disable=broad-except
            # The message stays one line; the traceback is only in the result's exception field.
            failure = dict(msg="Unexpected %s: %s" % (type(exc).__name__, exc), exception=traceback.format_exc())
        finally:
            if client is not None:
                client.close()  # before exiting: it warns when the run was throttled or retried
        if failure:
            self.fail_json(**failure)
        self.exit_json(changed=False, **result)
