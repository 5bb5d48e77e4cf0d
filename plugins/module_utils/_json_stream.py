# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An OData page read as it arrives, item by item, with the standard library's JSON decoder.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.

The vulnerability export's JSON pages hold up to 200,000 records (50,000 by default); decoded
whole (``response.json()``) a page is in memory three times at once - bytes, text and objects -
about 220 MB at the default size. Read here, each record is handed over as soon as it is decoded
and the text behind it is dropped, so memory holds one record and one chunk. The stdlib decoder
(``json.JSONDecoder.raw_decode``) does the decoding, so what is accepted or refused is exactly what
``json.loads`` accepts or refuses; a streaming JSON library (ijson) would be a new dependency for
this one use.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import codecs
import json
import re

_JSON_WHITESPACE_RE = re.compile(r'[ \t\n\r]*')
_JSON_DECODER = json.JSONDecoder()
_PAGE_CHUNK = 1 << 16
_NUMBER_CHARS = frozenset('0123456789+-.eE')


class _StreamedJson:
    """A response body's text, decoded as it arrives, and JSON values read from it one at a time."""

    def __init__(self, chunks, decoder):
        self._chunks = chunks
        self._decoder = decoder
        self.text = ''
        self.pos = 0
        self.eof = False

    def more(self, wanted=1):
        """Decode at least ``wanted`` more characters (or up to the end) onto the text; False at the
        end of the body. Only what is not read yet is kept: the rest of a value, then the new text."""
        if self.eof:
            return False
        parts, got = [self.text[self.pos:]], 0
        for chunk in self._chunks:
            if chunk:
                piece = self._decoder.decode(chunk)
                parts.append(piece)
                got += len(piece)
                if got >= wanted:
                    break
        else:
            parts.append(self._decoder.decode(b'', True))
            self.eof = True
        self.text, self.pos = ''.join(parts), 0
        return True

    def peek(self):
        """The next character that is not JSON whitespace ('' at the end of the body)."""
        while True:
            self.pos = _JSON_WHITESPACE_RE.match(self.text, self.pos).end()
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ''

    def take(self, expected):
        """The next character, one of ``expected``; ValueError if it is another or the body ended."""
        char = self.peek()
        if not char or char not in expected:
            raise ValueError('JSON: expected %s at character %d of a page' % (' or '.join(expected), self.pos))
        self.pos += 1
        return char

    def value(self):
        """The next JSON value, as json.loads reads it (the same decoder)."""
        self.peek()
        while True:
            try:
                value, end = _JSON_DECODER.raw_decode(self.text, self.pos)
            except ValueError:
                # Not complete yet, or not JSON: twice as much text before trying again, so that a
                # body that is not JSON is not decoded again at every chunk.
                if not self.more(len(self.text) - self.pos + 1):
                    raise
                continue
            if not self.eof and (end == len(self.text) or (isinstance(value, (int, float)) and self.text[end] in _NUMBER_CHARS)):
                # A number or a literal may go on in the next chunk (2.5 of 2.5e10): read it again.
                self.more()
                continue
            self.pos = end
            return value

    def rest(self):
        """The text up to the end of the body."""
        self.more(float('inf'))
        return self.text[self.pos:]


def parse_odata_page(response, on_item, restart=None):
    """The body of an OData page read as it arrives: each item of its ``value`` list is given to
    ``on_item`` as soon as it is decoded and is not kept, so the page is never held in memory.
    Returns the body with ``value`` as an empty list (its other keys as they are). A body with a
    second ``value`` (json.loads keeps the last) calls ``restart()`` before giving its items.

    What it accepts and refuses is what ``response.json()`` does (the same decoder, item by item):
    a body that is not valid JSON raises ValueError, so ``Transport.get_json`` reads it again. A body
    that is not an object, or without a charset (requests would guess its encoding from the whole
    body), is read whole and decoded as ``response.json()`` decodes it.
    """
    encoding = response.encoding
    decoder = None
    if encoding:
        try:
            decoder = codecs.getincrementaldecoder(encoding)(errors='replace')
        except LookupError:  # requests' .text: an unknown charset is read as UTF-8
            decoder = codecs.getincrementaldecoder('utf-8')(errors='replace')
    if decoder is None:
        body = response.json()
        return _items_to(body, on_item)
    stream = _StreamedJson(response.iter_content(_PAGE_CHUNK), decoder)
    if stream.peek() != '{':
        return _items_to(json.loads(stream.rest()), on_item)
    stream.pos += 1
    body = {}
    if stream.peek() == '}':
        stream.pos += 1
    else:
        while True:
            if stream.peek() != '"':
                raise ValueError('JSON: expected a property name at character %d of a page' % stream.pos)
            key = stream.value()
            stream.take(':')
            if key == 'value' and stream.peek() == '[':
                if key in body and restart is not None:
                    restart()
                stream.pos += 1
                if stream.peek() == ']':
                    stream.pos += 1
                else:
                    while True:
                        on_item(stream.value())
                        if stream.take(',]') == ']':
                            break
                body[key] = []
            else:
                body[key] = stream.value()
            if stream.take(',}') == '}':
                break
    if stream.peek() != '':
        raise ValueError('JSON: extra data at character %d of a page' % stream.pos)
    return body


def _items_to(body, on_item):
    """A body read whole: its ``value`` items to ``on_item``, as parse_odata_page gives them."""
    if isinstance(body, dict) and isinstance(body.get('value'), list):
        for item in body['value']:
            on_item(item)
        body = dict(body, value=[])
    return body
