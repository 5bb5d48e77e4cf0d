"""A small OData $filter subset: comparisons, startswith()/contains()/endswith(), any(), and/or, parentheses.

Fields are typed (``compile_filter``'s ``fields``: a name -> type mapping, or a sequence of names
that are all strings):
* ``STRING``: ``eq``/``ne`` against a quoted literal or ``null``, and the three functions.
  Comparisons ignore case, which is how the service behaves for the lower-case software names and
  the DNS names the collection filters on.
* ``NUMBER``: ``eq``, ``ne``, ``gt``, ``ge``, ``lt``, ``le`` against a number or ``null``
  (``rbacGroupId eq 201``).
* ``DATETIME``: the same six against an unquoted date or date and time, as Microsoft writes them
  (``lastSeen gt 2018-08-01Z``, ``lastSeen ge 2024-02-19T00:00:00Z``, an offset ``+01:00``; a
  literal without a zone is UTC), or ``null``.
* ``STRINGS`` (a collection of strings, ``machineTags``): only through a lambda,
  ``machineTags/any(tag: tag eq 'Prod')`` (any variable name; inside, the variable is a string;
  ``machineTags/any()`` is true when the collection is not empty).

A literal of another type than the field's (``rbacGroupId eq '201'``, ``lastSeen gt '2024-01-01'``),
an ordering operator on a string, a function on a non-string, an unknown field or bad syntax raise
``FilterError`` (the service answers 400 ODataError).
"""

import datetime
import functools
import re

STRING, NUMBER, DATETIME, STRINGS = "Edm.String", "Edm.Int64", "Edm.DateTimeOffset", "Collection(Edm.String)"
DATETIME_LITERAL = (r"\d{4}-\d\d-\d\d(?:[Tt]\d\d:\d\d(?::\d\d(?:\.\d{1,7})?)?)?(?:[Zz]|[+-]\d\d:\d\d)?")
TOKEN_RE = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')"
                      rf"|(?P<datetime>{DATETIME_LITERAL})(?![A-Za-z0-9_.:])"
                      r"|(?P<number>-?\d+(?:\.\d+)?)(?![A-Za-z0-9_.:-])"
                      r"|(?P<punct>[(),/:])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))")
DATETIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,7}))?)?)?(Z|[+-]\d\d:?\d\d)?$",
                         re.IGNORECASE)
FUNCTIONS = ("startswith", "contains", "endswith")
LAMBDAS = ("any",)
OPERATORS = {"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual", "lt": "LessThan",
             "le": "LessThanOrEqual"}
ORDERED = (NUMBER, DATETIME)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
NULL = object()  # the literal null


class FilterError(ValueError):
    """Syntax or semantic error in $filter (the service answers 400 ODataError)."""


@functools.lru_cache(maxsize=262144)
def ticks(text):
    """An ISO 8601 date or date and time as 100-nanosecond ticks since 1970 (UTC unless it has a zone),
    or None if it is not one. Exact to the seven fractional digits of Defender's timestamps."""
    match = DATETIME_RE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                                   int(second or 0), tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    if zone and zone.upper() != "Z":
        digits = zone[1:].replace(":", "")
        offset = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        moment = moment - offset if zone[0] == "+" else moment + offset
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + int((fraction or "0").ljust(7, "0"))


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


def _compare(operator, actual, literal):
    """OData's comparison of a value (None for null) with a literal (NULL for null)."""
    if literal is NULL:
        return (actual is None) == (operator == "eq")
    if actual is None:
        return operator == "ne"
    if operator == "eq":
        return actual == literal
    if operator == "ne":
        return actual != literal
    return {"gt": actual > literal, "ge": actual >= literal, "lt": actual < literal, "le": actual <= literal}[operator]


class _Parser:  # pylint: disable=too-few-public-methods
    """Recursive descent: or-expression of and-expressions of terms. A predicate is ``f(item, value)``,
    ``value`` being the current element of a lambda (None outside one)."""

    def __init__(self, text, fields, type_name):
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        if not isinstance(fields, dict):
            fields = dict.fromkeys(fields, STRING)
        self.types = {name.lower(): kind for name, kind in fields.items()}
        self.fields = {name.lower(): name for name in fields}
        self.type_name = type_name
        self.variable = None  # the lambda variable in scope (lower case)

    def _peek(self, ahead=0):
        index = self.index + ahead
        return self.tokens[index] if index < len(self.tokens) else (None, None, len(self.text))

    def _syntax(self, token=None):
        token = token or self._peek()
        return FilterError(f"Syntax error at position {token[2]} in '{self.text}'.")

    def _next(self, kind=None, value=None):
        token = self._peek()
        if token[0] is None or (kind and token[0] != kind) or (value and token[1].lower() != value):
            raise self._syntax(token)
        self.index += 1
        return token

    def _is(self, kind, value, ahead=0):
        token = self._peek(ahead)
        return token[0] == kind and token[1].lower() == value

    def _operand(self):
        """(type, getter(item, value), name) of a field or of the lambda variable."""
        dummy, name, dummy2 = self._next("word")
        if self.variable is not None and name.lower() == self.variable:
            return STRING, lambda item, value: value, name
        if name.lower() not in self.fields:
            raise FilterError(f"Could not find a property named '{name}' on type '{self.type_name}'.")
        field, kind = self.fields[name.lower()], self.types[name.lower()]
        if kind == STRINGS:
            raise FilterError(f"The property '{field}' is a collection: filter it with a lambda, e.g. "
                              f"{field}/any(x: x eq 'value').")
        if kind == DATETIME:
            return kind, lambda item, value: ticks(item[field]) if isinstance(item.get(field), str) else None, field
        if kind == NUMBER:
            return kind, lambda item, value: item.get(field) if isinstance(item.get(field), (int, float)) \
                and not isinstance(item.get(field), bool) else None, field
        return kind, lambda item, value: item[field].lower() if isinstance(item.get(field), str) else None, field

    def _literal(self, kind, operator, name):
        token = self._peek()
        found = {"string": STRING, "number": NUMBER, "datetime": DATETIME}.get(token[0])
        if token[0] == "word" and token[1] == "null":
            self.index += 1
            return NULL
        if found is None:
            raise self._syntax(token)
        if found != kind:
            raise FilterError(f"A binary operator with incompatible types was detected. Found operand types "
                              f"'{kind}' and '{found}' for operator kind '{OPERATORS[operator]}' "
                              f"(property '{name}').")
        self.index += 1
        if kind == STRING:
            return token[1].lower()
        if kind == NUMBER:
            return float(token[1]) if "." in token[1] else int(token[1])
        value = ticks(token[1])
        if value is None:
            raise FilterError(f"The DateTimeOffset literal '{token[1]}' is not valid in '{self.text}'.")
        return value

    def parse(self):
        """The predicate for the whole expression."""
        predicate = self._or()
        if self._peek()[0] is not None:
            raise self._syntax()
        return lambda item: predicate(item, None)

    def _or(self):
        parts = [self._and()]
        while self._is("word", "or"):
            self.index += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda item, value: any(p(item, value) for p in parts))

    def _and(self):
        parts = [self._term()]
        while self._is("word", "and"):
            self.index += 1
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else (lambda item, value: all(p(item, value) for p in parts))

    def _term(self):
        kind, value, dummy = self._peek()
        if kind == "punct" and value == "(":
            self.index += 1
            inner = self._or()
            self._next("punct", ")")
            return inner
        if kind == "word" and value.lower() in FUNCTIONS and self._is("punct", "(", 1):
            return self._function(value.lower())
        if kind == "word" and self._is("punct", "/", 1):
            return self._lambda()
        operand_kind, getter, name = self._operand()
        operator = self._next("word")[1].lower()
        if operator not in OPERATORS:
            raise FilterError(f"Syntax error: unsupported operator '{operator}' in '{self.text}'.")
        if operator not in ("eq", "ne") and operand_kind not in ORDERED:
            raise FilterError(f"Syntax error: the operator '{operator}' is not supported on the {operand_kind} "
                              f"property '{name}' in '{self.text}'.")
        literal = self._literal(operand_kind, operator, name)
        if literal is NULL and operator not in ("eq", "ne"):
            raise FilterError(f"Syntax error: '{operator} null' in '{self.text}'.")
        return lambda item, current: _compare(operator, getter(item, current), literal)

    def _function(self, name):
        self.index += 2
        operand_kind, getter, field = self._operand()
        if operand_kind != STRING:
            raise FilterError(f"No function signature for the function with name '{name}' matches the "
                              f"{operand_kind} property '{field}'.")
        self._next("punct", ",")
        literal = self._next("string")[1].lower()
        self._next("punct", ")")
        method = {"startswith": str.startswith, "contains": str.__contains__, "endswith": str.endswith}[name]

        def call(item, current):
            actual = getter(item, current)
            return actual is not None and method(actual, literal)
        return call

    def _lambda(self):
        dummy, name, dummy2 = self._next("word")
        if self.variable is not None and name.lower() == self.variable:
            raise FilterError(f"A lambda over the lambda variable '{name}' is not supported in '{self.text}'.")
        if name.lower() not in self.fields:
            raise FilterError(f"Could not find a property named '{name}' on type '{self.type_name}'.")
        field = self.fields[name.lower()]
        if self.types[name.lower()] != STRINGS:
            raise FilterError(f"The property '{field}' is not a collection: any() needs a collection property.")
        self._next("punct", "/")
        operator = self._next("word")[1].lower()
        if operator not in LAMBDAS:
            raise FilterError(f"Syntax error: unsupported lambda operator '{operator}' in '{self.text}'.")
        self._next("punct", "(")
        if self._is("punct", ")"):  # any(): the collection is not empty
            self.index += 1
            return lambda item, current: bool(item.get(field))
        if self.variable is not None:
            raise FilterError(f"Nested lambdas are not supported in '{self.text}'.")
        variable = self._next("word")[1]
        if variable.lower() in ("and", "or", "eq", "ne", "null") or variable.lower() in FUNCTIONS:
            raise self._syntax()
        self._next("punct", ":")
        self.variable = variable.lower()
        try:
            body = self._or()
        finally:
            self.variable = None
        self._next("punct", ")")

        def any_of(item, current):  # pylint: disable=unused-argument
            values = item.get(field)
            if not isinstance(values, list):
                return False
            return any(body(item, v.lower() if isinstance(v, str) else None) for v in values)
        return any_of


def compile_filter(text, fields, type_name):
    """Return a predicate over entity dicts; raises FilterError.

    ``fields``: name -> type (``STRING``, ``NUMBER``, ``DATETIME``, ``STRINGS``), or names (all strings).
    """
    if not text.strip():
        raise FilterError("The $filter query option cannot be empty.")
    return _Parser(text, fields, type_name).parse()
