"""Find the line of a YAML file that a pydantic validation error points at.

A pydantic error carries a location such as `("models", 0, "params", "bogus")`, which
says where in the parsed data the bad value sits but not where it is in the file. This
module walks the YAML node tree (`yaml.compose`, which keeps each node's position) along
that location, so an error message can say "config.yaml line 12: ...".
"""

from __future__ import annotations

import yaml


def yaml_line(text: str, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the node at pydantic error location `loc` in the YAML `text`.

    A mapping entry is reported at its key's line (the line a reader looks for: the
    value of `params:` may start on the next line); a sequence element at its first
    line. When the location leaves the document (a missing required field, a key
    pydantic adds such as a union member's name) the line is that of the deepest
    entry that exists, the whole document's first line at worst. None when `text` is
    not a single YAML document or is empty.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line
    for part in loc:
        found = _child(node, part)
        if found is None:
            break
        node, line = found
    return line + 1


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, int] | None:
    """The child of `node` at `part` and its 0-based line, or None when there is none."""
    if isinstance(node, yaml.MappingNode):
        # the last of repeated keys wins, as in yaml.safe_load
        for key, value in reversed(node.value):
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value, key.start_mark.line
    elif isinstance(node, yaml.SequenceNode):
        if isinstance(part, int) and not isinstance(part, bool) and 0 <= part < len(node.value):
            item = node.value[part]
            return item, item.start_mark.line
    return None
