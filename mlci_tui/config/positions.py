"""Line numbers of keys in a TOML document.

`tomllib` gives values without positions, and reports lines only for syntax
errors. To point a schema error at ``config.toml:14`` this module scans a
document that `tomllib` has already accepted and records the line on which
each key, table and array element is written. It assumes valid TOML, so it
only has to skip values correctly (strings of all four kinds, nested arrays
and inline tables spanning lines), not to diagnose them.
"""

from __future__ import annotations

import re

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

Path = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# A scalar ends at whitespace or punctuation, except the space inside a
# date-time such as 1979-05-27 07:32:00.
_SCALAR = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:[^\s,\]}#]*|[^\s,\]}#]+")


def key_lines(text: str) -> dict[Path, int]:
    """Map each key path to the 1-based line where it is defined.

    Tables (``[a.b]``), keys (``a.b = 1``), keys of inline tables and array
    elements are all recorded. An element of an array of tables gets its
    index in the path: ``("models", 0, "name")``.
    """
    return _Scanner(text).scan()


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self.array_tables: dict[Path, int] = {}

    def scan(self) -> dict[Path, int]:
        prefix: Path = ()
        while True:
            self._skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            if self.text.startswith("[[", self.pos):
                self.pos += 2
                keys = self._key(closing="]")
                # The last key names the array itself, not one of its elements.
                path = (*self._resolve(keys[:-1]), keys[-1])
                self._expect("]]")
                index = self.array_tables.get(path, 0)
                self.array_tables[path] = index + 1
                self._record(path)
                prefix = (*path, index)
                self._record(prefix)
            elif self.text.startswith("[", self.pos):
                self.pos += 1
                prefix = self._resolve(self._key(closing="]"))
                self._expect("]")
                for depth in range(1, len(prefix) + 1):
                    self._record(prefix[:depth])
            else:
                self._key_value(prefix)
            self._skip_to_line_end()

    def _resolve(self, keys: tuple[str, ...]) -> Path:
        """Insert the current index after each array-of-tables in ``keys``."""
        path: Path = ()
        for key in keys:
            path = (*path, key)
            if path in self.array_tables:
                path = (*path, self.array_tables[path] - 1)
        return path

    def _record(self, path: Path) -> None:
        self.lines.setdefault(path, self.line)

    def _key_value(self, prefix: Path) -> None:
        keys = self._key(closing="=")
        for depth in range(1, len(keys) + 1):
            self._record((*prefix, *keys[:depth]))
        self._skip_blank()
        self._expect("=")
        self._skip_blank()
        self._value((*prefix, *keys))

    def _key(self, closing: str) -> tuple[str, ...]:
        keys: list[str] = []
        while True:
            self._skip_blank()
            char = self.text[self.pos]
            if char in "\"'":
                start = self.pos
                self._string()
                keys.append(tomllib.loads("k = " + self.text[start : self.pos])["k"])
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if match is None:
                    raise ValueError(f"unexpected {char!r} in a key on line {self.line}")
                keys.append(match.group(0))
                self.pos = match.end()
            self._skip_blank()
            if self.text.startswith(".", self.pos):
                self.pos += 1
                continue
            if not self.text.startswith(closing, self.pos):
                raise ValueError(f"expected {closing!r} on line {self.line}")
            return tuple(keys)

    def _value(self, path: Path) -> None:
        char = self.text[self.pos]
        if char in "\"'":
            self._string()
        elif char == "[":
            self.pos += 1
            index = 0
            while True:
                self._skip_blank(newlines=True)
                if self.text.startswith("]", self.pos):
                    self.pos += 1
                    return
                self._record((*path, index))
                self._value((*path, index))
                self._skip_blank(newlines=True)
                if self.text.startswith(",", self.pos):
                    self.pos += 1
                index += 1
        elif char == "{":
            self.pos += 1
            while True:
                self._skip_blank(newlines=True)
                if self.text.startswith("}", self.pos):
                    self.pos += 1
                    return
                self._key_value(path)
                self._skip_blank(newlines=True)
                if self.text.startswith(",", self.pos):
                    self.pos += 1
        else:
            match = _SCALAR.match(self.text, self.pos)
            if match is None:
                raise ValueError(f"unexpected {char!r} on line {self.line}")
            self.pos = match.end()

    def _string(self) -> None:
        quote = self.text[self.pos]
        triple = quote * 3
        if self.text.startswith(triple, self.pos):
            self.pos += 3
            while not self.text.startswith(triple, self.pos):
                self._advance_in_string(escapes=quote == '"')
            self.pos += 3
            # Up to two quotes may directly precede the closing delimiter.
            for _ in range(2):
                if self.text.startswith(quote, self.pos):
                    self.pos += 1
            return
        self.pos += 1
        while self.text[self.pos] != quote:
            self._advance_in_string(escapes=quote == '"')
        self.pos += 1

    def _advance_in_string(self, *, escapes: bool) -> None:
        char = self.text[self.pos]
        if escapes and char == "\\":
            self.pos += 1
            char = self.text[self.pos]
        if char == "\n":
            self.line += 1
        self.pos += 1

    def _skip_blank(self, *, newlines: bool = False) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r":
                self.pos += 1
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif char == "\n" and newlines:
                self.line += 1
                self.pos += 1
            else:
                return

    def _skip_to_line_end(self) -> None:
        self._skip_blank()
        if self.pos < len(self.text) and self.text[self.pos] == "\n":
            self.line += 1
            self.pos += 1

    def _expect(self, token: str) -> None:
        if not self.text.startswith(token, self.pos):
            raise ValueError(f"expected {token!r} on line {self.line}")
        self.pos += len(token)
