"""The environment for an ``ansible-playbook`` run against the emulator, for every harness.

The integration tests, the packaging tests and the benchmark all run real ``ansible-playbook``
processes; they build their environment here, so that what may leak in from the machine is
decided in one place. Credentials come from ``Emulator.credentials_env``.
"""

import os
import sys

# The variables a run must get from its harness: none may leak in from the machine running it.
# The machine's REQUESTS_CA_BUNDLE stays: the collection's ca_path must win over it.
SCRUBBED_PREFIXES = ("MDE_", "AZURE_", "ANSIBLE_")
SCRUBBED = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


def playbook_env(collections_path, work_dir, pwd=True):
    """This machine's environment without the scrubbed variables, plus quiet, self-contained Ansible
    settings: collections from ``collections_path``, temporary files and ANSIBLE_HOME in
    ``work_dir``. ``PWD`` is ``work_dir``, as a shell would set it for a run there (``pwd=False``:
    unset, as some runners leave it)."""
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES) and k not in SCRUBBED)
    env.pop("PWD", None)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_path,
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "0",
        "ANSIBLE_LOCAL_TEMP": os.path.join(str(work_dir), "ansible-tmp"),
        "ANSIBLE_HOME": os.path.join(str(work_dir), "ansible-home"),
    })
    if pwd:
        env["PWD"] = str(work_dir)
    return env
