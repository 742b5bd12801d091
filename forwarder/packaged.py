"""The configs shipped with sf-forwarder (demo.yaml, example.yaml, the default rules): the repository's
config/ folder, installed as the data package ``forwarder.bundled`` (pyproject.toml), found the same way
from a wheel and from a checkout."""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

BUNDLE = "forwarder.bundled"
CHECKOUT = Path(__file__).resolve().parent.parent / "config"


def packaged_path(*parts: str) -> Path:
    """A shipped file or folder, e.g. ``packaged_path("rules")``, as a path on the filesystem."""
    return _root().joinpath(*parts)


@functools.cache
def _root() -> Path:
    try:
        root = importlib.resources.files(BUNDLE)
    except ModuleNotFoundError:
        # The checkout on sys.path without the project installed (so without the package-dir mapping)
        return CHECKOUT
    if not isinstance(root, Path):
        # Rules and configs are read as files and folders; pip and uv always unpack wheels, only a zip
        # import (zipapp, zipped egg) lands here.
        raise RuntimeError(f"sf-forwarder's shipped configs are not on the filesystem: {root}")
    return root
