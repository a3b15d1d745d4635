"""Write throwaway plugin distributions (a dist-info with entry points) for registry tests.

importlib.metadata finds a ``*.dist-info`` folder on sys.path exactly as it finds an installed
package, so these exercise the real discovery path without pip or a network.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_distribution(target: Path, name: str, modules: dict[str, str], version: str = "1.0") -> Path:
    """Create ``name`` with one entry point per module (entry point name = module name)."""
    target.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (target / f"{module}.py").write_text(textwrap.dedent(source))
    info = target / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[wav2pix_zoo]"] + [f"{m} = {m}" for m in modules]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return target


GOOD_PLUGIN = '''
    from zoo import hookimpl

    def build_thing(width: int = 4, depth: int = 2):
        """A factory that records what it was given."""
        return {"width": width, "depth": depth}

    @hookimpl
    def register_encoders(register):
        register("{name}", build_thing, description="a test encoder")
'''

BROKEN_PLUGIN = '''
    raise RuntimeError("this plugin is broken on purpose")
'''

EDGE_PLUGIN = '''
    from zoo import hookimpl

    def kaput(width: int = 1):
        """A factory with a bug: it raises something other than ValueError."""
        raise RuntimeError("kaput inside the factory")

    @hookimpl
    def register_encoders(register):
        register("c_factory", dict, description="a builtin factory inspect cannot read")
        register("kaput_enc", kaput, description="a factory that crashes")
'''

EXITING_PLUGIN = '''
    import sys

    sys.exit("this plugin calls sys.exit while it imports")
'''
