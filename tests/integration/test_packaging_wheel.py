"""``pip install sf-forwarder`` then ``sf-forwarder demo`` works: the wheel built from the repository's sdist
(so both carry them) holds the demo config and the default rules, and an install of it (the locked
dependencies, then the wheel, as the Dockerfile does) runs the demo from a directory with no config/ in sight."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a clean clone holds for a build: no local build outputs.
SOURCES = ("pyproject.toml", "uv.lock", "setup.py", "MANIFEST.in", "README.md", "forwarder", "sinks", "config")
LOCAL_BUILDS = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "_native.c")
SHIPPED = [
    "forwarder/bundled/__init__.py",
    "forwarder/bundled/demo.yaml",
    "forwarder/bundled/example.yaml",
    *(f"forwarder/bundled/rules/{p.name}" for p in sorted((ROOT / "config" / "rules").glob("*.yaml"))),
]

pytestmark = pytest.mark.slow


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` sets UV to its own binary
    assert uv, "uv is needed to build and install the wheel (make install provides it)"
    return uv


def _env(**extra: str) -> dict[str, str]:
    """This environment without anything that points Python at the checkout or the project's venv."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    return {k: v for k, v in os.environ.items() if k not in drop} | extra


def _run(args: list[str], cwd: Path, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{args[:3]} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=LOCAL_BUILDS)
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _run([_uv(), "build", "--out-dir", str(dist), str(src)], cwd=src, timeout=240)  # sdist, then the wheel from it
    (built,) = dist.glob("sf_forwarder-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the locked runtime dependencies (from uv's cache) and the wheel."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    sync = [_uv(), "sync", "--frozen", "--no-dev", "--no-install-project", "--python", sys.executable]
    _run(sync, cwd=ROOT, timeout=240, UV_PROJECT_ENVIRONMENT=str(venv), UV_LINK_MODE="copy")
    _run([_uv(), "pip", "install", "--no-deps", "--python", str(venv / "bin" / "python"), str(wheel)], cwd=ROOT, timeout=120)
    return venv


def test_wheel_carries_the_demo_config_and_default_rules(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in SHIPPED if name not in names]
    assert not missing, f"{wheel.name} lacks {missing}"
    assert not any(name.startswith("config/") for name in names)  # no top-level "config" package


def test_installed_wheel_finds_its_configs_inside_the_install(installed: Path, tmp_path: Path) -> None:
    code = "from forwarder.packaged import packaged_path; print(packaged_path('rules'))"
    result = _run([str(installed / "bin" / "python"), "-I", "-c", code], cwd=tmp_path, timeout=60)
    rules = Path(result.stdout.strip())
    assert rules.is_relative_to(installed), rules
    assert rules.parts[-3:] == ("forwarder", "bundled", "rules")
    assert sorted(p.name for p in rules.glob("*.yaml")) == sorted(Path(n).name for n in SHIPPED if "/rules/" in n)


def test_installed_demo_runs_from_another_directory(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    demo = [str(installed / "bin" / "sf-forwarder"), "demo", "--duration", "10", "--output", str(tmp_path / "out")]
    result = _run(demo, cwd=elsewhere, timeout=180)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(count > 0 for count in summary["sources"].values()), summary["sources"]
    assert summary["sinks"]["archive"] == summary["sources"]
    raised = sum(summary["alerts"].values())
    assert raised > 0, summary["alerts"]  # the shipped default rules loaded and fired
    assert summary["paged"] == {"hooks": raised, "slack": raised}
