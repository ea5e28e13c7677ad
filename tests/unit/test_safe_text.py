"""Text that reaches a terminal, exactly: built from pieces whose rendering is known
on their own — a character shown by what Unicode's data says it is, an escape
sequence dropped, a colour sequence kept without "conceal" — and compared whole,
so a character shown wrongly, dropped or kept where it should not be fails."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.textsafe import terminal_line, visible_text
from tests.unit.test_output import unsafe


def shown(char: str) -> str:
    """How one character that starts no escape sequence is shown, from Unicode's data:
    a control character by its picture (C0 and DEL; the tab stays) or U+FFFD (C1), a
    format character that reorders or hides text by its code point, the rest as it is."""
    code = ord(char)
    if unicodedata.category(char) == "Cc" and char != "\t":
        if code < 0x20:
            return chr(0x2400 + code)
        return "\u2421" if code == 0x7F else "\ufffd"
    return f"<U+{code:04X}>" if unsafe(char) else char


def test_the_pictures_are_unicodes_symbols_for_the_controls() -> None:
    assert unicodedata.name(shown("\x00")) == "SYMBOL FOR NULL"
    assert unicodedata.name(shown("\x1b")) == "SYMBOL FOR ESCAPE"
    assert unicodedata.name(shown("\x1f")) == "SYMBOL FOR UNIT SEPARATOR"
    assert unicodedata.name(shown("\x7f")) == "SYMBOL FOR DELETE"
    assert unicodedata.name(shown("\x85")) == "REPLACEMENT CHARACTER"


# Characters that start an escape sequence (ESC, and C1's CSI and OSC) come as pieces
# of their own; the carriage return has its own test (a terminal line keeps what
# follows the last one).
STARTS_ESCAPE = "\x1b\x9b\x9d"
NOTABLE = [chr(code) for code in [*range(0x20), *range(0x7F, 0xA0)] if chr(code) not in "\r"]
NOTABLE += ["\u00a0", "\u0600", "\u061c", "\u200b", "\u200d", "\u202e", "\u2066", "\u2069"]
NOTABLE += ["\u206f", "\ufeff", "\ufff9", "\U000e0001", "\U000e0041", "X", " ", "a", "\u00e9"]
plain = st.sampled_from([c for c in NOTABLE if c not in STARTS_ESCAPE]) | st.characters(
    exclude_characters=STARTS_ESCAPE + "\r"
)


@settings(max_examples=500, deadline=None)
@given(text=st.lists(plain, max_size=30).map("".join), keep_color=st.booleans())
def test_each_character_is_shown_as_unicode_says_it_is(text: str, keep_color: bool) -> None:
    expected = "".join(map(shown, text))
    assert terminal_line(text, keep_color=keep_color) == expected
    assert visible_text(text) == expected
    # A value shows its carriage returns too; a line keeps what follows the last one.
    assert visible_text(f"{text}\r{text}") == f"{expected}\u240d{expected}"


@settings(max_examples=300, deadline=None)
@given(
    earlier=st.lists(st.lists(plain, max_size=8).map("".join), max_size=4),
    last=st.lists(plain, min_size=1, max_size=12).map("".join),
    returns=st.integers(min_value=0, max_value=3),
)
def test_a_line_shows_what_follows_its_last_carriage_return_and_nothing_else_is_cut(
    earlier: list[str], last: str, returns: int
) -> None:
    """Progress bars redraw their line: what a terminal ends up showing is the text
    after the last carriage return that is followed by anything; a trailing one
    redraws nothing. Whatever the text after it ends with (spaces, tabs, letters,
    controls) stays."""
    line = "\r".join([*earlier, last]) + "\r" * returns
    assert terminal_line(line, keep_color=False) == "".join(map(shown, last))


# Colour sequences: a list of parameters, each known to be kept or dropped --------------

# The parameter values a terminal reads as 8 ("conceal"): leading zeros are allowed.
CONCEAL = st.sampled_from(["8", "08", "008"])
COLOUR_ARGUMENT = st.sampled_from(["8", "5", "2", "0", "255", "08"]) | st.integers(0, 255).map(str)
SELECTOR = st.sampled_from(["38", "48", "58", "038"])


@st.composite
def colour_parameters(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """The parameters of one colour sequence, and those of it that must be kept."""
    written: list[str] = []
    kept: list[str] = []
    after_bare = False
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        kind = draw(st.sampled_from(["conceal", "plain", "palette", "rgb", "bare", "colon"]))
        if kind == "conceal":
            written.append(draw(CONCEAL))
            after_bare = False
            continue
        if kind == "plain":
            # After a bare 38, a 5 or a 2 would make it a colour: that is "palette".
            taken = {8, 38, 48, 58} | ({2, 5} if after_bare else set())
            value = draw(st.sampled_from([n for n in range(108) if n not in taken]))
            item = [draw(st.sampled_from([str(value), f"0{value}", ""]))]
        elif kind == "palette":  # 38;5;N: its N is a colour, whatever its value
            item = [draw(SELECTOR), draw(st.sampled_from(["5", "05"])), draw(COLOUR_ARGUMENT)]
        elif kind == "rgb":  # 38;2;R;G;B
            item = [draw(SELECTOR), draw(st.sampled_from(["2", "02"]))]
            item += [draw(COLOUR_ARGUMENT) for _ in range(3)]
        elif kind == "bare":  # 38 followed by neither 5 nor 2: what follows stands alone
            item = [draw(SELECTOR)]
        else:  # colon sub-parameters make one parameter: "4:3", "38:5:8"
            item = [draw(st.sampled_from(["4:3", "38:5:8", "58:2::8:8:8"]))]
        written += item
        kept += item
        after_bare = kind == "bare"
    # A colour cut short by the end of the sequence is kept as it is.
    tail = draw(st.sampled_from([[], ["38"], ["48", "5"], ["58", "2", "8", "8"]]))
    return written + tail, kept + tail


def colour_shown(written: list[str], kept: list[str], keep_color: bool) -> tuple[str, str]:
    """A colour sequence of ``written`` parameters, and what a terminal is given of it:
    nothing at all when colours are not kept or nothing but conceal was in it."""
    sgr = f"\x1b[{';'.join(written)}m"
    if not keep_color:
        return sgr, ""
    if not written:
        return sgr, sgr  # "\x1b[m", a reset, holds no conceal
    return sgr, f"\x1b[{';'.join(kept)}m" if kept else ""


@settings(max_examples=1000, deadline=None)
@given(parameters=colour_parameters(), keep_color=st.booleans())
def test_a_colour_sequence_keeps_every_parameter_but_conceal(
    parameters: tuple[list[str], list[str]], keep_color: bool
) -> None:
    sgr, expected = colour_shown(*parameters, keep_color)
    assert terminal_line(f"{sgr}text", keep_color=keep_color) == f"{expected}text"
    assert visible_text(f"{sgr}text") == "text"


def test_conceal_written_with_leading_zeros_is_taken_out_too() -> None:
    """A terminal reads "08" as 8: conceal, whatever zeros it is written with."""
    for conceal in ("08", "008", "1;08"):
        assert terminal_line(f"\x1b[{conceal}mhidden", keep_color=True) in (
            "hidden",
            "\x1b[1mhidden",
        )
    # And a colour's selector or index written with zeros is still that colour.
    assert terminal_line("\x1b[038;05;8mx", keep_color=True) == "\x1b[038;05;8mx"


# Whole lines: characters, escape sequences and colours in any order ---------------------

parameter_bytes = st.text(st.sampled_from("0123456789;:<=>?"), max_size=6)
intermediates = st.text(st.sampled_from(" !\"#$%&'()*+,-./"), max_size=2)
string_body = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10)


@st.composite
def escape_sequence(draw: st.DrawFn) -> str:
    """A complete escape sequence that is no colour: what follows it stands alone."""
    kind = draw(st.sampled_from(["csi", "osc", "string", "short", "c1 csi", "c1 osc"]))
    if kind in ("csi", "c1 csi"):
        final = draw(st.characters(min_codepoint=0x40, max_codepoint=0x7E))
        start = "\x1b[" if kind == "csi" else "\x9b"
        body = draw(parameter_bytes) + draw(intermediates)
        if kind == "csi" and final == "m" and all(c in "0123456789;:" for c in body):
            final = "J"  # that is a colour: the test above holds those
        return f"{start}{body}{final}"
    if kind == "osc":
        return "\x1b]" + draw(string_body) + draw(st.sampled_from(["\x07", "\x1b\\"]))
    if kind == "c1 osc":
        return "\x9d" + draw(string_body) + draw(st.sampled_from(["\x07", "\x9c"]))
    if kind == "string":  # DCS, SOS, PM, APC: ended by ST
        return f"\x1b{draw(st.sampled_from('PX^_'))}{draw(string_body)}\x1b\\"
    between = draw(intermediates)
    final = draw(st.characters(min_codepoint=0x30, max_codepoint=0x7E))
    if not between and final in "[]PX^_":
        final = "7"  # those start the longer sequences above
    return f"\x1b{between}{final}"


# What the end of a line may cut short, and what is shown of it.
UNFINISHED = {
    "\x1b": "",
    "\x1b[31": "",
    "\x1b]0;title": "",
    "\x1bP+q": "",
    "\x9b": "\ufffd",
    "\x9d": "\ufffd",
    "\x9b1": "",
    "\x9d0;t": "",
}


@st.composite
def line_and_shown(draw: st.DrawFn, keep_color: bool) -> tuple[str, str]:
    written: list[str] = []
    expected: list[str] = []
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        kind = draw(st.sampled_from(["char", "escape", "colour"]))
        if kind == "char":
            char = draw(plain)
            written.append(char)
            expected.append(shown(char))
        elif kind == "escape":
            written.append(draw(escape_sequence()))
        else:
            sgr, colour = colour_shown(*draw(colour_parameters()), keep_color)
            written.append(sgr)
            expected.append(colour)
    end = draw(st.sampled_from(["", *UNFINISHED]))
    return "".join(written) + end, "".join(expected) + UNFINISHED.get(end, "")


@settings(max_examples=1000, deadline=None)
@given(data=st.data(), keep_color=st.booleans())
def test_a_line_shows_its_text_and_colours_and_no_other_escape_sequence(
    data: st.DataObject, keep_color: bool
) -> None:
    line, expected = data.draw(line_and_shown(keep_color))
    assert terminal_line(line, keep_color=keep_color) == expected
    if not keep_color:
        assert visible_text(line) == expected
