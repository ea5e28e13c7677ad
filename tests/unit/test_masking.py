"""Masking, exactly: every form of a secret (worked out here, not by the masker) becomes
``***`` and nothing else a stage prints changes — not even text that is all but a
secret; a multi-line secret's lines are masked from four characters on; a cut
releases all it can and never a secret's start; metric names lose their secrets."""

from __future__ import annotations

import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mlci_tui.masking import MIN_LINE, SecretMasker
from tests.unit.test_output import SECRET, encodings, feed_in_pieces


def forms_of(secret: str) -> set[bytes]:
    """The forms of a one-line secret: its encodings, and the secret without the
    spaces around it (a line of output is masked as a line of a secret is)."""
    trimmed = secret.encode().strip()
    return encodings(secret) | ({trimmed} if len(trimmed) >= MIN_LINE else set())


def near_misses(secret: str) -> list[bytes]:
    """Text that is all but a form of ``secret`` — a byte short at either end — and
    holds none of its forms: a stage may print it, and it must pass unchanged."""
    forms = forms_of(secret)
    misses = {cut for form in forms for cut in (form[:-1], form[1:]) if cut}
    return sorted(miss for miss in misses if not any(form in miss for form in forms))


# "tokenW" is "dG9rZW5X" in base64, padded or not: its last character is an "X".
@example(secret="tokenW", order=random.Random(0), cuts=[])
@example(secret="tokenW", order=random.Random(0), cuts=[3, 9, 20])
@settings(max_examples=300, deadline=None)
@given(
    secret=SECRET,
    order=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(min_value=0)),
)
def test_each_form_of_a_secret_is_masked_and_all_but_a_form_is_left_alone(
    secret: str, order: random.Random, cuts: list[int]
) -> None:
    lines = [(form, b"***") for form in forms_of(secret)]
    lines += [(miss, miss) for miss in near_misses(secret)]
    order.shuffle(lines)
    text = b"".join(line + b"\n" for line, _ in lines)
    assert feed_in_pieces(secret, text, cuts, []) == b"".join(shown + b"\n" for _, shown in lines)


LINE_CHARACTER = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="*")


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.text(LINE_CHARACTER, min_size=1, max_size=8), min_size=2, max_size=5),
    order=st.randoms(use_true_random=False),
)
def test_each_line_of_a_multiline_secret_is_masked_from_four_characters_on(
    lines: list[str], order: random.Random
) -> None:
    secret = "\n".join(lines)
    printed = [line.encode() for line in lines]
    order.shuffle(printed)
    # Blank lines between them: the lines in a row would be the secret itself.
    shown = feed_in_pieces(secret, b"\n\n".join(printed) + b"\n", [], [])
    expected = [b"***" if len(line) >= MIN_LINE else line for line in printed]
    assert shown == b"\n\n".join(expected) + b"\n"


@st.composite
def output_ending_in_part_of_a_form(draw: st.DrawFn) -> tuple[str, bytes]:
    secret = draw(SECRET)
    form = draw(st.sampled_from(sorted(forms_of(secret))))
    start = draw(st.binary(max_size=40))
    return secret, start + form[: draw(st.integers(min_value=0, max_value=len(form) - 1))]


@settings(max_examples=300, deadline=None)
@given(case=output_ending_in_part_of_a_form())
def test_a_cut_releases_all_but_what_may_start_a_secret_and_no_more(
    case: tuple[str, bytes],
) -> None:
    secret, data = case
    masker = SecretMasker([secret])
    data = masker.mask(data)
    cut = masker.safe_split(data)
    assert 0 <= cut <= len(data)
    # Nothing released may be the start of a form the next bytes complete ...
    for form in forms_of(secret):
        for start in range(cut):
            rest = data[start:]
            assert not (len(rest) < len(form) and form.startswith(rest)), (form, start)
    # ... and no more than a form's length less a byte is held back.
    longest = max(map(len, forms_of(secret)))
    assert cut >= len(data) - (longest - 1)


@given(data=st.binary())
def test_without_secrets_everything_can_be_released(data: bytes) -> None:
    masker = SecretMasker([])
    assert not masker
    assert masker.mask(data) == data
    assert masker.safe_split(data) == len(data)


@settings(max_examples=200, deadline=None)
@given(
    secret=SECRET,
    names=st.lists(st.text(max_size=10), max_size=4),
    value=st.floats(allow_nan=False),
)
def test_a_metric_name_holding_a_secret_is_masked_and_its_value_kept(
    secret: str, names: list[str], value: float
) -> None:
    masker = SecretMasker([secret])
    metrics = {f"{name}{secret}{name}": value for name in names}
    masked = masker.mask_names(metrics)
    assert set(masked.values()) <= {value}
    assert len(masked) <= len(metrics)
    for name in masked:
        assert not any(form in name.encode() for form in forms_of(secret)), name
    assert SecretMasker([]).mask_names(metrics) == metrics
