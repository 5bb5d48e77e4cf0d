# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release artefacts: the built tarball installs into a fresh virtualenv and works from there;
the execution-environment definition is valid; the changelog lints and covers every plugin."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from mde_emulator import Emulator
from mde_emulator.ansible_env import playbook_env

pytestmark = pytest.mark.once

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
WINDOWS = os.environ.get('DEFENDER_TVM_WINDOWS_COLLECTION', '')


def run(command, **kwargs):
    kwargs.setdefault('timeout', 900)
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False, **kwargs)
    assert proc.returncode == 0, '%s failed:\n%s' % (' '.join(command), proc.stdout[-6000:])
    return proc.stdout


def galaxy():
    with open(os.path.join(ROOT, 'galaxy.yml')) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope='module')
def tarballs(tmp_path_factory):
    """defender.tvm built from this tree, and ansible.windows rebuilt from the copy setup.sh extracted
    (Galaxy is out of reach: the `ansible` wheel on PyPI bundles it)."""
    out = tmp_path_factory.mktemp('built')
    run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', ROOT, '--output-path', str(out)])
    windows_src = os.path.join(WINDOWS, 'ansible_collections', 'ansible', 'windows')
    assert os.path.isdir(windows_src), 'run scripts/setup.sh (it extracts ansible.windows); DEFENDER_TVM_WINDOWS_COLLECTION=%r' % WINDOWS
    copy = str(tmp_path_factory.mktemp('windows') / 'windows')
    shutil.copytree(windows_src, copy)
    with open(os.path.join(copy, 'MANIFEST.json')) as handle:
        info = json.load(handle)['collection_info']
    # The wheel keeps MANIFEST.json/FILES.json of files it stripped: rebuild from a galaxy.yml instead.
    for name in ('MANIFEST.json', 'FILES.json'):
        os.remove(os.path.join(copy, name))
    keys = ('namespace', 'name', 'version', 'readme', 'authors', 'description', 'license', 'tags', 'dependencies',
            'repository', 'documentation', 'homepage', 'issues')
    with open(os.path.join(copy, 'galaxy.yml'), 'w') as handle:
        yaml.safe_dump(dict((k, info[k]) for k in keys if info.get(k) is not None), handle)
    run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', copy, '--output-path', str(out)])
    return sorted(glob.glob(str(out / '*.tar.gz')))


def test_the_tarball_holds_the_collection_and_no_dev_files(tarballs):
    ours = [t for t in tarballs if os.path.basename(t).startswith('defender-tvm-')]
    assert [os.path.basename(t) for t in ours] == ['defender-tvm-%s.tar.gz' % galaxy()['version']]
    with tarfile.open(ours[0]) as archive:
        names = archive.getnames()
    for wanted in ('MANIFEST.json', 'plugins/modules/missing_kbs_info.py', 'plugins/lookup/missing_kbs.py',
                   'roles/kb_patching/meta/argument_specs.yml', 'playbooks/compliance.yml', 'meta/runtime.yml',
                   'meta/execution-environment.yml', 'requirements.txt'):
        assert wanted in names, wanted
    for unwanted in ('.ci/run', 'scripts/setup.sh', 'requirements-dev.txt', '.gitignore'):
        assert unwanted not in names, unwanted
    assert not [n for n in names if n.startswith(('.work', '.venv', 'tests/output', 'benchmarks'))]


def test_installed_from_the_tarball_into_a_fresh_virtualenv_it_answers(tarballs, tmp_path):
    venv = str(tmp_path / 'venv')
    run([sys.executable, '-m', 'venv', venv])
    python = os.path.join(venv, 'bin', 'python')
    run([python, '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', 'ansible-core>=2.16,<2.20',
         '-r', os.path.join(ROOT, 'requirements.txt')])
    collections = str(tmp_path / 'collections')
    # --offline with both tarballs: the ansible.windows dependency resolves without Galaxy
    run([os.path.join(venv, 'bin', 'ansible-galaxy'), 'collection', 'install', '--offline', '-p', collections] + tarballs)
    installed = os.path.join(collections, 'ansible_collections', 'defender', 'tvm')
    assert os.path.isfile(os.path.join(installed, 'MANIFEST.json'))
    playbook = tmp_path / 'query.yml'
    playbook.write_text(u'''
- name: Query from the installed collection
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Ask the emulator
      defender.tvm.missing_kbs_info:
        software_ids: [microsoft-_-windows_11]
      register: missing
    - name: Show it
      ansible.builtin.debug:
        msg: "KBS={{ missing.missing_kbs | map(attribute='kb') | join(',') }} FROM={{ lookup('ansible.builtin.env', 'ANSIBLE_COLLECTIONS_PATH') }}"
''')
    with Emulator(str(tmp_path / 'emulator')) as emu:
        env = playbook_env(collections, tmp_path)
        env.update(emu.credentials_env('secret'), ANSIBLE_PYTHON_INTERPRETER=python)  # the fresh venv's Python
        output = run([os.path.join(venv, 'bin', 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(playbook)],
                     env=env, cwd=str(tmp_path))
        expected = sorted('KB' + kb['id'] for kb in emu.data['software']['microsoft-_-windows_11']['missing_kbs'])
    shown = output.split('KBS=')[1].split(' FROM=')[0]
    assert sorted(shown.split(',')) == expected
    assert installed in run([os.path.join(venv, 'bin', 'ansible-doc'), '-t', 'module', 'defender.tvm.missing_kbs_info'],
                            env=env)


def test_execution_environment_definition(tmp_path):
    with open(os.path.join(ROOT, 'meta', 'execution-environment.yml')) as handle:
        definition = yaml.safe_load(handle)
    assert definition['dependencies']['python'] == 'requirements.txt'
    # introspect reads the collection's EE metadata the way a real image build does
    collections = str(tmp_path / 'collections')
    target = os.path.join(collections, 'ansible_collections', 'defender', 'tvm')
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns('.work', '.venv', '.git', 'tests'))
    output = run([os.path.join(BIN, 'ansible-builder'), 'introspect', '--sanitize', collections])
    for package in ('msal', 'requests', 'cryptography'):
        assert package in output and 'defender.tvm' in output
    # create writes the build context without a container engine
    ee = tmp_path / 'execution-environment.yml'
    ee.write_text(u'''---
version: 3
images:
  base_image:
    name: registry.example.invalid/ee-minimal:latest
dependencies:
  python: %s
  galaxy:
    collections:
      - name: defender.tvm
        type: dir
        source: %s
''' % (os.path.join(ROOT, 'requirements.txt'), target))
    run([os.path.join(BIN, 'ansible-builder'), 'create', '-f', str(ee), '-c', str(tmp_path / 'context')], cwd=str(tmp_path))
    context = tmp_path / 'context'
    assert (context / 'Containerfile').is_file() or (context / 'Dockerfile').is_file()  # by the runtime found
    assert 'msal' in (context / '_build' / 'requirements.txt').read_text()
    assert 'defender.tvm' in (context / '_build' / 'requirements.yml').read_text()


def test_changelog_lints_and_covers_every_plugin():
    run([os.path.join(BIN, 'antsibull-changelog'), 'lint'], cwd=ROOT)
    text = ''
    for path in glob.glob(os.path.join(ROOT, 'changelogs', 'fragments', '*.yml')) + [
            os.path.join(ROOT, 'changelogs', 'changelog.yaml')]:
        if os.path.exists(path):
            with open(path) as handle:
                text += handle.read()
    for kind in ('modules', 'lookup', 'filter'):
        for name in os.listdir(os.path.join(ROOT, 'plugins', kind)):
            if name.endswith('.py') and kind != 'filter':
                assert name[:-3] in text, 'no changelog entry names %s %s' % (kind, name[:-3])
            if name.endswith('.yml'):
                assert name[:-4] in text, 'no changelog entry names filter %s' % name[:-4]
    assert 'kb_patching' in text and 'compliance' in text and 'patch' in text
