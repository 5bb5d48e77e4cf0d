# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline stand-in for the get-pip.py that ansible-test downloads from a host we cannot reach.

ansible-test looks for ~/.ansible/test/cache/get_pip_<version>.py before downloading;
scripts/setup.sh copies this file there. It bootstraps pip with ensurepip, then lets pip
install the version ansible-test asks for from PyPI.
"""
import subprocess
import sys

ARGS = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install', '--upgrade', '--disable-pip-version-check'] + ARGS))
