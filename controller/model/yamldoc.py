"""Safe YAML reading that keeps line numbers and refuses alias bombs.

PyYAML's safe loader happily expands a "billion laughs" document into
gigabytes. We compose each document into PyYAML's node graph first (aliases
stay shared references there, so composing is cheap), measure the size the
document *would* have once expanded, and only then construct Python objects.
The node graph also maps a JSON pointer back to a line for error messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from controller.model.problems import ManifestError

#: PyYAML's C parser is ~10x faster; fall back to pure Python where absent.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Upper bound on nodes a document may expand to. A large real manifest has
#: a few thousand; an alias bomb has billions.
MAX_EXPANDED_NODES = 100_000


@dataclass(frozen=True)
class YamlDocument:
    """One parsed document: its value and its node graph (for line lookup)."""

    value: Any
    node: yaml.Node
    line: int  # 1-based line where the document starts

    def line_of(self, pointer: tuple[str | int, ...], *, key: bool = False) -> int:
        """The 1-based line of the value at `pointer` (or of its key), best effort."""
        node = self.node
        line = node.start_mark.line + 1
        for part in pointer:
            child: yaml.Node | None = None
            key_node: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                        key_node, child = k, v
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                child = node.value[part]
            if child is None:
                return line
            node = child
            line = (key_node if key and key_node is not None else child).start_mark.line + 1
        return line


def _expanded_size(root: yaml.Node) -> int | None:
    """Nodes the document expands to, or None if an alias makes it recursive."""
    memo: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: yaml.Node) -> int | None:
        ident = id(node)
        if ident in memo:
            return memo[ident]
        if ident in in_progress:
            return None
        in_progress.add(ident)
        total = 1
        children: list[yaml.Node]
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        for child in children:
            child_size = size(child)
            if child_size is None:
                return None
            total += child_size
            if total > MAX_EXPANDED_NODES:
                break
        in_progress.discard(ident)
        memo[ident] = total
        return total

    return size(root)


@dataclass(frozen=True)
class _Shape:
    """What one walk over a document's node graph found."""

    #: distinct nodes: the expanded size when nothing is shared
    nodes: int
    #: some node is reached twice (an alias): the expanded size needs its own count
    shared: bool
    #: the first repeated mapping key (YAML says keys are unique), if any
    duplicate: yaml.Node | None


def _shape(root: yaml.Node) -> _Shape:
    """One walk over the distinct nodes: their number, whether any is shared, a repeated key.

    A document without aliases (nearly all) needs no second walk: its
    expanded size is its node count. Types are compared with `is`, which
    is measurably cheaper than isinstance over ~100 nodes per manifest.
    """
    seen: set[int] = set()
    shared = False
    stack = [root]
    mapping, sequence = yaml.MappingNode, yaml.SequenceNode
    while stack:
        current = stack.pop()
        ident = id(current)
        if ident in seen:
            shared = True
            continue
        seen.add(ident)
        kind = type(current)
        if kind is mapping:
            keys: set[str] = set()
            for key, value in current.value:
                if type(key) is yaml.ScalarNode:
                    if key.value in keys and key.value != "<<":
                        return _Shape(len(seen), shared, key)
                    keys.add(key.value)
                stack.append(key)
                stack.append(value)
        elif kind is sequence:
            stack.extend(current.value)
    return _Shape(len(seen), shared, None)


_BOOL_TAG = "tag:yaml.org,2002:bool"
_STR_TAG = "tag:yaml.org,2002:str"


def _string_keys(root: yaml.Node) -> None:
    """Read every boolean-looking mapping key as the string it was written as.

    YAML 1.1 reads an unquoted `on:` (or yes/no/off) key as True; no
    manifest field is a boolean key, and `notify.on` must stay `on`.
    """
    seen: set[int] = set()
    stack = [root]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.tag == _BOOL_TAG:
                    key.tag = _STR_TAG
                stack.extend((key, value))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def parse_yaml_documents(path: str, text: str) -> Iterator[YamlDocument | ManifestError]:
    """Yield each document of a YAML stream, or an error where one cannot be read.

    A syntax error ends the stream (the parser cannot resynchronise); the
    documents before it are still yielded.
    """
    loader = _Loader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                line = mark.line + 1 if mark is not None else 1
                problem = exc.problem or exc.context or "invalid YAML"
                yield ManifestError(path, line, f"YAML syntax error: {problem}")
                return
            except yaml.YAMLError as exc:
                yield ManifestError(path, 1, f"YAML error: {exc}")
                return
            line = node.start_mark.line + 1
            shape = _shape(node)
            size = _expanded_size(node) if shape.shared else shape.nodes
            if size is None:
                yield ManifestError(path, line, "recursive YAML alias: refused")
                continue
            if size > MAX_EXPANDED_NODES:
                yield ManifestError(
                    path,
                    line,
                    f"YAML aliases expand to more than {MAX_EXPANDED_NODES} nodes "
                    "(alias bomb?): refused",
                )
                continue
            duplicate = shape.duplicate
            if duplicate is not None:
                yield ManifestError(
                    path,
                    duplicate.start_mark.line + 1,
                    f"duplicate key {duplicate.value!r} in a mapping",
                )
                continue
            _string_keys(node)
            try:
                value = loader.construct_document(node)
            except yaml.YAMLError as exc:
                yield ManifestError(path, line, f"YAML error: {exc}")
                continue
            yield YamlDocument(value=value, node=node, line=line)
    finally:
        loader.dispose()
