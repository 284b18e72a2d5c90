"""The per-user cache of validated built-in profiles (devsim_tui/config/profile_cache.py): what a
later start reads back is the profile a fresh validation gives, and anything doubtful is
validated again instead of trusted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devsim_tui.config import profile_cache
from devsim_tui.config.loader import builtin_profiles_dir, load_profile
from devsim_tui.config.schema import Profile
from devsim_tui.config.yamlsrc import load_yaml, validate


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("DEVSIM_TUI_NO_CACHE", raising=False)
    return tmp_path / "devsim-tui" / "profiles"


def careful(name: str) -> Profile:
    """The built-in read the careful way (line-tracking YAML, full validation), no cache."""
    data, locator = load_yaml(builtin_profiles_dir() / f"{name}.yaml")
    return validate(Profile, data, locator)


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.pickle")) if folder.is_dir() else []


@pytest.mark.parametrize("name", ["production", "development", "experimental"])
def test_a_cached_built_in_is_the_validated_profile(cache: Path, name: str) -> None:
    first = load_profile(name)
    [entry] = entries(cache)
    assert entry.stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o777 == 0o700
    again = load_profile(name)  # read from the entry (the next test shows it is)
    assert again == first == careful(name)
    assert again is not first


def test_the_entry_is_what_a_later_start_reads(cache: Path) -> None:
    import pickle

    load_profile("production")
    [entry] = entries(cache)
    marked = load_profile("production").model_copy(update={"name": "from-the-cache"})
    entry.write_bytes(pickle.dumps(marked))
    os.chmod(entry, 0o600)
    assert load_profile("production").name == "from-the-cache"


def test_other_bytes_or_code_are_another_entry() -> None:
    raw = (builtin_profiles_dir() / "production.yaml").read_bytes()
    assert profile_cache.entry_key(raw) == profile_cache.entry_key(raw)
    assert profile_cache.entry_key(raw + b"\n# edited\n") != profile_cache.entry_key(raw)
    assert profile_cache.entry_key(raw, extra=(__file__,)) != profile_cache.entry_key(raw)


def test_the_key_covers_the_code_that_validates() -> None:
    import devsim_tui.config.durations
    import devsim_tui.config.numbers
    import devsim_tui.config.schema
    from devsim_tui.sim import metrics, promql, rules

    def names(paths):
        return {Path(p).resolve() for p in paths}

    used = names(profile_cache.sources(Profile))
    for module in (devsim_tui.config.schema, devsim_tui.config.numbers,
                   devsim_tui.config.durations, profile_cache):
        assert Path(module.__file__).resolve() in used
    with_rules = names(profile_cache.sources(rules.RuleFileSpec,
                                             (promql.__file__, metrics.__file__)))
    assert names([rules.__file__, promql.__file__, metrics.__file__]) <= with_rules


@pytest.mark.parametrize("damage", ["truncated", "not-a-profile", "group-writable"])
def test_a_doubtful_entry_is_validated_again_and_replaced(cache: Path, damage: str) -> None:
    import pickle

    load_profile("production")
    [entry] = entries(cache)
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:100])
    elif damage == "not-a-profile":
        entry.write_bytes(pickle.dumps({"name": "production"}))
    else:
        os.chmod(entry, 0o620)
    assert load_profile("production") == careful("production")
    [again] = entries(cache)
    assert again.stat().st_mode & 0o777 == 0o600
    assert profile_cache.load((builtin_profiles_dir() / "production.yaml").read_bytes()) \
        == careful("production")


def test_overrides_and_files_are_never_cached(cache: Path, tmp_path: Path) -> None:
    load_profile("production", overrides={"simulation.seed": 9})
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: production\nname: mine\n")
    load_profile(str(mine))
    assert entries(cache) == []


def test_it_can_be_turned_off(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSIM_TUI_NO_CACHE", "1")
    assert load_profile("production") == careful("production")
    assert entries(cache) == []


def test_an_unwritable_cache_is_no_error(cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("a file where the folder should be")
    assert load_profile("production") == careful("production")


def test_the_built_in_alert_rules_are_kept_too(cache: Path) -> None:
    from devsim_tui.sim import metrics, promql
    from devsim_tui.sim.rules import RuleFileSpec, builtin_rules_path, load_rules

    path = builtin_rules_path("production")
    fresh = load_rules(path, 15.0, shipped=True)
    assert len(entries(cache)) == 1
    checks = (promql.__file__, metrics.__file__)
    assert profile_cache.load(path.read_bytes(), RuleFileSpec, checks) is not None
    assert profile_cache.load(path.read_bytes(), RuleFileSpec) is None  # other code, other key
    assert load_rules(path, 15.0, shipped=True) == fresh == load_rules(path, 15.0)
    # An entry of another model under the same bytes is not taken for it.
    assert profile_cache.load(path.read_bytes()) is None
