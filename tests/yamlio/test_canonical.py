"""The canonical reader against PyYAML: whatever it returns, the strict YAML load returns
too (same types, same order, same floats), and whatever YAML refuses, it leaves to YAML.
Pointers come from anyone who can push, so the inputs are moma's own dumps of generated
documents (odd strings, YAML 1.1's typed scalars, unicode, deep nesting) and the same
dumps after hostile edits (comments, anchors, aliases, tags, duplicate keys, indentation,
quoting, stray characters, truncation)."""

from __future__ import annotations

import string
import subprocess
import sys
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from moma_cli import yamlio
from moma_cli.core import pointer
from moma_cli.errors import MomaError
from moma_cli.yamlio import canonical, strict

MANY = settings(max_examples=max(200, settings.default.max_examples))


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types throughout, in the same key order (floats by repr:
    -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return ([(type(k), k) for k in a] == [(type(k), k) for k in b]
                and all(same(a[k], b[k]) for k in a))
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is float:
        return repr(a) == repr(b)
    return bool(a == b)


def yaml_says(text: str) -> Any:
    """What PyYAML's strict load gives, or the MomaError it raises."""
    try:
        return strict.loads(text, "p.moma")
    except MomaError as exc:
        return exc


def assert_agrees(text: str) -> Any:
    fast = canonical.read(text)
    if fast is not None:
        slow = yaml_says(text)
        assert not isinstance(slow, MomaError), (text, slow)
        assert same(fast, slow), (text, fast, slow)
    return fast


# -- documents -------------------------------------------------------------------------------

ODD = ["yes", "No", "on", "OFF", "y", "n", "true", "False", "null", "Null", "~", "", "0755",
       "0o17", "0x1F", "0b101", "1_000", "1:30", "-1:30", "1.5:2", "190:20:30.15", "+12",
       "-0", "00", "1e5", "1E+5", "1.0e5", "1.0e+5", ".5", "-.5", "5.", ".inf", "-.Inf",
       ".NaN", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
       "<<", "=", "-", "- x", "?", "? x", ":", ":x", "x:", "a: b", "a #b", "a#b", "#a",
       "&a", "*a", "!x", "!!str x", "|", ">", "'", '"', "%x", "@x", "`x", "[a]", "{a: 1}",
       "{}", "[]", "a, b", " a", "a ", "a  b", "---", "...", "é", "\u2028", "\x85", "\t",
       "\ufeff", "\x00", "\U0001f600", "9" * 19, "9" * 30, "1." + "0" * 30,
       "a" * 200]
words = st.text(alphabet=string.ascii_letters + string.digits + "_./-+=<>@'?~(),:", min_size=1,
                max_size=10)
odd_strings = st.one_of(st.sampled_from(ODD), words, st.text(max_size=12),
                        st.lists(words, min_size=1, max_size=3).map(" ".join))
scalars = st.one_of(odd_strings, st.integers(), st.integers(-10**6, 10**6),
                    st.floats(), st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.booleans(), st.none())
keys = st.one_of(st.sampled_from(["moma", "hash", "oid", "size", "kind", "model", "name",
                                  "params", "metrics", "deps", "on", "null", "1", "<<"]),
                 odd_strings, st.integers(-3, 3), st.booleans())
documents = st.dictionaries(keys, st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25), min_size=1, max_size=8)

# What the reader is for: moma's own pointers, every one of which it reads itself.
plain_words = st.builds(str.__add__, st.sampled_from(string.ascii_lowercase + "0189_"),
                        st.text(alphabet=string.ascii_lowercase + "0189_./-", max_size=10))
plain_strings = st.one_of(plain_words, st.lists(plain_words, min_size=1, max_size=4)
                          .map(" ".join), st.sampled_from(["", "yes", "1.0", "null", "it's",
                                                           " lead", "a: b", "#x", "{}"]))
plain_scalars = st.one_of(plain_strings, st.integers(-10**17, 10**17), st.booleans(),
                          st.none(), st.floats(allow_nan=False, allow_infinity=False))
plain_docs = st.recursive(
    plain_scalars, lambda inner: st.one_of(st.lists(plain_scalars, max_size=3),
                                           st.lists(st.dictionaries(plain_words, inner,
                                                                    min_size=1, max_size=3),
                                                    max_size=2),
                                           st.dictionaries(plain_words, inner, max_size=4)),
    max_leaves=20)


@st.composite
def pointers(draw: st.DrawFn) -> str:
    """A model pointer as moma writes it, with generated sections."""
    doc: dict[str, Any] = {"moma": 1, "hash": "sha256", "oid": draw(st.text(
        alphabet="0123456789abcdef", min_size=64, max_size=64)),
        "size": draw(st.integers(0, 2**40)),
        "kind": "file",
        "model": {"name": draw(st.sampled_from(["clf", "model-0", "a-b/c", "x1"])),
                  "params": draw(st.dictionaries(plain_words, plain_scalars, max_size=4)),
                  "metrics": draw(st.dictionaries(plain_words, plain_scalars, max_size=3))},
        "lineage": {"deps": [{"path": "data/train.csv", "oid": "c" * 64}], "code": "a" * 40,
                    "params": {}, "env": {"python": "3.11.7"}}}
    doc |= draw(st.dictionaries(plain_words.filter(lambda k: k not in doc), plain_docs,
                                max_size=2))
    return yamlio.dumps(doc)


# -- hostile edits of a dumped document ------------------------------------------------------

STRAY = ["\t", "\r", "\r\n", "\u2028", "\x85", "\ufeff", "#", " #", "&", "*", "!", "|", ">",
         '"', "'", "%", "@", "`", "{", "}", "[", "]", ",", ":", ": ", "-", "- ", "?", "? ",
         " ", "  ", "\n", "\n\n", "é", "\x00", "\x1b", "~", "<<: ", "!!str ", "&a ", "*a"]


@st.composite
def edited(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        line = lines[at]
        edit = draw(st.integers(0, 10))
        if edit == 0:
            lines.insert(at, draw(st.sampled_from(["# c", "", "  # c", "---", "...", "%YAML 1.1"])))
        elif edit == 1:
            lines[at] = line + draw(st.sampled_from([" # c", " ", "#c", " &a", ":", " *a"]))
        elif edit == 2:
            lines.insert(at, line)  # a duplicate key, or a repeated item
        elif edit == 3:
            lines[at] = draw(st.sampled_from(["", " ", "  ", "   "])) + line.lstrip(" ")
        elif edit == 4 and ": " in line:
            head = line.split(": ", 1)[0]
            lines[at] = f"{head}: {draw(st.sampled_from(ODD))}"
        elif edit == 5 and ": " in line:
            head, value = line.split(": ", 1)
            lines[at] = f"{head}: &a {value}"
            lines.append(f"{draw(st.sampled_from(['z', head.strip()]))}: *a")
        elif edit == 6 and ": " in line:
            head, value = line.split(": ", 1)
            quote = draw(st.sampled_from(['"{}"', "'{}'", "!!str {}", "!!int {}", "{} "]))
            lines[at] = f"{head}: {quote.format(value)}"
        elif edit == 7:
            pos = draw(st.integers(0, len(line)))
            lines[at] = line[:pos] + draw(st.sampled_from(STRAY)) + line[pos:]
        elif edit == 8 and line:
            pos = draw(st.integers(0, len(line) - 1))
            lines[at] = line[:pos] + line[pos + 1:]
        elif edit == 9 and ": " in line and line.lstrip()[:1] != "-":
            indent = len(line) - len(line.lstrip(" "))
            head = line.split(": ", 1)[0]
            lines[at] = f"{head}:"
            lines.insert(at + 1, " " * indent + draw(st.sampled_from(
                ["- x", "  - x", "  a: 1", "   a: 1", " a: 1", "- a: 1", "  x"])))
        else:
            text = "\n".join(lines)
            return text[: draw(st.integers(0, len(text)))]
    return "\n".join(lines)


# -- properties ------------------------------------------------------------------------------


@MANY
@given(pointers())
def test_reads_every_pointer_moma_writes_as_yaml_does(text: str) -> None:
    fast = assert_agrees(text)
    assert fast is not None, text
    assert same(yamlio.loads(text), fast)


@MANY
@given(plain_docs.filter(lambda d: isinstance(d, dict) and d).map(yamlio.dumps))
def test_reads_plain_documents_as_yaml_does(text: str) -> None:
    assert assert_agrees(text) is not None, text


@MANY
@given(documents.map(yamlio.dumps))
def test_any_dumped_document_is_read_as_yaml_does_or_left_to_it(text: str) -> None:
    assert_agrees(text)


class _IndentedSequences(yaml.SafeDumper):
    """Sequences two spaces in from their key, as people write config by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dumped_indented(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_IndentedSequences, sort_keys=False, allow_unicode=True,
                     width=1000)


@MANY
@given(plain_docs.filter(lambda d: isinstance(d, dict) and d).map(dumped_indented))
def test_reads_indented_sequences_as_yaml_does(text: str) -> None:
    assert assert_agrees(text) is not None, text


@MANY
@given(st.one_of(documents.map(dumped_indented),
                 plain_docs.filter(lambda d: isinstance(d, dict) and d).map(dumped_indented)
                 .flatmap(edited)))
def test_indented_documents_and_their_edits_are_read_as_yaml_does_or_left_to_it(
        text: str) -> None:
    assert_agrees(text)


@MANY
@given(st.one_of(documents, plain_docs.filter(lambda d: isinstance(d, dict) and d))
       .map(yamlio.dumps).flatmap(edited))
def test_hostile_edits_are_read_as_yaml_does_or_left_to_it(text: str) -> None:
    assert_agrees(text)


@MANY
@given(pointers().flatmap(edited))
def test_an_edited_pointer_parses_as_with_yaml_alone(text: str) -> None:
    """The same Pointer or the same error, whichever reader ran."""
    assert parsed_with(yamlio.loads, text) == parsed_with(strict.loads, text)


def parsed_with(loads: Any, text: str) -> Any:
    original, yamlio.loads = yamlio.loads, loads
    try:
        return pointer.parse(text, "m.bin.moma")
    except MomaError as exc:
        return exc.message
    finally:
        yamlio.loads = original


# -- examples: what must be left to YAML, and what the subset holds ---------------------------

LEFT_TO_YAML = [
    "a: 1\na: 2\n", "'a': 1\na: 2\n", "a: yes\n", "a: 0755\n", "a: 1_000\n", "a: 1:30\n",
    "a: 2001-01-01\n", "a: ~\n", "a: .inf\n", "a: 1_0.5\n", "on: 1\n", "1: x\n", "null: x\n",
    "a: &x 1\nb: *x\n", "a: !!python/object/apply:os.system ['true']\n", "a: !!str 1\n",
    "a:\n   - x\n", "a:\n  - x\n b: 1\n", "a:\n  - x\n  b: 1\n", "a:\n- x\n  b: 1\n",
    "a: b\n  c\n", "a: 'x\n  y'\n", 'a: "x"\n',
    "a:  x\n", "a: x \n", "a: x #c\n", "a: x\n# c\n", "a: x\n\nb: y\n", "- a\n", "a:\n",
    "a:\nb: 1\n", "a: 1", "\ufeffa: 1\n", "a: 1\r\n", "---\na: 1\n", "a: 1\n...\n",
    "a: -\n", "a: - x\n", "a: ? x\n", "a: :x\n", "a: x: y\n", "a: [x]\n", "a: {b: 1}\n",
    "<<: {a: 1}\n", "a: =\n", "? a\n: b\n", "a:\n   b: 1\n", "a:\n b: 1\n",
    "a:\n  b: 1\n c: 2\n", "a: 1\n  b: 2\n", "a: é\n", "a:\tb\n", "a: 9999999999999999999\n",
    "k" * 200 + ": 1\n", "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 40)) + "x: 1\n",
    "a:\n- - x\n", "a: |\n  x\n", "a: >\n  x\n", "a: 'x'y\n", "a: 'unterminated\n",
]


@pytest.mark.parametrize("text", LEFT_TO_YAML)
def test_anything_outside_the_subset_is_left_to_yaml(text: str) -> None:
    assert canonical.read(text) is None


READ_HERE = {
    "a: x:y\n": {"a": "x:y"}, "a: it's\n": {"a": "it's"}, "a: 'it''s'\n": {"a": "it's"},
    "a: {}\nb: []\n": {"a": {}, "b": []}, "a: ''\n": {"a": ""}, "'on': 1\n": {"on": 1},
    "a: -0.0\n": {"a": -0.0}, "a: 1.0e-05\n": {"a": 1e-05}, "a: null\nb: true\n":
    {"a": None, "b": True}, "a: s3://b/p?x=1\n": {"a": "s3://b/p?x=1"},
    "a:\n- 1\n- b: 2\n  c:\n  - x\n  d: 3\ne: f g\n":
    {"a": [1, {"b": 2, "c": ["x"], "d": 3}], "e": "f g"},
    "checks:\n- accuracy >= 0.8\n- loss < 0.5\n": {"checks": ["accuracy >= 0.8", "loss < 0.5"]},
    "a:\n  b:\n    - x\n    - c: 1\n      d:\n        - y\n  e: 2\n":
    {"a": {"b": ["x", {"c": 1, "d": ["y"]}], "e": 2}},
}


@pytest.mark.parametrize("text", sorted(READ_HERE))
def test_the_subset_is_read_here_as_yaml_reads_it(text: str) -> None:
    assert same(canonical.read(text), READ_HERE[text])
    assert same(yaml_says(text), READ_HERE[text])


@pytest.mark.parametrize("text", LEFT_TO_YAML + sorted(READ_HERE))
def test_examples_agree_with_yaml(text: str) -> None:
    assert_agrees(text)


def test_empty_collections_are_new_each_time() -> None:
    """Lines are parsed once and remembered: a `{}` or `[]` must still be a fresh value."""
    first, second = canonical.read("a: {}\nb: []\n"), canonical.read("a: {}\nb: []\n")
    assert first is not None and second is not None
    first["a"]["x"] = 1
    first["b"].append(2)
    assert second == {"a": {}, "b": []}


# -- the types of plain scalars, without PyYAML ----------------------------------------------

scalar_texts = st.one_of(st.sampled_from(ODD), st.text(
    alphabet="0123456789_.:+-eEbxXaAfFiInNtTZ ~=<!&*yYsSlLuUoO\t", max_size=16))


@MANY
@given(scalar_texts)
def test_plain_scalars_get_the_type_pyyaml_gives_them(text: str) -> None:
    tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, text, (True, False))
    assert f"tag:yaml.org,2002:{canonical._resolved(text)}" == tag


def test_every_typed_first_character_is_known() -> None:
    """A plain scalar starting with any other character is taken as a string unasked."""
    firsts = yaml.resolver.Resolver.yaml_implicit_resolvers
    assert None not in firsts
    assert {k for k in firsts if k} == canonical._TYPED_FIRST


def test_reading_moma_s_own_layout_does_not_import_pyyaml() -> None:
    code = ("import sys\nfrom moma_cli import yamlio\n"
            "assert yamlio.loads('moma: 1\\noid: 3fa9\\nsize: 12\\n') is not None\n"
            "print('yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
