"""Profiles: the built-ins encode the seed's tables, `extends` layers files, and every mistake a
user can make in a profile file is reported by the real CLI as `FILE:LINE: field.path: message`
with exit status 2 and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from devsim_tui.config import paths
from devsim_tui.config.loader import (
    builtin_profiles_dir,
    dump_profile,
    list_builtin,
    load_profile,
    profile_json_schema,
    resolve_profile_source,
)
from devsim_tui.config.schema import Profile
from devsim_tui.config.yamlsrc import Locator, deep_merge, load_yaml, validate
from devsim_tui.errors import ConfigError, UserError

REPO = Path(__file__).resolve().parent.parent


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devsim_tui", "profiles", *args],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )


def problems_of(excinfo: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return excinfo.value.problems


# --------------------------------------------------------------------------- the built-ins


def test_builtins_are_listed_from_the_checkout():
    assert list_builtin() == ["development", "experimental", "production"]
    assert builtin_profiles_dir() == REPO / "profiles"


def test_installed_data_dir_wins_over_the_checkout(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "devsim_tui"
    (package / "_data" / "profiles").mkdir(parents=True)
    (package / "_data" / "profiles" / "production.yaml").write_text("name: production\n")
    monkeypatch.setattr(paths, "_PACKAGE_DIR", package)
    assert builtin_profiles_dir() == package / "_data" / "profiles"
    assert list_builtin() == ["production"]


def test_builtin_names_are_their_environments():
    """The control room labels its first frame from the name alone (the profile is loaded
    behind it), so each built-in's name must be its environment's."""
    for name in list_builtin():
        p = load_profile(name)
        assert (p.name, p.environment) == (name, name)
        assert paths.is_builtin_profile(name)
    assert not paths.is_builtin_profile("profiles/production.yaml")
    assert not paths.is_builtin_profile("nonesuch")


def test_production_encodes_the_seed():
    p = load_profile("production")
    assert (p.name, p.environment) == ("production", "production")
    assert [port.port for port in p.app.ports] == [8080]
    assert p.scaling.mode == "horizontal-autoscaling"
    assert (p.database.topology, p.database.backup.mode) == ("primary-replica", "daily")
    assert p.database.engine == "PostgreSQL" and p.database.version == "14"
    assert not p.cache.enabled
    assert p.monitoring.alert_channel == "email"
    assert {t.name for t in p.monitoring.tools} >= {"Prometheus", "Grafana"}
    assert (p.deployment.method, p.deployment.rollback) == ("rolling-update", "auto")
    assert p.security.tls and not p.security.debug_endpoints
    assert p.security.credentials == "vault"


def test_development_encodes_the_seed():
    p = load_profile("development")
    assert [port.port for port in p.app.ports] == [3000, 9229]
    assert p.app.ports[1].protocol == "inspector"
    assert p.scaling.mode == "manual"
    assert (p.database.topology, p.database.nodes) == ("single", 1)
    assert p.database.backup.mode == "manual" and p.database.seed_test_data
    assert not p.cache.enabled
    assert p.monitoring.alert_channel == "console"
    assert (p.deployment.method, p.deployment.rollback) == ("compose-hot-reload", "manual")
    assert p.deployment.hot_reload is not None
    assert not p.security.tls and p.security.debug_endpoints
    assert p.security.credentials == "plaintext"


def test_experimental_encodes_the_seed():
    p = load_profile("experimental")
    assert [port.port for port in p.app.ports] == [9000, 9001, 9002]
    assert p.scaling.mode == "predictive"
    assert (p.database.topology, p.database.nodes) == ("multi-master", 5)
    assert p.database.backup.mode == "continuous" and p.database.geo_redundancy
    assert p.cache.enabled and "Redis" in p.cache.technology
    assert p.monitoring.alert_channel == "ai-analysis"
    assert {t.name for t in p.monitoring.tools} >= {"Prometheus", "Thanos"}
    assert (p.deployment.method, p.deployment.rollback) == ("canary", "auto")
    assert p.deployment.chaos_engineering and p.deployment.custom_crds
    assert p.security.tls and p.security.zero_trust
    assert p.security.ai_auditing and p.security.anomaly_detection


def test_only_experimental_has_a_cache():
    assert [name for name in list_builtin() if load_profile(name).cache.enabled] == [
        "experimental"
    ]


@pytest.mark.parametrize("name", ["production", "development", "experimental"])
def test_dump_round_trips_in_schema_order(tmp_path, name):
    profile = load_profile(name)
    text = dump_profile(profile)
    data = yaml.safe_load(text)
    assert list(data) == [f for f in Profile.model_fields if f != "extends"]
    again = load_profile(write(tmp_path, "dumped.yaml", text))
    assert again == profile


# --------------------------------------------------------------------------- sources and layering


def test_resolve_names_and_paths(tmp_path):
    assert resolve_profile_source("production") == REPO / "profiles" / "production.yaml"
    assert resolve_profile_source("mine.yml") == Path("mine.yml")
    assert resolve_profile_source("sub/mine", relative_to=tmp_path) == tmp_path / "sub" / "mine"
    with pytest.raises(UserError, match="did you mean 'development'.*experimental, production"):
        resolve_profile_source("developmnt")


def test_extends_overrides_one_nested_field_and_inherits_the_rest(tmp_path):
    path = write(tmp_path, "bigger.yaml", """
        extends: production
        scaling:
          maxReplicas: 80
    """)
    base = load_profile("production")
    mine = load_profile(path)
    assert mine.scaling.maxReplicas == 80
    assert mine.scaling.minReplicas == base.scaling.minReplicas
    assert (mine.name, mine.extends) == ("production-custom", "production")
    strip = {"name": True, "extends": True, "scaling": {"maxReplicas"}}
    assert mine.model_dump(exclude=strip) == base.model_dump(exclude=strip)


def test_extends_chain_by_relative_path_replaces_lists(tmp_path):
    write(tmp_path, "team.yaml", """
        extends: development
        name: team
        app:
          ports:
            - {name: http, port: 4000}
    """)
    (tmp_path / "me").mkdir()
    path = write(tmp_path / "me", "me.yaml", """
        extends: ../team.yaml
        traffic:
          baseline_rps: 30
    """)
    p = load_profile(path)
    assert [port.port for port in p.app.ports] == [4000]  # the list is replaced, not appended
    assert p.app.technology == "Node.js + Express"  # siblings of the list are kept
    assert p.traffic.baseline_rps == 30 and p.traffic.peak_hour == 15
    assert p.environment == "development"
    assert (p.name, p.extends) == ("team-custom", "../team.yaml")


def test_extends_cycle_is_detected(tmp_path):
    a = write(tmp_path, "a.yaml", "extends: b.yaml\n")
    b = write(tmp_path, "b.yaml", "name: b\nextends: ./a.yaml\n")
    with pytest.raises(ConfigError) as excinfo:
        load_profile(a)
    assert problems_of(excinfo) == [f"{b}:2: extends: cycle: {a} -> {b} -> {a}"]


def test_extending_itself_is_a_cycle(tmp_path):
    a = write(tmp_path, "a.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match=r"a\.yaml:1: extends: cycle:"):
        load_profile(a)


def test_errors_point_into_the_file_the_value_came_from(tmp_path):
    write(tmp_path, "base.yaml", """
        extends: production
        name: base
        traffic:
          baseline_rps: -5
    """)
    path = write(tmp_path, "mine.yaml", """
        extends: base.yaml
        name: mine
        slo:
          availability: 2
    """)
    with pytest.raises(ConfigError) as excinfo:
        load_profile(path)
    assert problems_of(excinfo) == [
        f"{tmp_path / 'base.yaml'}:4: traffic.baseline_rps: must be > 0, got -5",
        f"{path}:4: slo.availability: must be < 1, got 2",
    ]


@pytest.mark.parametrize("name", ["production", "development", "experimental"])
def test_a_builtin_read_the_fast_way_equals_the_careful_way(name):
    """Built-ins are read with the C loader and no line bookkeeping (`_load_shipped`); what it
    gives must be exactly what the line-numbered reader and its validation give, with and
    without overrides, and a layer that does not validate falls back to the careful read."""
    from devsim_tui.config.loader import _expand_dotted, _load_layers, _load_shipped

    source = resolve_profile_source(name)
    data, locator = _load_layers(source, [])
    careful = validate(Profile, data, locator)
    assert _load_shipped(source, None) == careful == load_profile(name)
    assert data == yaml.load(source.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    over = {"scaling.minReplicas": 9, "scaling.maxReplicas": 9, "scaling.initialReplicas": 9}
    careful = validate(Profile, deep_merge(data, _expand_dotted(over)), locator)
    assert _load_shipped(source, over) == careful == load_profile(name, over)
    assert careful.scaling.minReplicas == 9
    assert _load_shipped(source, {"simulation.seed": -1}) is None


def test_overrides_are_a_last_layer(tmp_path):
    p = load_profile("production", {"simulation.seed": 7, "scaling": {"maxReplicas": 20}})
    assert (p.simulation.seed, p.scaling.maxReplicas, p.scaling.minReplicas) == (7, 20, 4)
    with pytest.raises(ConfigError) as excinfo:
        load_profile("production", {"simulation": {"seed": -1}})
    assert problems_of(excinfo) == ["<overrides>: simulation.seed: must be >= 0, got -1"]


def test_deep_merge_merges_mappings_and_replaces_the_rest():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


# --------------------------------------------------------------------------- the generic reader


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    weight: int = Field(1, ge=1)


class Wrapper(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Item] | None = None
    size: int | str = 1


def test_generic_validate_walks_optional_lists_and_unions(tmp_path):
    path = write(tmp_path, "w.yaml", """
        items:
          - label: a
            wieght: 2
          - label: b
            weight: 0
        size: [1]
    """)
    data, locator = load_yaml(path)
    with pytest.raises(ConfigError) as excinfo:
        validate(Wrapper, data, locator, path)
    assert problems_of(excinfo) == [
        f"{path}:3: items.0.wieght: unknown field, did you mean 'weight'?",
        f"{path}:5: items.1.weight: must be >= 1, got 0",
        f"{path}:6: size: expected an integer or a string, got a list",
    ]


def test_locator_knows_keys_items_and_merge_keys(tmp_path):
    path = write(tmp_path, "m.yaml", """
        base: &base
          x: 1
        top:
          <<: *base
          y:
            - 5
            - {z: 6}
    """)
    data, locator = load_yaml(path)
    assert data["top"] == {"x": 1, "y": [5, {"z": 6}]}
    assert locator.find(("top", "y", 1, "z")).line == 7
    assert locator.find(("top", "x")).line == 2  # a merged key is where it was written
    assert locator.locate(("top", "y", 1, "missing")).line == 7
    layered = Locator.from_data({"top": {"x": 2}}, "<flags>").layered(locator)
    assert layered.find(("top", "x")).file == "<flags>"
    assert layered.find(("top", "y")).line == 5


# --------------------------------------------------------------------------- the CLI, every error

ERROR_CASES = {
    "unknown-top-level-key": (
        """
        extends: production
        scalling:
          maxReplicas: 3
        """,
        "{path}:2: scalling: unknown field, did you mean 'scaling'?",
    ),
    "unknown-nested-key": (
        """
        extends: production
        database:
          backup:
            retention_dayz: 3
        """,
        "{path}:4: database.backup.retention_dayz: unknown field, did you mean 'retention_days'?",
    ),
    "unknown-key-in-list-item": (
        """
        extends: production
        app:
          ports:
            - {name: http, port: 80, protocl: http}
        """,
        "{path}:4: app.ports.0.protocl: unknown field, did you mean 'protocol'?",
    ),
    "wrong-type": (
        """
        extends: production
        app:
          ports:
            - name: http
              port: abc
        """,
        "{path}:5: app.ports.0.port: expected an integer, got 'abc'",
    ),
    "out-of-range": (
        """
        extends: production
        app:
          ports:
            - {name: http, port: 70000}
        """,
        "{path}:4: app.ports.0.port: must be <= 65535, got 70000",
    ),
    "bad-choice": (
        """
        extends: production
        monitoring:
          alert_channel: emial
        """,
        "{path}:3: monitoring.alert_channel: must be one of 'email', 'console', 'ai-analysis', "
        "got 'emial'; did you mean 'email'?",
    ),
    "min-above-max": (
        """
        extends: production
        scaling:
          minReplicas: 50
          maxReplicas: 10
        """,
        "{path}:2: scaling: minReplicas (50) must not exceed maxReplicas (10)",
    ),
    "missing-top-level-field": (
        """
        # a profile from scratch
        name: scratch
        environment: production
        """,
        "{path}:2: app: required field is missing",
    ),
    "missing-nested-field": (
        """
        extends: production
        app:
          ports:
            - name: web
        """,
        "{path}:4: app.ports.0.port: required field is missing",
    ),
    "yaml-syntax": (
        """
        extends: production
        app: {ports: [1, 2
        scaling: {}
        """,
        "{path}:3: yaml: ",
    ),
    "duplicate-key": (
        """
        extends: production
        name: a
        name: b
        """,
        "{path}:3: name: duplicate key (first given on line 2)",
    ),
    "unknown-extends": (
        """
        name: mine
        extends: prodution
        """,
        "{path}:2: extends: unknown profile 'prodution'; did you mean 'production'?",
    ),
    "missing-extends-file": (
        """
        extends: ./nowhere.yaml
        """,
        "{path}:1: extends: profile file not found: {dir}/nowhere.yaml",
    ),
    "non-mapping": (
        """
        - name: production
        - environment: production
        """,
        "{path}:1: (top level): the document must be a mapping of fields",
    ),
    "empty-file": ("", "{path}:1: (top level): the document is empty"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_cli_reports_each_error_with_file_line_and_field(tmp_path, case):
    text, expected = ERROR_CASES[case]
    path = write(tmp_path, f"{case}.yaml", text)
    result = cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "pydantic.dev" not in result.stderr
    assert expected.format(path=path, dir=tmp_path) in result.stderr
    assert result.stdout == ""


def test_cli_file_not_found(tmp_path):
    missing = tmp_path / "nope.yaml"
    result = cli("validate", str(missing))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{missing}: file not found" in result.stderr


def test_cli_validate_checks_every_file_before_failing(tmp_path):
    good = write(tmp_path, "good.yaml", "extends: experimental\nname: lab\n")
    bad1 = write(tmp_path, "bad1.yaml", "extends: production\nscaling: {maxReplicas: 0}\n")
    bad2 = write(tmp_path, "bad2.yaml", "extends: production\nslo: {p99_latency_ms: fast}\n")
    result = cli("validate", str(bad1), str(good), str(bad2))
    assert result.returncode == 2
    assert result.stdout == f"{good}: OK (profile lab, environment experimental)\n"
    assert f"{bad1}:2: scaling.maxReplicas: must be >= 1, got 0" in result.stderr
    assert f"{bad2}:2: slo.p99_latency_ms: expected a number, got 'fast'" in result.stderr


def test_cli_validate_builtins_ok():
    result = cli("validate", *(str(REPO / "profiles" / f"{n}.yaml") for n in list_builtin()))
    assert result.returncode == 0, result.stderr
    assert "profiles/production.yaml: OK (profile production, environment production)" in (
        result.stdout
    )
    assert result.stdout.count(": OK (") == 3


def test_cli_list_shows_the_three_with_environments():
    result = cli("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["development", "development"],
        ["experimental", "experimental"],
        ["production", "production"],
    ]
    assert "Standard production" in result.stdout


def test_cli_show_prints_resolved_yaml(tmp_path):
    path = write(tmp_path, "mine.yaml", "extends: production\nname: mine\n")
    result = cli("show", str(path))
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert data["name"] == "mine" and data["app"]["ports"][0]["port"] == 8080
    assert "extends" not in data


def test_cli_show_unknown_name():
    result = cli("show", "prod")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "unknown profile 'prod'" in result.stderr and "production" in result.stderr


def test_cli_schema_is_json_schema_for_editors():
    result = cli("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "devsim-tui profile"
    assert "scaling" in schema["properties"]
    assert schema == profile_json_schema()
