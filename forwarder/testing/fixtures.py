"""Where the real Salesforce sample data lives: ``$SF_FIXTURES``, else ``shared/fixtures/salesforce`` beside
the repository (the layout of a development checkout and of CI)."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_FIXTURES = Path(
    os.environ.get("SF_FIXTURES", Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "salesforce")
)
