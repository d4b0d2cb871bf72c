"""How config.yaml is written: one function for dispatch and the backends alike.

Pure (no models), so the backends, which may not import what reads the database, use the very
same bytes dispatch would: JSON, which is YAML too (Molecule's runtime reads it with a YAML
parser, the built-in agent with the standard library's JSON).
"""

from __future__ import annotations

import json
from typing import Any


def render(content: dict[str, Any]) -> bytes:
    """config.yaml's bytes: JSON, stable key order, one key per line."""
    return (json.dumps(content, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode()
