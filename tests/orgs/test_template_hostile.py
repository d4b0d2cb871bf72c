"""Generated hostile templates and archives: an import either succeeds or is refused with its
problems (``InvalidOrgFile``) and writes nothing; an archive either unpacks or is refused
(``ArchiveError``). Never another exception, never a database error.

Values: every Molecule key with text holding NUL, control characters and lone surrogates, long
strings, huge and negative numbers, wrong types and nesting; archives cut short or with bytes
flipped.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml
from django.conf import settings as django_settings
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from orgs import archive
from orgs.importer import InvalidOrgFile, import_org
from orgs.templates import WORKSPACE_KEYS
from orgs.tree import MemoryTree
from tests.support.templates import HARBOR, everything, tarred, zipped

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("recording")]

set_hypothesis_home_dir(django_settings.VAR_DIR / "hypothesis")
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "25"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "\x1b[2J", "x" * 3000, "${NOPE}", "$HOME", ""]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=10),
)
SCALAR = st.one_of(
    TEXT,
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(TEXT, SCALAR), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(sorted(WORKSPACE_KEYS - {"children"}))


@st.composite
def templates(draw: Any) -> str:
    entry: dict[Any, Any] = {"name": draw(st.one_of(st.just("A"), TEXT))}
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        entry[draw(KEYS)] = draw(VALUE)
    top: dict[Any, Any] = {"name": "Hostile", "workspaces": [entry]}
    if draw(st.booleans()):
        top["defaults"] = {draw(st.sampled_from(["tier", "plugins", "model", "x"])): draw(VALUE)}
    try:
        return yaml.safe_dump(top, allow_unicode=False)
    except yaml.YAMLError:
        assume(False)
        raise


@SETTINGS
@given(text=templates())
def test_a_hostile_template_is_imported_or_refused_and_writes_nothing(text: str) -> None:
    tree = MemoryTree({"org.yaml": text.encode(), "a/notes.md": b"x", "a/.env": b"K=v\n"})
    before = everything()
    refusal: InvalidOrgFile | None = None
    try:
        import_org(tree, actor="test", env={})
    except InvalidOrgFile as invalid:
        refusal = invalid
    if refusal is not None:
        assert refusal.problems
        assert everything() == before


@SETTINGS
@given(
    cut=st.integers(min_value=0, max_value=4000),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8),
    kind=st.sampled_from(["zip", "tar"]),
)
def test_a_damaged_archive_unpacks_or_is_refused(cut: int, flips: list, kind: str) -> None:

    data = bytearray(zipped(HARBOR) if kind == "zip" else tarred(HARBOR))
    for where, byte in flips:
        data[where % len(data)] = byte
    data = data[: max(1, len(data) - cut)]
    refusal = ""
    try:
        archive.unpack(bytes(data))
    except archive.ArchiveError as refused:
        refusal = str(refused)
    # Unpacked, or refused with a sentence.
    assert refusal == "" or refusal.endswith(".")
