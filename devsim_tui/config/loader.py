"""Finding, layering and loading profiles: the one way a `Profile` is made from files.

A profile is named either by a built-in name (`production`, `development`, `experimental`,
shipped in the package) or by a path to a `.yaml`/`.yml` file. A file may start from another
profile with `extends:` and change only what differs; see `load_profile` for the rules. Problems
are reported by `devsim_tui.config.yamlsrc` as `FILE:LINE: field.path: message`, always naming
the file and line the offending value came from.

This module never imports the UI.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devsim_tui.config.schema import Profile
from devsim_tui.config.paths import (  # noqa: F401  (re-exported: the loader's public API)
    _looks_like_path,
    builtin_data_dir,
    builtin_profiles_dir,
    is_builtin_profile,
    list_builtin,
)
from devsim_tui.errors import ConfigError, UserError

if TYPE_CHECKING:
    from devsim_tui.config.yamlsrc import Locator

#: The source name under which problems in `load_profile(..., overrides=...)` are reported.
OVERRIDES_SOURCE = "<overrides>"


def resolve_profile_source(
    name_or_path: str | os.PathLike[str], *, relative_to: Path | None = None
) -> Path:
    """The file a profile reference names: a built-in's name, or a path to a YAML file.

    Anything ending in `.yaml`/`.yml` or containing a path separator is a path (relative ones
    are taken from `relative_to` when given, as `extends:` does); whether it exists is left to
    the reader, which reports it. Anything else must be a built-in name, else UserError lists
    the built-ins with a did-you-mean.
    """
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, os.PathLike) or _looks_like_path(text):
        path = Path(text).expanduser()
        if relative_to is not None and not path.is_absolute():
            path = relative_to / path
        return path
    names = list_builtin()
    if text in names:
        return builtin_profiles_dir() / f"{text}.yaml"
    message = f"unknown profile '{text}'"
    close = difflib.get_close_matches(text, names, n=1, cutoff=0.6)
    if close:
        message += f"; did you mean '{close[0]}'?"
    raise UserError(
        f"{message} (built-in profiles: {', '.join(names)}; or give a path to a .yaml file)"
    )


def load_profile(
    name_or_path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> Profile:
    """Load, layer and validate a profile; raise UserError/ConfigError with every problem.

    Layering (`extends: production`, another built-in, or a path relative to the file):
      * the file is deep-merged over its base: mappings merge key by key, lists and scalars are
        replaced whole (so a file can drop ports or policies, not only add them);
      * a base may itself extend another (chains), a cycle is an error at the `extends:` line;
      * `extends` of the result names the immediate base;
      * the result's `name` is the file's own `name:`; a file without one is called
        `<base name>-custom` (once, however long the chain), so it never poses as the built-in;
      * only the final merged profile is validated, and each problem names the file and line
        its value came from, so mistakes in the user's file point into the user's file.

    `overrides` (e.g. from command-line flags) are merged over everything as a last layer, either
    nested (`{"simulation": {"seed": 7}}`) or dotted (`{"simulation.seed": 7}`); their problems
    are reported under the source name `<overrides>`.
    """
    source = resolve_profile_source(name_or_path)
    if is_builtin_profile(name_or_path):
        profile = _load_shipped(source, overrides)
        if profile is not None:
            return profile
    from devsim_tui.config.yamlsrc import Locator, deep_merge, validate

    data, locator = _load_layers(source, [])
    if overrides:
        layer = _expand_dotted(overrides)
        data = deep_merge(data, layer)
        locator = Locator.from_data(layer, OVERRIDES_SOURCE).layered(locator)
    profile = validate(Profile, data, locator)
    _check_placement(profile, locator)
    if profile.traffic.trace is not None:
        profile = _with_trace(profile, locator)
    return profile


def _check_placement(profile: Profile, locator: Locator) -> None:
    """Regions must map onto the declared clouds consistently (config/clouds.py); the error
    names the file and line of the field at fault."""
    from devsim_tui.config.clouds import PlacementError, resolve, unknown_keys
    from devsim_tui.config.yamlsrc import format_path

    try:
        resolve(profile)
    except PlacementError as exc:
        where = locator.locate(exc.path)
        raise ConfigError([f"{where.prefix()}: {format_path(exc.path)}: {exc.message}"]) \
            from None
    problems = []
    for path, message in unknown_keys(profile):
        where = locator.locate(path)
        # What it misses: the regions for a region's settings, the clouds for a price.
        other = ("app", "regions") if path[2] == "regions" else ("deployment", "clouds")
        if where.file == locator.locate(other).file:
            problems.append(f"{where.prefix()}: {format_path(path)}: {message}")
    if problems:
        raise ConfigError(problems)


def _load_shipped(source: Path, overrides: Mapping[str, Any] | None) -> Profile | None:
    """A built-in profile (held valid by the test-suite) read with PyYAML's C loader: the same
    SafeLoader values, without the line bookkeeping the error messages need (a fifth of the
    control room's profile load); without overrides, from the per-user cache of validated
    built-ins when an earlier start stored it (config/profile_cache.py). None when it does not
    validate, or when it names a trace or extends anything: `load_profile` then reads it the
    careful way, which says where."""
    from devsim_tui.config import profile_cache

    try:
        raw = source.read_bytes()
    except OSError:
        return None  # the careful read reports it
    if not overrides:
        cached = profile_cache.load(raw)  # validated by an earlier start (profile_cache.py)
        if cached is not None:
            return cached
    import yaml  # (a cache hit needs neither PyYAML nor the validators)

    from devsim_tui.config.yamlsrc import deep_merge

    try:
        data = yaml.load(raw.decode("utf-8"), Loader=yaml.CSafeLoader)
        if not isinstance(data, dict) or "extends" in data:
            return None
        if overrides:
            data = deep_merge(data, _expand_dotted(overrides))
        profile = Profile.model_validate(data)
        from devsim_tui.config.clouds import resolve

        resolve(profile)  # regions onto clouds: a PlacementError is reported by the careful read
    except Exception:  # noqa: BLE001 - the careful read reports it
        return None
    if profile.traffic.trace is not None:
        return None
    if not overrides:
        profile_cache.store(raw, profile)
    return profile


def _with_trace(profile: Profile, locator: Locator) -> Profile:
    """The profile with `traffic.trace` made absolute and the trace checked now, so that a
    missing or broken file is a FILE:LINE error at load time rather than when the engine starts.
    A relative path is taken from the directory of the file that wrote it (the working
    directory for overrides); a bare name may also be a built-in trace (e.g. nyc_taxi.csv)."""
    from devsim_tui.config.traces import builtin_traces, load_trace, resolve_trace

    where = locator.locate(("traffic", "trace"))
    base = Path.cwd() if where.file == OVERRIDES_SOURCE else Path(where.file).parent
    ref = profile.traffic.trace or ""
    path = resolve_trace(ref, base)
    at = f"{where.prefix()}: traffic.trace"
    if not path.is_file():
        shipped = ", ".join(builtin_traces()) or "none"
        raise ConfigError([f"{at}: trace file not found: {path} (built-in traces: {shipped})"])
    try:
        load_trace(path)
    except UserError as exc:
        raise ConfigError([f"{exc} (the trace of {at})"]) from None
    traffic = profile.traffic.model_copy(update={"trace": str(path.resolve())})
    return profile.model_copy(update={"traffic": traffic})


def _load_layers(source: Path, chain: list[tuple[Path, str]]) -> tuple[dict[str, Any], Locator]:
    """One file merged over its `extends:` chain; `chain` holds the files that extend it."""
    from devsim_tui.config.yamlsrc import deep_merge, load_yaml, require_mapping

    data, locator = load_yaml(source)
    require_mapping(data, locator)
    base_ref = data.get("extends")
    if base_ref is None:
        return data, locator

    at = f"{locator.locate(('extends',)).prefix()}: extends"
    if not isinstance(base_ref, str) or not base_ref.strip():
        raise ConfigError(
            [f"{at}: expected the name of a built-in profile or a path to a .yaml file"]
        )
    try:
        base = resolve_profile_source(base_ref, relative_to=source.parent)
    except UserError as exc:
        raise ConfigError([f"{at}: {exc}"]) from None
    if not base.is_file():
        what = "not a regular file" if base.exists() else "profile file not found"
        raise ConfigError([f"{at}: {what}: {base}"])
    here = [*chain, (source.resolve(), os.fspath(source))]
    if any(base.resolve() == seen for seen, _ in here):
        cycle = " -> ".join([shown for _, shown in here] + [os.fspath(base)])
        raise ConfigError([f"{at}: cycle: {cycle}"])

    base_data, base_locator = _load_layers(base, here)
    merged = deep_merge(base_data, data)
    base_name = base_data.get("name")
    if "name" not in data and isinstance(base_name, str):
        merged["name"] = base_name if base_name.endswith("-custom") else f"{base_name}-custom"
    return merged, locator.layered(base_locator)


def _expand_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    from devsim_tui.config.yamlsrc import deep_merge

    expanded: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            value = _expand_dotted(value)
        parts = key.split(".") if isinstance(key, str) else [key]
        for part in reversed(parts[1:]):
            value = {part: value}
        expanded = deep_merge(expanded, {parts[0]: value})
    return expanded


def profile_json_schema() -> dict[str, Any]:
    """JSON Schema of a profile file, for editors (e.g. yaml-language-server) to complete and check.

    Cross-field rules (minReplicas <= maxReplicas, Patroni timing...) are only in `validate`.
    """
    schema = Profile.model_json_schema()
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "devsim-tui profile",
        **schema,
    }


def dump_profile(profile: Profile) -> str:
    """The fully resolved profile as YAML, every field shown, keys in schema order.

    `extends` is left out: its values are already merged in, so the text loads on its own as the
    same profile from anywhere (a relative `extends:` would not).
    """
    import yaml

    data = profile.model_dump(mode="json", exclude={"extends"})
    header = f"# Profile '{profile.name}' ({profile.environment}), fully resolved.\n"
    if profile.extends:
        header += f"# Built on '{profile.extends}', whose values are merged in below.\n"
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return header + body
