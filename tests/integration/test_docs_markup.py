# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every documentation string parses as Ansible markup and renders without garbling.

The docs come from ``ansible-doc --json``, so they are what users see: the doc fragments merged
into each module and lookup, the filters' YAML sidecars, and the role's argument_specs.yml.
Each paragraph is parsed with antsibull-docs-parser in strict mode (an error raises), then
rendered to ansible-doc-like text with it; the rendered code spans (C(), V(), O(), RV(), E())
must not be cut short or carry escape artefacts, and the prose around them must not contain a
backslash. That catches markup that parses fine but renders wrongly: C() has no escaping, so
``C(a (b\\)c)`` ends at the first ``)`` and renders as ``a (b\\`` followed by ``c)``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import subprocess
import sys

import pytest

from antsibull_docs_parser import dom
from antsibull_docs_parser.ansible_doc_text import AnsibleDocTextFormatter, to_ansible_doc_text
from antsibull_docs_parser.parser import Context, parse

from ansible_collections.defender.tvm.tests.integration.harness import COLLECTION_ROOT, collections_path

ROLES = sorted(d for d in os.listdir(os.path.join(COLLECTION_ROOT, 'roles'))
               if os.path.isfile(os.path.join(COLLECTION_ROOT, 'roles', d, 'meta', 'argument_specs.yml')))


def plugin_names(directory, suffix):
    path = os.path.join(COLLECTION_ROOT, 'plugins', directory)
    return sorted('defender.tvm.' + f[:-len(suffix)] for f in os.listdir(path)
                  if f.endswith(suffix) and not f.startswith('_') and f != '__init__.py')


# plugin type -> names; filters are documented by their YAML sidecars (one per filter).
DOCUMENTED = {
    'module': plugin_names('modules', '.py'),
    'lookup': plugin_names('lookup', '.py'),
    'filter': plugin_names('filter', '.yml'),
    'role': ['defender.tvm.' + r for r in ROLES],
}

# Keys whose values are markup (a string or a list of paragraphs), wherever they appear in the
# docs: plugin and role descriptions, options and suboptions, return values and what they
# contain, attributes, seealso entries, deprecations.
MARKUP_KEYS = frozenset(['description', 'short_description', 'notes', 'requirements', 'returned', 'details',
                         'why', 'alternative'])
# Values, not markup: never looked into.
VALUE_KEYS = frozenset(['sample', 'default', 'choices', 'example', 'examples', 'version_added', 'filename',
                        'metadata', 'collection', 'plugin_name', 'version_added_collection', 'positional'])


def ansible_doc_json(kind, names):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR='1')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-doc'), '--json', '-t', kind] + list(names),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert sorted(docs) == sorted(names), proc.stderr
    return docs


def markup(node, where):
    """``(where, [paragraph, ...])`` for every markup value under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in VALUE_KEYS:
                continue
            here = '%s.%s' % (where, key)
            if key in MARKUP_KEYS and isinstance(value, str):
                yield here, [value]
            elif key in MARKUP_KEYS and isinstance(value, list) and all(isinstance(v, str) for v in value):
                yield here, value
            else:
                yield from markup(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from markup(value, '%s[%d]' % (where, index))


class RecordingFormatter(AnsibleDocTextFormatter):
    """antsibull-docs-parser's ansible-doc text rendering, noting what each code span and each
    run of prose renders to."""

    def __init__(self):
        self.code = []
        self.prose = []

    def format_code(self, part):
        self.code.append(part.text)
        return super(RecordingFormatter, self).format_code(part)

    def format_option_value(self, part):
        self.code.append(part.value)
        return super(RecordingFormatter, self).format_option_value(part)

    def format_env_variable(self, part):
        self.code.append(part.name)
        return super(RecordingFormatter, self).format_env_variable(part)

    def format_option_name(self, part, url):
        self.code.extend(v for v in (part.name, part.value) if v is not None)
        return super(RecordingFormatter, self).format_option_name(part, url)

    def format_return_value(self, part, url):
        self.code.extend(v for v in (part.name, part.value) if v is not None)
        return super(RecordingFormatter, self).format_return_value(part, url)

    def format_text(self, part):
        self.prose.append(part.text)
        return super(RecordingFormatter, self).format_text(part)

    def format_bold(self, part):
        self.prose.append(part.text)
        return super(RecordingFormatter, self).format_bold(part)

    def format_italic(self, part):
        self.prose.append(part.text)
        return super(RecordingFormatter, self).format_italic(part)

    def format_link(self, part):
        self.prose.append(part.text)
        return super(RecordingFormatter, self).format_link(part)


def balanced(text):
    depth = 0
    for char in text:
        depth += {'(': 1, ')': -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def garbling(paragraph, context):
    """What is wrong with one paragraph once parsed (strictly) and rendered; [] when nothing."""
    parsed = parse(paragraph, context, errors='exception', strict=True)
    formatter = RecordingFormatter()
    rendered = to_ansible_doc_text(parsed, formatter=formatter, current_plugin=context.current_plugin)
    problems = []
    for code in formatter.code:
        if not balanced(code):
            problems.append('the code span %r has unbalanced parentheses (cut short at a ")"?)' % code)
        if re.search(r'\\(\)|\\|$)', code):
            problems.append('the code span %r carries an escape artefact (a backslash before ")" or "\\", or at its end)'
                            % code)
    for prose in formatter.prose:
        if '\\' in prose:
            problems.append('the text %r has a stray backslash' % prose)
    return ['%s (renders as: %s)' % (problem, rendered) for problem in problems]


def documentation_strings(kind, name, docs):
    """``(where, paragraph, context)`` for every documentation string of one plugin or role."""
    plugin = dom.PluginIdentifier(fqcn=name, type=kind)
    if kind == 'role':
        for entry_point, spec in sorted(docs['entry_points'].items()):
            context = Context(current_plugin=plugin, role_entrypoint=entry_point)
            for where, paragraphs in markup(spec, '%s:%s' % (name, entry_point)):
                for paragraph in paragraphs:
                    yield where, paragraph, context
        return
    context = Context(current_plugin=plugin)
    for section in ('doc', 'return'):
        for where, paragraphs in markup(docs.get(section) or {}, '%s %s' % (name, section)):
            for paragraph in paragraphs:
                yield where, paragraph, context


@pytest.mark.parametrize('kind', sorted(DOCUMENTED))
def test_every_documentation_string_parses_strictly_and_renders_cleanly(kind):
    names = DOCUMENTED[kind]
    assert names, 'no %s found to check' % kind
    docs = ansible_doc_json(kind, names)
    problems, checked = [], 0
    for name in names:
        strings = list(documentation_strings(kind, name, docs[name]))
        assert strings, 'no documentation strings found for %s %s' % (kind, name)
        for where, paragraph, context in strings:
            checked += 1
            try:
                found = garbling(paragraph, context)
            except ValueError as exc:  # strict parsing: malformed or needlessly escaped markup
                found = [str(exc)]
            problems.extend('%s: %s' % (where, problem) for problem in found)
    assert checked
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('kind', ['module', 'lookup'])
def test_ansible_doc_text_has_no_escape_artefacts(kind):
    """ansible-doc's own text rendering: an escaped ")" inside C() shows as a backslash before the closing quote."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR='1')
    for name in DOCUMENTED[kind]:
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-doc'), '-t', kind, name],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "\\'" not in proc.stdout, '%s %s: ansible-doc renders an escape artefact:\n%s' % (
            kind, name, '\n'.join(line for line in proc.stdout.splitlines() if "\\'" in line))


# -- the checker itself -----------------------------------------------------------------------------------------

PLUGIN_CONTEXT = Context(current_plugin=dom.PluginIdentifier(fqcn='defender.tvm.missing_kbs_info', type='module'))


@pytest.mark.parametrize('paragraph', [
    'the title followed by its KB IDs (for example C(... (KB4540673\\)KB4540673)).',  # C() has no escapes
    'for example V(startswith(name,\'windows\')).',  # V() ends at the first unescaped ")"
    'a stray \\ in the text',
])
def test_the_checker_finds_garbling(paragraph):
    assert garbling(paragraph, PLUGIN_CONTEXT)


@pytest.mark.parametrize('paragraph', [
    'for example V(... (KB4540673\\)KB4540673), a regex C(KB\\d+), O(software_ids), RV(accept_list), E(MDE_CLIENT_ID).',
    'for example V(startswith(name,\'windows\'\\)).',
])
def test_the_checker_accepts_correct_markup(paragraph):
    assert garbling(paragraph, PLUGIN_CONTEXT) == []


def test_strict_parsing_raises_on_broken_markup():
    with pytest.raises(ValueError):
        garbling('an unterminated C(code', PLUGIN_CONTEXT)
    with pytest.raises(ValueError):
        garbling('a needless escape V(a\\b)', PLUGIN_CONTEXT)
