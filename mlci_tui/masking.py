"""Replacing secret values with ``***`` in everything a stage prints."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = b"***"
MIN_LINE = 4
_ESCAPE = (
    rb"(?:\x1b\[[0-?]*[ -/]*[@-~]?"
    rb"|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
    rb"|\x1b[PX^_][^\x1b\n]*(?:\x1b\\)?"
    rb"|\x1b[ -/]*[0-~]?"
    rb"|\xc2\x9b[0-?]*[ -/]*[@-~]?"
    rb"|\xc2\x9d[^\x07\x1b\n]*(?:\x07|\xc2\x9c)?)"
)
"""An escape sequence a screen drops (colour, title, cursor), as `textsafe` reads them
(C1's CSI and OSC in UTF-8): one inside a secret would join its halves again on screen.
Output is shown line by line, so none runs past the end of a line: an OSC left open
must not join the end of one line with the next into a secret's form."""
_HAS_CONTROL = re.compile(rb"[\x00-\x1f\x7f]|\xc2[\x80-\x9f]")


class SecretMasker:
    """Masks each secret as written, base64-encoded and URL-encoded.

    Works on bytes so that output that is not UTF-8 is masked too. A value is
    also masked in its encodings because tools print tokens inside
    ``Authorization: Basic`` headers and URLs.
    """

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[bytes] = set()
        for value in values:
            # Environment values that are not UTF-8 arrive as surrogate escapes.
            raw = value.encode("utf-8", "surrogateescape")
            if raw:
                forms.update(_forms(raw))
        # Longest first, so a form that contains another is masked whole.
        self.forms = sorted(forms, key=len, reverse=True)
        self.longest = len(self.forms[0]) if self.forms else 0
        self._spread: re.Pattern[bytes] | None = None
        """Each form with escape sequences anywhere inside it: made the first time
        output holds an escape (most never does, and it takes milliseconds)."""

    def __bool__(self) -> bool:
        return bool(self.forms)

    def mask(self, data: bytes) -> bytes:
        for form in self.forms:
            if form in data:
                data = data.replace(form, MASK)
        if self.forms and (b"\x1b" in data or b"\xc2\x9b" in data or b"\xc2\x9d" in data):
            data = self._spread_pattern().sub(MASK, data)
        return data

    def _spread_pattern(self) -> re.Pattern[bytes]:
        if self._spread is None:
            between = _ESCAPE + b"*"
            # A form that holds a control character itself is left to the plain
            # replace: where escapes around its own would start and end is a guess.
            plain = [form for form in self.forms if not _HAS_CONTROL.search(form)]
            spread = (
                between.join(re.escape(form[i : i + 1]) for i in range(len(form))) for form in plain
            )
            self._spread = re.compile(b"|".join(spread) or rb"(?!)")
        return self._spread

    def mask_text(self, text: str) -> str:
        if not self.forms:
            return text
        return self.mask(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")

    def mask_names(self, metrics: dict[str, float]) -> dict[str, float]:
        """Metrics with their names masked: a stage chooses the names, secrets included."""
        if not self.forms:
            return metrics
        return {self.mask_text(name): value for name, value in metrics.items()}

    def safe_split(self, data: bytes) -> int:
        """Where ``data`` (already masked) can be cut so no secret is split across the cut.

        Everything before the returned index can be released; the rest must wait
        for more bytes, since it may be the start of a secret.
        """
        return max(0, len(data) - (self.longest - 1)) if self.forms else len(data)


def _forms(raw: bytes) -> set[bytes]:
    """The ways ``raw`` may appear in output: as written, encoded, and line by line."""
    import base64  # here, not at the top: most pipelines name no secrets
    import re
    import urllib.parse

    encoded = base64.b64encode(raw)
    forms = {raw, encoded, encoded.rstrip(b"="), base64.urlsafe_b64encode(raw).rstrip(b"=")}
    # Percent-encoded as `quote` and `quote_plus` do, "/" escaped or kept, and the
    # hex digits in either case (both are valid, and encoders differ).
    for safe in ("", "/"):
        for quoted in (urllib.parse.quote(raw, safe=safe), urllib.parse.quote_plus(raw, safe=safe)):
            forms.add(quoted.encode())
            forms.add(
                re.sub("%[0-9A-F]{2}", lambda escape: escape.group().lower(), quoted).encode()
            )
    # Output is handled line by line, so each line of a multi-line secret (a
    # PEM key) is masked on its own too; lines this short carry no secret.
    forms.update(line.strip() for line in raw.splitlines() if len(line.strip()) >= MIN_LINE)
    return forms
