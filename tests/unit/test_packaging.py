"""The wheel's package list stays complete: pyproject.toml lists the packages by hand (packages.find cannot
add forwarder.bundled, which is config/), so a new subpackage or shipped config missing there fails here;
and ``rules: {builtin: true}`` finds the shipped rules."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from forwarder.alerts.rules import load_rules
from forwarder.config import RulesConfig
from forwarder.packaged import packaged_path

ROOT = Path(__file__).resolve().parents[2]


def _setuptools() -> dict[str, Any]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"])


def _source_packages() -> set[str]:
    """Every folder of forwarder/ and sinks/ holding Python modules, as a dotted name."""
    found = set()
    for top in ("forwarder", "sinks"):
        for module in (ROOT / top).rglob("*.py"):
            if "__pycache__" not in module.parts:
                found.add(".".join(module.parent.relative_to(ROOT).parts))
    return found


def test_pyproject_lists_every_source_package() -> None:
    listed = set(_setuptools()["packages"])
    missing = _source_packages() - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    assert listed - _source_packages() == {"forwarder.bundled"}, "listed packages that no longer exist"


def test_config_folder_is_the_bundled_package() -> None:
    assert _setuptools()["package-dir"] == {"forwarder.bundled": "config"}
    assert (ROOT / "config" / "__init__.py").is_file()  # a regular package: the editable finder maps it


def test_package_data_covers_every_shipped_config() -> None:
    patterns = _setuptools()["package-data"]["forwarder.bundled"]
    config = ROOT / "config"
    files = [p.relative_to(config).as_posix() for p in config.rglob("*") if p.is_file()]
    shipped = [f for f in files if f != "__init__.py" and "__pycache__" not in f]
    assert {"demo.yaml", "example.yaml"} <= set(shipped)
    carried = {p.relative_to(config).as_posix() for pattern in patterns for p in config.glob(pattern)}
    unmatched = sorted(set(shipped) - carried)
    assert not unmatched, f"config/ files the wheel would not carry (package-data): {unmatched}"


def test_checkout_finds_the_configs_in_config_folder() -> None:
    assert packaged_path("demo.yaml") == ROOT / "config" / "demo.yaml"
    assert packaged_path("rules").is_dir()


def test_builtin_rules_load_first_without_a_path() -> None:
    rules = RulesConfig.model_validate({"builtin": True, "paths": ["/etc/sf-forwarder/rules"]})
    assert rules.paths == [packaged_path("rules"), Path("/etc/sf-forwarder/rules")]
    loaded = {rule.id for rule in load_rules(rules.paths[:1])}
    assert {"sf-brute-force", "sf-session-hijacking"} <= loaded


def test_builtin_rules_are_added_once() -> None:
    shipped = str(packaged_path("rules"))
    assert RulesConfig.model_validate({"builtin": True, "paths": [shipped]}).paths == [Path(shipped)]


def test_no_rules_unless_asked() -> None:
    assert RulesConfig().paths == []
    assert RulesConfig.model_validate({"builtin": "false", "paths": []}).paths == []
