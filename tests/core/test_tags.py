"""GTO's tag grammar without git: every event round-trips through its tag name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moma_cli.core import tags
from moma_cli.core.tags import TagName


@pytest.mark.parametrize(("tag", "expected"), [
    ("clf#production#3", TagName("clf", "assign", stage="production", counter=3)),
    ("clf#production!#4", TagName("clf", "unassign", stage="production", counter=4)),
    ("team/clf@v1.2.0", TagName("team/clf", "register", semver="v1.2.0")),
    ("clf@v1.2.0!", TagName("clf", "deregister", semver="v1.2.0")),
    ("clf@deprecated#7", TagName("clf", "deprecate", counter=7)),
])
def test_gto_tag_names_parse_to_their_event(tag: str, expected: TagName) -> None:
    assert tags.parse(tag) == expected
    assert expected.format() == tag


@pytest.mark.parametrize("tag", ["v1.0", "clf", "Clf#prod#1", "clf#prod#x", "-clf#prod#1",
                                 "clf@1.2.0", "clf#prod#1#2"])
def test_other_tags_are_not_registry_events(tag: str) -> None:
    assert tags.parse(tag) is None


def test_the_next_counter_is_one_more_than_the_models_highest() -> None:
    names = ["clf#dev#1", "clf#production#5", "other#dev#9", "clf@v1.0.0", "release-1"]
    assert tags.next_counter(names, "clf") == 6
    assert tags.next_counter(names, "new") == 1


_part = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,8}[a-z0-9])?", fullmatch=True)
_semver = st.builds(lambda a, b, c: f"v{a}.{b}.{c}", *(st.integers(0, 99),) * 3)


@given(st.one_of(
    st.builds(lambda n, s, c, a: TagName(n, a, stage=s, counter=c), _part, _part,
              st.integers(1, 10**6), st.sampled_from(["assign", "unassign"])),
    st.builds(lambda n, v, a: TagName(n, a, semver=v), _part, _semver,
              st.sampled_from(["register", "deregister"])),
    st.builds(lambda n, c: TagName(n, "deprecate", counter=c), _part, st.integers(1, 10**6))))
def test_every_event_round_trips_through_its_tag_name(event: TagName) -> None:
    assert tags.parse(event.format()) == event
