"""Model references and names: parsed, and refused before any git call."""

from __future__ import annotations

import pytest

from moma_cli.core import refs


@pytest.mark.parametrize(("text", "expected"), [
    ("credit-risk", refs.ModelRef("credit-risk")),
    ("credit-risk:4", refs.ModelRef("credit-risk", version=4)),
    ("credit-risk:production", refs.ModelRef("credit-risk", stage="production")),
    ("credit-risk@HEAD~2", refs.ModelRef("credit-risk", rev="HEAD~2")),
    ("team/churn@main", refs.ModelRef("team/churn", rev="main")),
    ("m1@v1.2.0", refs.ModelRef("m1", rev="v1.2.0")),
])
def test_parse(text: str, expected: refs.ModelRef) -> None:
    assert refs.parse(text) == expected
    assert str(refs.parse(text)) == text


def test_semver_rev_is_a_registration() -> None:
    assert refs.parse("m@v1.2.0").semver == "v1.2.0"
    assert refs.parse("m@main").semver is None


@pytest.mark.parametrize("bad", [
    "../x", "-x", "--upload-pack=touch /tmp/pwn", "a;rm -rf", "a b", "A", "x$(id)", "a`b`",
    "a|b", "a//b", "a/", "", "x" * 101, "name:0", "name:-1", "name:Prod", "name@--output=/x",
    "name@a..b", "name@", "name@-p", "name:stage;ls",
])
def test_bad_refs_are_refused(bad: str) -> None:
    with pytest.raises(refs.RefError):
        refs.parse(bad)


def test_long_name_message_is_short() -> None:
    with pytest.raises(refs.RefError) as info:
        refs.check_name("a" * 500)
    assert "longer than 100" in info.value.message and len(info.value.message) < 120
