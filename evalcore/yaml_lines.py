"""YAML at the level of its node tree: the line a pydantic error points at, and a safe
load whose aliases cannot expand without a bound.

A pydantic error carries a location such as `("models", 0, "params", "bogus")`, which
says where in the parsed data the bad value sits but not where it is in the file. This
module walks the YAML node tree (`yaml.compose`, which keeps each node's position) along
that location, so an error message can say "config.yaml line 12: ...".

An alias (`*name`) stands for a whole anchored value, so a few hundred bytes of nested
aliases ("billion laughs") stand for billions of values. PyYAML shares one object per
anchor, but whatever walks the data afterwards (validation, JSON) expands it. `safe_load`
counts, while composing, the nodes and characters each alias stands for, and stops at
the alias that passes `MAX_ALIAS_NODES` or `MAX_ALIAS_CHARS`: nothing is ever expanded.
"""

from __future__ import annotations

from typing import Any

import yaml

# What all the aliases of one document may stand for, together: far above any config's
# use of anchors (a shared `params` block), far below what takes a noticeable time.
MAX_ALIAS_NODES = 10_000
MAX_ALIAS_CHARS = 1_000_000


class AliasExpansionError(yaml.YAMLError):
    """A document whose aliases stand for too much, or for a value containing itself."""

    def __init__(self, problem: str, line: int, field: str) -> None:
        super().__init__(f"line {line}: {field}: {problem}")
        self.problem = problem
        self.line = line  # 1-based, of the alias
        self.field = field  # dotted path of the alias in the document, "(root)" at the top


def safe_load(text: str) -> Any:
    """`yaml.safe_load` of a single document, refusing aliases that expand past the
    bounds (`AliasExpansionError`, naming the line and the field of the alias)."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that knows, for each composed node, how many nodes and characters
    it stands for with its aliases expanded, and adds up what the aliases add."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._size: dict[yaml.Node, tuple[int, int]] = {}  # node -> (nodes, chars) expanded
        self._alias_nodes = 0
        self._alias_chars = 0
        self._path: list[str | int] = []

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        part = _path_part(parent, index)
        if part is not None:
            self._path.append(part)
        try:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                node = super().compose_node(parent, index)  # the anchored node itself
                self._count_alias(node, mark)
                return node
            node = super().compose_node(parent, index)
            self._size[node] = self._expanded_size(node)
            return node
        finally:
            if part is not None:
                self._path.pop()

    def _expanded_size(self, node: yaml.Node) -> tuple[int, int]:
        if isinstance(node, yaml.ScalarNode):
            return 1, len(node.value)
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value
        nodes, chars = 1, 0
        for child in children:
            child_nodes, child_chars = self._size[child]
            nodes, chars = nodes + child_nodes, chars + child_chars
        return nodes, chars

    def _count_alias(self, node: yaml.Node, mark: yaml.Mark) -> None:
        field = ".".join(str(p) for p in self._path) or "(root)"
        size = self._size.get(node)
        if size is None:  # its anchor is still being composed: the alias is inside it
            raise AliasExpansionError(
                "a YAML alias inside its own anchor's value (a value containing itself)",
                mark.line + 1,
                field,
            )
        self._alias_nodes += size[0]
        self._alias_chars += size[1]
        if self._alias_nodes > MAX_ALIAS_NODES or self._alias_chars > MAX_ALIAS_CHARS:
            raise AliasExpansionError(
                f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} values or "
                f"{MAX_ALIAS_CHARS:,} characters (an alias bomb?); write the values out",
                mark.line + 1,
                field,
            )


def _path_part(parent: yaml.Node | None, index: Any) -> str | int | None:
    """The step from `parent` to the node composed at `index`: a mapping's key, a
    sequence's position; None for the document's root and for a mapping's keys."""
    if isinstance(parent, yaml.SequenceNode):
        return index
    if isinstance(parent, yaml.MappingNode) and isinstance(index, yaml.Node):
        return index.value if isinstance(index, yaml.ScalarNode) else "?"
    return None


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
