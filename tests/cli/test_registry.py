import os
import tomllib
from pathlib import Path

from nodemgr.cli.registry import COMMANDS

ROOT = Path(__file__).resolve().parents[2]


def test_registry_matches_console_scripts():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == COMMANDS


def test_every_command_has_a_bin_link_to_the_launcher():
    for name in COMMANDS:
        path = ROOT / "bin" / name
        assert path.is_symlink() and os.readlink(path) == "nodemgr", name
