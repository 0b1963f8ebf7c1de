"""The protocol package imports without torch (as inside Blender's Python)."""

from __future__ import annotations

import subprocess
import sys

CODE = (
    "import sys; sys.modules['torch'] = None; sys.modules['bpy'] = None; "
    "import easytune_protocol, easytune_protocol.client, easytune_protocol.codec, "
    "easytune_protocol.doc; "
    "assert 'easytune_engine' not in sys.modules; print(easytune_protocol.PROTOCOL_VERSION)"
)


def test_imports_without_torch() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.1"


def test_version_is_reexported() -> None:
    from easytune_protocol import PROTOCOL_VERSION
    from easytune_protocol.version import PROTOCOL_VERSION as V

    assert PROTOCOL_VERSION == V
