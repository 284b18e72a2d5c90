"""YAML files that users write, read with line numbers and validated into pydantic models.

Every user-written YAML file of the project (profiles, drill scenarios, themes, command files) goes
through the same two steps so that all of them report mistakes the same way:

    data, locator = load_yaml(path)
    scenario = validate(Scenario, data, locator, path)

`load_yaml` keeps, next to the plain Python data, a `Locator` that knows the line of every mapping
key and sequence item. `validate` runs the pydantic model and turns *all* of its errors into
`FILE:LINE: field.path: message` lines (list indices as numbers, e.g. `app.ports.0.port`), with
human messages, a "did you mean" for misspelt keys and choices, and no pydantic URLs; it raises
`ConfigError` carrying every problem at once so a user fixes a file in one pass.

Files layered over each other (a profile that `extends` another) combine their locators with
`Locator.layered`, so each problem names the file and line the offending value came from.

This module never imports the UI.
"""

from __future__ import annotations

import difflib
import os
import stat
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError

from devsim_tui.errors import ConfigError, UserError

M = TypeVar("M", bound=BaseModel)

#: A position inside a document: mapping keys and list indices from the top.
DataPath = tuple[Any, ...]

#: How a problem about the document itself (not one of its fields) names its location.
TOP_LEVEL = "(top level)"


@dataclass(frozen=True)
class Where:
    """A source position: the file and, when known, the 1-based line."""

    file: str
    line: int | None

    def prefix(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class Locator:
    """Maps data paths to where they were written.

    The line of a mapping entry is the line of its key, the line of a list item is where the item
    starts, and the line of the whole document `()` is where its top-level node starts.
    """

    def __init__(
        self, filename: str, lines: Mapping[DataPath, int | None], below: Locator | None = None
    ):
        self.filename = filename
        self._lines = dict(lines)
        self._below = below

    @classmethod
    def from_data(cls, data: Any, filename: str) -> Locator:
        """A locator without line numbers, for data that did not come from a file (e.g. flags).

        It holds every path of `data` except the top level, so that, layered over a file's
        locator, it claims exactly the values it supplies.
        """
        lines: dict[DataPath, int | None] = {}

        def walk(value: Any, path: DataPath) -> None:
            if path:
                lines[path] = None
            if isinstance(value, Mapping):
                for key, item in value.items():
                    walk(item, (*path, key))
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    walk(item, (*path, index))

        walk(data, ())
        return cls(filename, lines)

    def layered(self, below: Locator) -> Locator:
        """This locator over `below`: paths this one knows win, the rest are looked up in `below`.

        Correct for data deep-merged the same way (this file's values over `below`'s): a path that
        exists in the merged data and that this file does not know can only have come from below.
        """
        return Locator(
            self.filename,
            self._lines,
            below if self._below is None else self._below.layered(below),
        )

    def prefixed(self, prefix: DataPath) -> Locator:
        """The same positions under `prefix`, for data wrapped into a mapping before validation
        (e.g. a bare YAML list validated as the field of a model)."""
        lines = {(*prefix, *path): line for path, line in self._lines.items()}
        if () in self._lines:  # the wrapper mapping starts where the wrapped document did
            lines[()] = self._lines[()]
        below = self._below.prefixed(prefix) if self._below is not None else None
        return Locator(self.filename, lines, below)

    def find(self, path: Iterable[Any]) -> Where | None:
        """Where exactly `path` was written, or None if no layer knows it."""
        path = tuple(path)
        layer: Locator | None = self
        while layer is not None:
            if path in layer._lines:
                return Where(layer.filename, layer._lines[path])
            layer = layer._below
        return None

    def locate(self, path: Iterable[Any]) -> Where:
        """Where `path` was written, else its nearest written ancestor (a path the data lacks)."""
        path = tuple(path)
        for end in range(len(path), -1, -1):
            where = self.find(path[:end])
            if where is not None:
                return where
        return Where(self.filename, None)


# --------------------------------------------------------------------------- reading


#: The largest YAML file read (profiles, drills and rule files are a few KiB; a commands file of
#: ten thousand entries is well under a MiB). Bigger is a mistake or an attack.
MAX_FILE_BYTES = 8 * 1024 * 1024
#: Deepest nesting of collections accepted: real files nest a handful of levels; PyYAML composes
#: recursively and would otherwise end in a RecursionError on `[[[[...]]]]`.
MAX_DEPTH = 100
#: Most nodes a document may hold with every alias expanded: aliases referring to aliases
#: ("billion laughs") make a few hundred bytes mean billions of values to validate.
MAX_NODES = 100_000


def read_text_file(path: str | os.PathLike[str], what: str = "YAML file",
                   max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`, or UserError saying why not.

    Only regular files: `/dev/zero` would be read forever, a FIFO would block until someone
    writes to it (opened non-blocking, it is refused before any read).
    """
    filename = os.fspath(path)
    try:
        fd = os.open(filename, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise UserError(f"{filename}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{filename}: is a directory, not a {what}") from None
    except OSError as exc:
        raise UserError(f"{filename}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UserError(f"{filename}: is a directory, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{filename}: not a regular file (a device, FIFO or socket); "
                            f"expected a {what}")
        if info.st_size > max_bytes:
            raise UserError(f"{filename}: too large for a {what} ({info.st_size} bytes, at "
                            f"most {max_bytes})")
        with os.fdopen(fd, "rb", closefd=True) as handle:
            fd = -1
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UserError(f"{filename}: cannot read: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > max_bytes:  # it grew while we looked
        raise UserError(f"{filename}: too large for a {what} (more than {max_bytes} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{filename}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_yaml(path: str | os.PathLike[str]) -> tuple[Any, Locator]:
    """Read one YAML document with SafeLoader semantics, plus the line of every key and item.

    Raises UserError if the file cannot be read (missing, not a regular file, too large, not
    UTF-8) and ConfigError for YAML syntax errors (`FILE:LINE: yaml: message`), control
    characters, nesting deeper than MAX_DEPTH, more than MAX_NODES values once aliases are
    expanded, and duplicate keys, which PyYAML would otherwise silently let the last one win.
    An empty file gives `None`.
    """
    filename = os.fspath(path)
    return parse_yaml(read_text_file(filename), filename)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that, while composing, refuses nesting deeper than MAX_DEPTH and more than
    MAX_NODES nodes (each with its line), before either costs a RecursionError or the memory."""

    def __init__(self, stream: str) -> None:
        self._depth = 0
        self._nodes = 0
        self._root: yaml.Node | None = None
        super().__init__(stream)

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark)
            if self._nodes > MAX_NODES:
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_NODES} values", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root: yaml.Node) -> tuple[int, yaml.Node | None]:
    """Nodes in the document with every alias expanded (capped just past MAX_NODES), and the
    node where an alias refers to a collection that contains it (infinitely large), if any."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    cycle: list[yaml.Node] = []

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            cycle.append(node)
            return MAX_NODES + 1
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > MAX_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > MAX_NODES:
                    break
        active.discard(key)
        sizes[key] = total = min(total, MAX_NODES + 1)
        return total

    return size(root), (cycle[0] if cycle else None)


def load_list(path: str | os.PathLike[str], model: type[BaseModel], key: str) -> list[Any]:
    """A file that is a YAML list, or a mapping holding it under `key`, validated as `model`
    (which has that one field): its items, with FILE:LINE errors pointing into the list."""
    data, locator = load_yaml(path)
    if isinstance(data, list):
        data, locator = {key: data}, locator.prefixed((key,))
    return list(getattr(validate(model, data, locator, path), key))


def parse_yaml(text: str, filename: str) -> tuple[Any, Locator]:
    """`load_yaml` for text already in memory; `filename` is only used in messages."""
    loader = None
    try:
        loader = _BoundedLoader(text)  # reads the first characters: control characters fail here
        node = loader._root = loader.get_single_node()
        if node is None:
            return None, Locator(filename, {(): 1})
        bad = _scalar_with_surrogate(node)
        if bad is not None:  # `"\ud800"` is a valid YAML escape, but not text anything can use
            raise ConfigError([f"{filename}:{bad.start_mark.line + 1}: yaml: not valid Unicode "
                               "text (a lone surrogate such as \\ud800)"])
        total, cycle = _expanded_size(node)
        if cycle is not None:
            line = cycle.start_mark.line + 1
            raise ConfigError([f"{filename}:{line}: yaml: an alias refers to a collection that "
                               "contains it (the document would be infinitely large)"])
        if total > MAX_NODES:
            raise ConfigError([f"{filename}:{node.start_mark.line + 1}: yaml: more than "
                               f"{MAX_NODES} values once aliases are expanded (an alias "
                               "bomb?)"])
        duplicates = _duplicate_keys(loader, node, filename)
        if duplicates:
            raise ConfigError(duplicates)
        data = loader.construct_document(node)
        # After construction, merge keys (`<<: *base`) are flattened into the mapping nodes, so
        # this walk sees the keys the data has, explicit ones after (and winning over) merged.
        lines: dict[DataPath, int | None] = {(): node.start_mark.line + 1}
        _record_lines(loader, node, (), lines, set())
    except yaml.reader.ReaderError as exc:
        raise ConfigError([_reader_problem(exc, text, filename)]) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_yaml_problem(exc, filename)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{filename}: yaml: {exc}"]) from None
    except RecursionError:  # a last resort: MAX_DEPTH should stop it first
        raise ConfigError([f"{filename}: yaml: nested too deeply"]) from None
    except ValueError:  # an integer of more than 4300 digits (Python's own limit on int())
        raise ConfigError([f"{filename}:{_longest_scalar_line(loader)}: yaml: a number too "
                           "long to read (thousands of digits)"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, Locator(filename, lines)


def _scalar_with_surrogate(root: yaml.Node) -> yaml.Node | None:
    """The first scalar (key or value) holding a surrogate code point, if any."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if any("\ud800" <= ch <= "\udfff" for ch in node.value):
                return node
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


def _longest_scalar_line(loader: Any) -> int:
    """The line of the longest scalar of the document being read (the culprit of a ValueError)."""
    best, line = -1, 1
    stack = [getattr(loader, "_root", None)]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > best:
                best, line = len(node.value), node.start_mark.line + 1
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return line


def _reader_problem(exc: yaml.reader.ReaderError, text: str, filename: str) -> str:
    """A character YAML does not allow (NUL, BEL, ^Z...), with its line."""
    position = exc.position if isinstance(exc.position, int) else 0
    line = text.count("\n", 0, max(position, 0)) + 1
    character = exc.character
    code = ord(character) if isinstance(character, str) else int(character or 0)
    return (f"{filename}:{line}: yaml: character U+{code:04X} is not allowed (control "
            "characters cannot appear in YAML)")


def _yaml_problem(exc: yaml.MarkedYAMLError, filename: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    line = f"{mark.line + 1}" if mark is not None else "1"
    message = exc.problem or "invalid YAML"
    if exc.context:
        message = f"{message} ({exc.context}"
        if exc.context_mark is not None and exc.context_mark is not mark:
            message += f" on line {exc.context_mark.line + 1}"
        message += ")"
    return f"{filename}:{line}: yaml: {message}"


def _key_of(loader: yaml.SafeLoader, key_node: yaml.Node) -> Any:
    return loader.construct_object(key_node, deep=True)


def _is_merge_key(key_node: yaml.Node) -> bool:
    return key_node.tag == "tag:yaml.org,2002:merge"


def _duplicate_keys(loader: yaml.SafeLoader, root: yaml.Node, filename: str) -> list[str]:
    problems: list[str] = []
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node, path: DataPath) -> None:
        if id(node) in seen_nodes:  # aliases revisit nodes, and may even be recursive
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if _is_merge_key(key_node):
                    continue
                key = _key_of(loader, key_node)
                line = key_node.start_mark.line + 1
                try:
                    earlier = first.get(key)
                    first.setdefault(key, line)
                except TypeError:  # an unhashable key: construction reports it properly
                    continue
                if earlier is not None:
                    problems.append(
                        f"{filename}:{line}: {format_path((*path, key))}: "
                        f"duplicate key (first given on line {earlier})"
                    )
                walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    walk(root, ())
    return problems


def _record_lines(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: DataPath,
    lines: dict[DataPath, int | None],
    active: set[int],
) -> None:
    if id(node) in active:  # a recursive alias: its lines are already recorded above
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _key_of(loader, key_node)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _record_lines(loader, value_node, (*path, key), lines, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _record_lines(loader, item, (*path, index), lines, active)
    active.discard(id(node))


def deep_merge(base: Mapping[Any, Any], over: Mapping[Any, Any]) -> dict[Any, Any]:
    """`over` laid on `base`: mappings merge key by key, anything else (lists too) is replaced.

    Lists replace rather than append so that a layer can also remove items (ports, policies);
    `Locator.layered` relies on exactly this rule. Neither input is modified.
    """
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- validating


def format_path(path: Iterable[Any]) -> str:
    """`('app', 'ports', 0, 'port')` -> `app.ports.0.port`; the empty path is the top level."""
    text = ".".join(str(part) for part in path)
    return text or TOP_LEVEL


def require_mapping(
    data: Any, locator: Locator, filename: str | os.PathLike[str] | None = None
) -> None:
    """Raise ConfigError unless the document is a mapping (the shape of every config file)."""
    if isinstance(data, Mapping):
        return
    where = _renamed(locator.locate(()), locator, filename)
    if data is None:
        message = "the document is empty; expected a mapping of fields (key: value lines)"
    else:
        message = (
            f"the document must be a mapping of fields (key: value lines), got {_describe(data)}"
        )
    raise ConfigError([f"{where.prefix()}: {TOP_LEVEL}: {message}"])


def validate(
    model_cls: type[M],
    data: Any,
    locator: Locator,
    filename: str | os.PathLike[str] | None = None,
) -> M:
    """Validate `data` into `model_cls`, or raise ConfigError listing every problem.

    Each problem reads `FILE:LINE: field.path: message`. FILE is the file the value came from
    (`filename`, when given, renames the locator's own file, e.g. to a path as the user typed
    it); LINE is the line of the offending key or item, or for a missing field the line of the
    mapping that should contain it.
    """
    require_mapping(data, locator, filename)
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        problems = _problems(model_cls, exc.errors(), locator, filename)
        raise ConfigError(problems) from None


@dataclass
class _Problem:
    where: Where
    path: DataPath
    message: str
    expected: str | None  # "an integer", when the problem is a wrong type
    got: Any


def _renamed(where: Where, locator: Locator, filename: str | os.PathLike[str] | None) -> Where:
    if filename is not None and where.file == locator.filename:
        return Where(os.fspath(filename), where.line)
    return where


def _problems(
    model_cls: type[BaseModel],
    errors: Sequence[Mapping[str, Any]],
    locator: Locator,
    filename: str | os.PathLike[str] | None,
) -> list[str]:
    singles: list[_Problem] = []
    # A value matching no member of a union gets one error per member; they are merged into one
    # problem, unless the value had the shape of a member and failed inside it (then those count).
    unions: dict[DataPath, list[_Problem]] = {}
    for error in errors:
        resolved = _resolve(model_cls, tuple(error["loc"]))
        if error["type"] == "missing":
            where = locator.locate(resolved.path[:-1])
        else:
            where = locator.locate(resolved.path)
        where = _renamed(where, locator, filename)
        message, expected = _message(error, resolved)
        path = resolved.path
        if error["type"] == "invalid_key" and path:  # pydantic puts True as 1: show the key
            path = (*path[:-1], error.get("input"))
        problem = _Problem(where, path, message, expected, error.get("input"))
        if resolved.union_path is not None:
            unions.setdefault(resolved.union_path, []).append(problem)
        else:
            singles.append(problem)
    for union_path, members in unions.items():
        deeper = [p for p in members if p.path != union_path]
        if deeper:
            singles.extend(deeper)
            continue
        first = members[0]
        if all(p.expected for p in members):
            alternatives = _unique(p.expected for p in members)
            message = f"expected {_or_list(alternatives)}, got {_describe(first.got)}"
        else:
            message = " or ".join(_unique(p.message for p in members))
        singles.append(_Problem(first.where, union_path, message, None, first.got))
    singles.sort(key=lambda p: (p.where.file, p.where.line or 0))
    return [
        f"{p.where.prefix()}: {format_path(p.path)}: {p.message}"
        for p in _unique_problems(singles)
    ]


def _unique(items: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def _unique_problems(problems: list[_Problem]) -> list[_Problem]:
    seen: set[tuple[Where, DataPath, str]] = set()
    result = []
    for problem in problems:
        key = (problem.where, tuple(map(str, problem.path)), problem.message)
        if key not in seen:
            seen.add(key)
            result.append(problem)
    return result


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _describe(value: Any) -> str:
    """A value as a YAML user would recognise it, for `got ...`."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # pydantic turns `gt=0` on a float field into 0.0
    return str(value)


# --------------------------------------------------------------------------- the model walk


@dataclass
class _Resolved:
    path: DataPath  # the error's location in the data (union member tags removed)
    container: Any  # the type in which the last path element was looked up
    leaf: Any  # the type expected at the location, None when unknown
    union_path: DataPath | None  # where a union of several types was being matched


def _strip(annotation: Any) -> Any:
    """Drop `Annotated[...]` and `X | None`, which never add a level to an error's location."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        members = _union_members(annotation)
        if members is not None and len(members) == 1:
            annotation = members[0]
            continue
        return annotation


def _union_members(annotation: Any) -> list[Any] | None:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _member_tag(member: Any) -> str:
    """The name pydantic uses for a union member in an error location (`int`, `HPARules`...)."""
    member = _strip(member)
    if typing.get_origin(member) is Literal:
        return "literal"
    origin = typing.get_origin(member) or member
    return getattr(origin, "__name__", str(origin)).lower()


def _field_annotation(model: type[BaseModel], key: Any) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias, field.validation_alias):
            return field.annotation
    return None


def _resolve(model_cls: type[BaseModel], loc: DataPath) -> _Resolved:
    """Follow a pydantic error location through the model's types to the data it points at."""
    path: list[Any] = []
    current: Any = model_cls
    container: Any = None
    union_path: DataPath | None = None
    parts = list(loc)
    while parts:
        current = _strip(current)
        members = _union_members(current)
        if members is not None:
            # Pydantic names the union member it tried; that name is not part of the data.
            tag = str(parts.pop(0)).split("[", 1)[0].lower()
            if union_path is None:
                union_path = tuple(path)
            current = next((m for m in members if _member_tag(m) == tag), None)
            continue
        part = parts.pop(0)
        if part == "[key]":  # pydantic's marker for a bad mapping key, after the key itself
            continue
        container = current
        path.append(part)
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if _is_model(current):
            current = _field_annotation(current, part)
        elif origin in (list, tuple, set, frozenset, Sequence) and args:
            current = args[0]
        elif origin in (dict, Mapping) and len(args) == 2:
            current = args[1]
        else:
            current = None
    return _Resolved(tuple(path), container, _strip(current), union_path)


def _model_field_names(model: Any) -> list[str]:
    model = _strip(model)
    if not _is_model(model):
        return []
    names: list[str] = []
    for name, field in model.model_fields.items():
        names.append(field.alias or name)
    return names


def _literal_choices(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    return []


def _did_you_mean(word: Any, choices: Iterable[Any]) -> str | None:
    by_text = {str(choice): choice for choice in choices}
    match = difflib.get_close_matches(str(word), list(by_text), n=1, cutoff=0.6)
    return match[0] if match else None


# --------------------------------------------------------------------------- messages

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "bytes_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
    "literal_error": "one of the listed values",
    "none_required": "nothing (null)",
}

_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _message(error: Mapping[str, Any], resolved: _Resolved) -> tuple[str, str | None]:
    """A human message for one pydantic error, and what type was expected (type errors only)."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input")

    if kind == "missing":
        return "required field is missing", None
    if kind == "extra_forbidden":
        names = _model_field_names(resolved.container)
        suggestion = _did_you_mean(resolved.path[-1], names)
        if suggestion:
            return f"unknown field, did you mean '{suggestion}'?", None
        if names:
            return f"unknown field (allowed here: {', '.join(names)})", None
        return "unknown field", None
    if kind == "literal_error":
        choices = _literal_choices(resolved.leaf)
        allowed = ", ".join(repr(c) for c in choices) if choices else ctx.get("expected", "")
        message = f"must be one of {allowed}, got {_describe(got)}"
        suggestion = _did_you_mean(got, choices) if isinstance(got, str) else None
        if suggestion:
            message += f"; did you mean '{suggestion}'?"
        return message, f"one of {allowed}"
    if kind in _BOUNDS:
        key, symbol = _BOUNDS[kind]
        return f"must be {symbol} {_describe(ctx.get(key))}, got {_describe(got)}", None
    if kind in _EXPECTED:
        expected = _EXPECTED[kind]
        message = f"expected {expected}, got {_describe(got)}"
        if kind == "string_type" and isinstance(got, (int, float)) and not isinstance(got, bool):
            message += f' (write "{got}" in quotes if you mean the text)'
        return message, expected
    if kind == "invalid_key":
        message = f"keys must be strings, got {_describe(got)}"
        if isinstance(got, bool):
            message += " (YAML reads unquoted yes/no/on/off as true/false: quote the key)"
        return message, None
    if kind in ("value_error", "assertion_error"):
        cause = ctx.get("error")
        return (str(cause) if cause is not None else error["msg"]), None
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length" if kind == "too_short" else "max_length")
        word = "at least" if kind == "too_short" else "at most"
        items = "item" if bound == 1 else "items"
        return f"must have {word} {bound} {items}, got {ctx.get('actual_length')}", None
    if kind in ("string_too_short", "string_too_long"):
        bound = ctx.get("min_length" if kind == "string_too_short" else "max_length")
        word = "at least" if kind == "string_too_short" else "at most"
        return f"must be {word} {bound} characters long, got {_describe(got)}", None
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')}, got {_describe(got)}", None
    if kind == "multiple_of":
        return f"must be a multiple of {ctx.get('multiple_of')}, got {_describe(got)}", None
    if kind == "finite_number":
        return f"must be a finite number, got {_describe(got)}", None
    # Any other pydantic error: its own text, in the same voice as the messages above.
    message = str(error["msg"]).replace("Input should be", "must be")
    return message[:1].lower() + message[1:], None
