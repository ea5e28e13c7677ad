"""Who acted, as the audit trail records it: `MLCI_ACTOR` first, made safe to show."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlci_tui.registry.audit import ACTOR_MAX, current_user
from mlci_tui.textsafe import visible_text


def test_mlci_actor_comes_before_the_login_name() -> None:
    login = {"USER": "ana", "LOGNAME": "ana-login"}
    assert current_user({**login, "MLCI_ACTOR": "web:3fa2c1d0"}) == "web:3fa2c1d0"
    assert current_user({**login, "MLCI_ACTOR": "  web:3fa2c1d0\n"}) == "web:3fa2c1d0"
    assert current_user(login) == "ana"
    assert current_user({"LOGNAME": "ana-login"}) == "ana-login"


def test_an_empty_or_unprintable_actor_is_no_actor() -> None:
    for nothing in ("", "   ", "\t\n", "\x1b[31m", "\x1b]0;title\x07"):
        assert current_user({"USER": "ana", "MLCI_ACTOR": nothing}) == "ana", repr(nothing)


def test_an_actor_is_shown_not_obeyed_and_cut() -> None:
    hostile = "\x1b]0;pwned\x07web\x1b[2J:\r\n\u202eevil" + "x" * 200
    actor = current_user({"USER": "ana", "MLCI_ACTOR": hostile})
    assert actor.startswith("web:␍␊<U+202E>evil")
    assert len(actor) == ACTOR_MAX == 64
    assert "\x1b" not in actor and "\u202e" not in actor


@given(st.text(), st.text(min_size=1, alphabet=st.characters(min_codepoint=97, max_codepoint=122)))
def test_any_actor_is_printable_short_and_nonempty(actor: str, user: str) -> None:
    found = current_user({"USER": user, "MLCI_ACTOR": actor})
    assert found
    assert len(found) <= ACTOR_MAX
    assert visible_text(found) == found  # nothing left to make visible
    assert found == found.strip()
    shown = visible_text(actor.strip())[:ACTOR_MAX].strip()
    assert found == (shown or user)


def test_an_actor_or_login_that_is_not_utf8_is_stored_as_text() -> None:
    # As os.environ holds bytes it cannot decode: surrogate escapes, which SQLite
    # refuses to encode (every deploy failed with such a USER).
    broken = b"web:\xff\xfe".decode("utf-8", "surrogateescape")
    for environ in ({"MLCI_ACTOR": broken}, {"USER": broken}):
        actor = current_user(environ)
        assert actor == "web:\ufffd\ufffd"
        actor.encode("utf-8")  # what sqlite3 does with it
