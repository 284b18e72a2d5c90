"""No profile field may be a label: every schema field is read somewhere outside the schema.

A field counts as read when its name appears as an attribute access or a quoted key (`.name`,
`"name"`, `'name'`) in a module of the package other than the schema, or inside a `@property`
of the schema (an accessor such as `ScalingSpec.initial` that the engine reads instead).
Reads in validators do not count: checking a value is not giving it behaviour.

A field nobody reads must say why, in its one declared mark (config/schema.py): either
`informational(reason)` (documentation only, e.g. a name shown nowhere that describes the
estate) or `pending(reason)` (behaviour being built elsewhere, naming the issue). The test also
fails on a mark without a reason.
"""

from __future__ import annotations

import ast
import pathlib
import re

from pydantic import BaseModel

from devsim_tui.config import schema as S

PACKAGE = pathlib.Path(S.__file__).resolve().parent.parent
SCHEMA = pathlib.Path(S.__file__).resolve()
MARKS = ("informational", "pending")


def _models() -> list[type[BaseModel]]:
    """Every model reachable from Profile (through nested fields, lists, unions)."""
    seen: list[type[BaseModel]] = []

    def visit(tp) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in seen:
                return
            seen.append(tp)
            for f in tp.model_fields.values():
                visit(f.annotation)
            return
        for arg in getattr(tp, "__args__", ()) or ():
            visit(arg)

    visit(S.Profile)
    return seen


def _property_source() -> str:
    """Source of the schema's @property bodies (accessors the rest of the package reads)."""
    text = SCHEMA.read_text()
    tree = ast.parse(text)
    parts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list):
            parts.append(ast.get_source_segment(text, node) or "")
    return "\n".join(parts)


def _other_source() -> str:
    return "\n".join(p.read_text() for p in sorted(PACKAGE.rglob("*.py"))
                     if p.resolve() != SCHEMA)


def _read(name: str, text: str) -> bool:
    return re.search(r"[.\"']" + re.escape(name) + r"\b", text) is not None


def _mark(field) -> tuple[str, str] | None:
    extra = field.json_schema_extra
    if not isinstance(extra, dict):
        return None
    for key in MARKS:
        if key in extra:
            return key, extra[key]
    return None


def test_every_schema_field_is_read_or_marked_with_a_reason():
    others = _other_source() + "\n" + _property_source()
    unread, bad_marks = [], []
    for model in _models():
        for name, field in model.model_fields.items():
            mark = _mark(field)
            if mark is not None:
                if not isinstance(mark[1], str) or len(mark[1].strip()) < 10:
                    bad_marks.append(f"{model.__name__}.{name}")
                continue
            keys = {name} | ({field.alias} if field.alias else set())
            if not any(_read(k, others) for k in keys):
                unread.append(f"{model.__name__}.{name}")
    assert not bad_marks, f"marks without a reason: {bad_marks}"
    assert not unread, (
        f"{len(unread)} profile fields are read nowhere outside config/schema.py (give them "
        f"behaviour, or mark them informational(...)/pending(...) with a reason): {unread}")


def test_the_check_sees_an_unread_field():
    """The detector itself: a name nothing reads is caught, a read one is not."""
    others = _other_source()
    assert not _read("zz_never_a_field_name", others)
    assert _read("capacity_rps", others)
    assert _models()[0] is S.Profile and S.BackupSpec in _models()


def test_marked_fields_are_listed_in_the_json_schema():
    """The mark is visible to users of the JSON Schema (editors show it)."""
    marked = [(m.__name__, n, _mark(f)) for m in _models() for n, f in m.model_fields.items()
              if _mark(f) is not None]
    assert marked, "no field is marked: the mechanism is unused"
    for model_name, name, (key, reason) in marked:
        model = getattr(S, model_name)
        prop = model.model_fields[name].alias or name
        assert model.model_json_schema()["properties"][prop][key] == reason
