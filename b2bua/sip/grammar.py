"""Small pieces of the RFC 3261 §25 grammar shared by URIs, headers and bodies.

Everything here works on `str` (header text is decoded with surrogateescape by the
message parser so no byte is lost). Parsers are tolerant: they accept what real peers
send and leave strictness to the callers that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from .errors import MessageError


class Params:
    """Ordered `;name=value` parameters with case-insensitive names (RFC 3261 §19.1.4, §7.3.1).

    Names and values keep the spelling they arrived with, so `str()` re-emits them as
    written; a flag parameter (`;lr`, `;rport`) has the value None.

    The items are held in a tuple (replaced, not changed in place, by `set`/`remove`):
    every URI, Via and name-addr of a message has a Params, most of them live as long as
    their transaction or dialog, and a tuple of strings is not tracked by the cyclic
    garbage collector where a list is. The text is cached for the same reason it is asked
    for repeatedly: serializing a message writes each URI's parameters.
    """

    __slots__ = ("_items", "_text")

    def __init__(self, items: Iterable[tuple[str, str | None]] | None = None) -> None:
        self._items: tuple[tuple[str, str | None], ...] = tuple(items) if items else ()
        self._text: str | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower()
        for item_name, value in self._items:
            if item_name == key or item_name.lower() == key:
                return value
        return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return any(item_name.lower() == key for item_name, _ in self._items)

    def __getitem__(self, name: str) -> str | None:
        key = name.lower()
        for item_name, value in self._items:
            if item_name.lower() == key:
                return value
        raise KeyError(name)

    def set(self, name: str, value: str | None = None) -> None:
        key = name.lower()
        items = list(self._items)
        for index, (item_name, _) in enumerate(items):
            if item_name.lower() == key:
                items[index] = (item_name, value)
                break
        else:
            items.append((name, value))
        self._items = tuple(items)
        self._text = None

    def remove(self, name: str) -> None:
        key = name.lower()
        self._items = tuple(item for item in self._items if item[0].lower() != key)
        self._text = None

    def items(self) -> Iterator[tuple[str, str | None]]:
        return iter(self._items)

    def copy(self) -> Params:
        copied = Params()
        copied._items = self._items  # immutable: shared until either side changes
        copied._text = self._text
        return copied

    def __len__(self) -> int:
        return len(self._items)

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self._text = "".join(
                f";{name}" if value is None else f";{name}={value}" for name, value in self._items
            )
        return text

    def __repr__(self) -> str:
        return f"Params({list(self._items)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return {(n.lower(), v) for n, v in self._items} == {(n.lower(), v) for n, v in other._items}


def parse_params(text: str) -> Params:
    """Parse `;a=b;c;d="x;y"` (leading `;` optional). Quoted values may contain `;`."""
    items: list[tuple[str, str | None]] = []
    for chunk in split_outside_quotes(text, ";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        name, eq, value = chunk.partition("=")
        name = name.strip()
        if not name:
            raise MessageError(f"parameter without a name in {text!r}")
        items.append((name, value.strip() if eq else None))
    return Params(items)


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on `separator` except inside quoted strings and angle brackets (RFC 3261 §7.3.1)."""
    if '"' not in text and "<" not in text:
        return text.split(separator)
    pieces: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if in_quotes:
            if char == "\\":
                index += 1  # quoted-pair: skip the escaped character (§25.1)
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            in_angle = True
        elif char == ">":
            in_angle = False
        elif char == separator and not in_angle:
            pieces.append(text[start:index])
            start = index + 1
        index += 1
    if in_quotes:
        raise MessageError(f"unterminated quoted string in {text!r}")
    pieces.append(text[start:])
    return pieces


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value into its elements (RFC 3261 §7.3.1)."""
    if "," not in value:
        stripped = value.strip()
        return [stripped] if stripped else []
    return [piece.strip() for piece in split_outside_quotes(value, ",") if piece.strip()]


def unquote(text: str) -> str:
    """Remove the quotes of a quoted-string and resolve its quoted-pairs (RFC 3261 §25.1)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if "\\" not in inner:
            return inner
        out = []
        escaped = False
        for char in inner:
            if escaped:
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                out.append(char)
        return "".join(out)
    return text


def quote(text: str) -> str:
    """Make a quoted-string, escaping `"` and `\\`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")


def is_token(text: str) -> bool:
    """RFC 3261 §25.1 token."""
    return bool(text) and TOKEN_CHARS.issuperset(text)


class _Copyable(Protocol):
    def copy(self): ...  # noqa: ANN201


_Parsed = TypeVar("_Parsed", bound=_Copyable)


class ParsedTexts(Generic[_Parsed]):
    """Each distinct text parsed once: values that repeat in every message of a dialog
    (From, To, Contact, the URIs in them) skip the grammar. `parse` gives every caller
    its own `copy()`, which it may change; `shared` gives the remembered object itself,
    for read-only views (a message's From/To/Contact). Bounded: emptied when full, and
    long texts are not kept. A text that does not parse is not remembered (the parse
    raises each time)."""

    def __init__(self, parse: Callable[[str], _Parsed], size: int = 1024, longest: int = 512) -> None:
        self._parse = parse
        self._size = size
        self._longest = longest  # characters
        self._seen: dict[str, _Parsed] = {}

    def parse(self, text: str) -> _Parsed:
        return self.shared(text).copy()

    def shared(self, text: str) -> _Parsed:
        """The parse of `text`, shared with every other caller: never to be changed."""
        parsed = self._seen.get(text)
        if parsed is None:
            parsed = self._parse(text)
            if len(text) <= self._longest:
                if len(self._seen) >= self._size:
                    self._seen.clear()
                self._seen[text] = parsed
        return parsed

