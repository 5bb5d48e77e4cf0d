# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""parse_odata_page: an OData page read item by item accepts and refuses what json.loads does."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.defender.tvm.plugins.module_utils._json_stream import parse_odata_page


class Response:
    """A streamed body in chunks of ``chunk`` bytes, with the charset requests found (or None)."""

    def __init__(self, text, chunk, encoding='utf-8'):
        self.data, self.chunk, self.encoding = text.encode('utf-8'), chunk, encoding

    def iter_content(self, size):
        for start in range(0, len(self.data), self.chunk):
            yield self.data[start:start + self.chunk]

    def json(self):
        return json.loads(self.data.decode('utf-8'))


def streamed(text, chunk):
    items = []
    body = parse_odata_page(Response(text, chunk), items.append)
    return body, items


BODIES = [
    '{"@odata.context": "x", "value": []}',
    '{"value": [{"a": 1}], "@odata.nextLink": "https://api/next?$skiptoken=abc"}',
    '{"@odata.context":"x","value":[{"n":2.5e10,"m":-0.125,"t":true,"f":false,"z":null,"s":"caf\\u00e9 \\"q\\""}]}',
    u'{"value": [{"name": "Z\u00fcrich \u2014 \U0001F600", "list": [1, [2, {"x": "]"}]]}, {"k": "}{,:"}]}',
    '  {  "value" : [ 12345678901234567890 , 7 , "KB5034122" ] , "x" : { "value": [1] } }  ',
]


@pytest.mark.parametrize('text', BODIES)
@pytest.mark.parametrize('chunk', [1, 2, 3, 7, 1 << 16])
def test_items_and_body_are_what_json_loads_reads(text, chunk):
    expected = json.loads(text)
    body, items = streamed(text, chunk)
    assert items == expected['value']
    assert body == dict(expected, value=[])


@pytest.mark.parametrize('text', [
    '{"value": [{"a": 1}, {"a": 2}',     # cut off: a truncated page
    '{"value": [{"a": 1},, {"a": 2}]}',
    '{"value": [{"a": 1}]} trailing',
    '{"value": [{"a": 01}]}',
    '{"value": [{"a": 1}] "b": 2}',
    '{value: []}',
    '',
])
@pytest.mark.parametrize('chunk', [1, 5, 1 << 16])
def test_what_json_loads_refuses_raises_value_error(text, chunk):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        streamed(text, chunk)


def test_a_second_value_list_restarts_as_json_loads_keeps_the_last():
    restarts, items = [], []
    text = '{"value": [1, 2], "value": [3]}'
    parse_odata_page(Response(text, 3), items.append, lambda: (restarts.append(True), items.clear()))
    assert items == json.loads(text)['value'] == [3] and restarts == [True]


def test_a_body_that_is_not_an_object_or_has_no_charset_is_read_whole():
    items = []
    assert parse_odata_page(Response('[1, 2]', 2), items.append) == [1, 2] and items == []
    body = parse_odata_page(Response('{"value": [{"a": 1}]}', 2, encoding=None), items.append)
    assert body == {'value': []} and items == [{'a': 1}]
