"""yaml_line: the line of a config file a pydantic error location points at."""

import pytest

from evalcore.yaml_lines import yaml_line

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
