"""Masking a workspace's secrets: by example, and by property over values, texts and chunkings."""

from __future__ import annotations

import base64
import itertools
import json
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from workspaces import bearer_secrets
from workspaces.redaction import WITHHELD, Redactor, StreamRedactor

NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True)
VALUES = st.text(min_size=3, max_size=40).filter(lambda v: "\x00" not in v)


def test_a_value_is_masked_with_its_name() -> None:
    redactor = Redactor({"OPENAI_API_KEY": "sk-live-12345"})
    shown = redactor.text("calling with sk-live-12345 now")
    assert shown == "calling with [secret:OPENAI_API_KEY] now"


def test_the_forms_an_agent_prints_a_value_in_are_masked_too() -> None:
    value = 'p@ss w/"quote"&more'
    redactor = Redactor({"DB_PASSWORD": value})
    for form in (
        value,
        json.dumps(value)[1:-1],
        quote(value, safe=""),
        base64.b64encode(value.encode()).decode(),
    ):
        shown = redactor.text(f"<{form}>")
        assert form.rstrip("=") not in shown
        assert "[secret:DB_PASSWORD]" in shown


def test_a_value_inside_another_is_masked_whole_under_the_longer_ones_name() -> None:
    redactor = Redactor({"SHORT": "abcd", "LONG": "xxabcdxx"})
    assert redactor.text("xxabcdxx and abcd") == "[secret:LONG] and [secret:SHORT]"


def test_the_agents_own_token_is_masked_though_only_its_hash_is_kept() -> None:
    token, other = bearer_secrets.mint(), bearer_secrets.mint()
    redactor = Redactor({}, token_hash=bearer_secrets.hash_token(token))
    shown = redactor.text(f"Authorization: Bearer {token}\nnot mine: {other}")
    assert token not in shown
    assert "Bearer [secret:auth_token]" in shown
    assert other in shown


def test_one_and_two_character_values_are_left_alone() -> None:
    assert Redactor({"FLAG": "1", "PAIR": "ok"}).text("1 ok") == "1 ok"


def test_a_value_that_the_mask_itself_spells_is_withheld_rather_than_shown() -> None:
    assert Redactor({"KEY": "cret:K"}).text("the cret:K is out") == WITHHELD
    assert Redactor({"KEY": "secret"}).text("a secret") == "(withheld)"


def test_a_payload_is_masked_in_every_string_keys_included() -> None:
    redactor = Redactor({"TOKEN": "hunter22"})
    payload = {"console": "x hunter22", "nested": [{"hunter22": 3}], "n": 5, "ok": True}
    assert redactor.value(payload) == {
        "console": "x [secret:TOKEN]",
        "nested": [{"[secret:TOKEN]": 3}],
        "n": 5,
        "ok": True,
    }


def test_a_redactor_without_secrets_changes_nothing() -> None:
    assert Redactor({}).text("anything at all") == "anything at all"


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.dictionaries(NAMES, VALUES, min_size=1, max_size=4),
    filler=st.lists(st.text(max_size=20), min_size=1, max_size=6),
    picks=st.lists(st.integers(min_value=0), min_size=1, max_size=6),
)
def test_no_value_survives_masking(
    secrets: dict[str, str], filler: list[str], picks: list[int]
) -> None:
    values = list(secrets.values())
    text = "".join(f + values[p % len(values)] for f, p in zip(filler, picks, strict=False))
    shown = Redactor(secrets).text(text)
    assert not any(value in shown for value in values)


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.dictionaries(NAMES, VALUES, min_size=1, max_size=3),
    filler=st.lists(st.text(max_size=15), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_no_value_survives_a_stream_however_it_is_cut(
    secrets: dict[str, str], filler: list[str], cuts: list[int]
) -> None:
    values = list(secrets.values())
    text = "".join(f + values[i % len(values)] for i, f in enumerate(filler))
    stream = StreamRedactor(Redactor(secrets))
    points = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    shown = "".join(stream.feed(text[a:b]) for a, b in itertools.pairwise(points))
    shown += stream.flush()
    assert not any(value in shown for value in values)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=8))
def test_a_stream_with_nothing_to_mask_comes_out_as_it_went_in(text: str, cuts: list[int]) -> None:
    token = bearer_secrets.mint()
    stream = StreamRedactor(
        Redactor({"KEY": "\x01never"}, token_hash=bearer_secrets.hash_token(token))
    )
    points = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    shown = "".join(stream.feed(text[a:b]) for a, b in itertools.pairwise(points))
    assert shown + stream.flush() == text
