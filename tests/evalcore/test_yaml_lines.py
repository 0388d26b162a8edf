"""yaml_line: the line of a config file a pydantic error location points at."""

import pytest
import yaml

from evalcore.yaml_lines import AliasExpansionError, safe_load, yaml_line

CONFIG = """\
# a run config
datasets:
  - tsv: data/bench.tsv
    root: data/videos
models:
  - name: ref
    kind: reference
  - name: api
    kind: openai-compatible
    params:
      temperature: 0
      bogus: 1
frames:
  nframe: true
"""


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (("models", 1, "params", "bogus"), 12),
        (("frames", "nframe"), 14),
        (("models", 1), 8),  # a list item: the line of its first entry
        (("models", 1, "params"), 10),  # a nested mapping: its key's line, not the next
        (("datasets", 0, "root"), 4),
    ],
)
def test_finds_the_line_of_an_existing_node(loc, line):
    assert yaml_line(CONFIG, loc) == line


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (("datasets", 0, "name"), 3),  # missing field: the list item that lacks it
        (("models", 1, "params", "missing"), 10),
        (("models", 7, "name"), 5),  # no such index: the list's key
        (("trials",), 2),  # missing at the top: the document's first line
        (("frames", "nframe", "DatasetSpec"), 14),  # past a scalar: the scalar
    ],
)
def test_a_missing_node_points_at_its_deepest_existing_parent(loc, line):
    assert yaml_line(CONFIG, loc) == line


def test_a_flow_style_list_index():
    assert yaml_line("inference:\n  gpus: [0, 1,\n    x]\n", ("inference", "gpus", 2)) == 3


def test_repeated_keys_point_at_the_last_one_which_yaml_keeps():
    assert yaml_line("trials: 1\ntrials: x\n", ("trials",)) == 2


@pytest.mark.parametrize("text", ["models: [1, 2\n", "a: 1\n---\nb: 2\n", "", "# only\n"])
def test_text_that_is_not_one_yaml_document_has_no_line(text):
    assert yaml_line(text, ("models",)) is None


# safe_load: aliases are counted while composing, never expanded


def test_safe_load_reads_what_yaml_safe_load_reads():
    text = CONFIG + "shared: &p {temperature: 0}\nagain: *p\nmerged: {<<: *p, top_p: 1}\n"
    assert safe_load(text) == yaml.safe_load(text)


LAUGHS = "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_nested_aliases_past_the_bound_are_refused_at_the_alias_that_passes_it():
    text = 'x:\n  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    text += "".join(f"  {line}\n" for line in LAUGHS.splitlines())
    with pytest.raises(AliasExpansionError) as caught:
        safe_load(text)
    # 9 + 90 + 819 + 7380 values by the end of line 5; line 6's first alias passes 10,000
    assert (caught.value.line, caught.value.field) == (6, "x.e.0")
    assert "expand to more than 10,000 values" in caught.value.problem


def test_a_long_string_repeated_by_aliases_is_refused_by_its_characters():
    text = f"s: &s {'x' * 200_000}\nt: [{', '.join(['*s'] * 6)}]\n"
    with pytest.raises(AliasExpansionError) as caught:
        safe_load(text)
    assert (caught.value.line, caught.value.field) == (2, "t.5")  # 6 x 200,000 > 1,000,000


def test_an_alias_inside_its_own_anchor_is_refused():
    with pytest.raises(AliasExpansionError) as caught:
        safe_load("a:\n  b: &loop\n    - 1\n    - *loop\n")
    assert (caught.value.line, caught.value.field) == (4, "a.b.1")
    assert "containing itself" in caught.value.problem


def test_aliases_within_the_bound_load():
    text = f"s: &s {'x' * 1000}\nt: [{', '.join(['*s'] * 999)}]\n"  # 999,000 characters
    assert len(safe_load(text)["t"]) == 999
