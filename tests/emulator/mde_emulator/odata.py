"""A small OData $filter subset: eq/ne, startswith(), contains(), and/or, parentheses.

String comparisons are case-insensitive, which is how the service behaves for
the lower-case software names and the DNS names the collection filters on.
"""

import re

TOKEN_RE = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))")
FUNCTIONS = ("startswith", "contains", "endswith")


class FilterError(ValueError):
    """Syntax or semantic error in $filter (the service answers 400 ODataError)."""


def _tokenize(text):
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = TOKEN_RE.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"Syntax error at position {position} in '{text}'.")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "string":
            value = value[1:-1].replace("''", "'")
        tokens.append((kind, value, match.start(kind)))
        position = match.end()
    return tokens


class _Parser:  # pylint: disable=too-few-public-methods
    """Recursive descent: or-expression of and-expressions of terms."""

    def __init__(self, text, fields, type_name):
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.fields = {name.lower(): name for name in fields}
        self.type_name = type_name

    def _peek(self):
        return self.tokens[self.index] if self.index < len(self.tokens) else (None, None, len(self.text))

    def _next(self, kind=None, value=None):
        token = self._peek()
        if token[0] is None or (kind and token[0] != kind) or (value and token[1].lower() != value):
            raise FilterError(f"Syntax error at position {token[2]} in '{self.text}'.")
        self.index += 1
        return token

    def _field(self):
        dummy, name, dummy2 = self._next("word")
        if name.lower() not in self.fields:
            raise FilterError(f"Could not find a property named '{name}' on type '{self.type_name}'.")
        return self.fields[name.lower()]

    def parse(self):
        """The predicate for the whole expression."""
        predicate = self._or()
        if self._peek()[0] is not None:
            raise FilterError(f"Syntax error at position {self._peek()[2]} in '{self.text}'.")
        return predicate

    def _or(self):
        parts = [self._and()]
        while self._peek()[0] == "word" and self._peek()[1].lower() == "or":
            self.index += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda item: any(p(item) for p in parts))

    def _and(self):
        parts = [self._term()]
        while self._peek()[0] == "word" and self._peek()[1].lower() == "and":
            self.index += 1
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else (lambda item: all(p(item) for p in parts))

    def _term(self):
        kind, value, dummy = self._peek()
        if kind == "punct" and value == "(":
            self.index += 1
            inner = self._or()
            self._next("punct", ")")
            return inner
        if kind == "word" and value.lower() in FUNCTIONS and self.index + 1 < len(self.tokens) \
                and self.tokens[self.index + 1][1] == "(":
            self.index += 2
            field = self._field()
            self._next("punct", ",")
            literal = self._next("string")[1].lower()
            self._next("punct", ")")
            method = {"startswith": str.startswith, "contains": str.__contains__, "endswith": str.endswith}[value.lower()]
            return lambda item: isinstance(item.get(field), str) and method(item[field].lower(), literal)
        field = self._field()
        operator = self._next("word")[1].lower()
        if operator not in ("eq", "ne"):
            raise FilterError(f"Syntax error: unsupported operator '{operator}' in '{self.text}'.")
        literal = self._next("string")[1].lower()

        def compare(item):
            actual = item.get(field)
            equal = isinstance(actual, str) and actual.lower() == literal
            return equal if operator == "eq" else not equal
        return compare


def compile_filter(text, fields, type_name):
    """Return a predicate over entity dicts; raises FilterError."""
    if not text.strip():
        raise FilterError("The $filter query option cannot be empty.")
    return _Parser(text, fields, type_name).parse()
