"""The VM core never names a hypervisor family: what differs by family is asked of the
driver's traits (issue 13). Checked over the source: no string literal (docstrings aside,
they may give examples) of the core modules contains a family's name."""

from __future__ import annotations

import ast
import pathlib
import re

import nodemgr
from nodemgr.plugins import registry

ROOT = pathlib.Path(nodemgr.__file__).parent

#: The VM core: everything between a command's arguments and a driver.
CORE = ["vm", "cli/vmcmds.py", "cli/console.py", "vmspec.py", "dispatch.py",
        "plugins/base.py"]

#: The one allowed literal: xCAT's default hypervisor.type, declared once in the interface.
ALLOWED = {("plugins/base.py", "DEFAULT_VIRT_TYPE")}

FAMILIES = set(registry.BUILTIN) | {"vbox", "virtualbox", "rhev", "ovirt", "qemu"}
PATTERN = re.compile(r"\b(" + "|".join(sorted(FAMILIES)) + r")\b", re.I)


def _files():
    for entry in CORE:
        path = ROOT / entry
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _literals(tree, rel: str):
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    allowed = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
               for t in n.targets if isinstance(t, ast.Name)
               and (rel, t.id) in ALLOWED}
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs \
                and id(n) not in allowed:
            yield n


def test_the_vm_core_names_no_family():
    found = []
    for path in _files():
        rel = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text())
        for n in _literals(tree, rel):
            for m in PATTERN.findall(n.value):
                found.append(f"{rel}:{n.lineno}: {m!r} in {n.value[:60]!r}")
    assert not found, "\n".join(found)


def test_the_check_sees_a_family_name(tmp_path):
    """The scan itself works: a literal naming a family is found, a docstring is not."""
    tree = ast.parse('"""libvirt in a docstring"""\nif d == "rhevm":\n    pass\n'
                     'DEFAULT_VIRT_TYPE = "kvm"\n')
    assert sorted(n.value for n in _literals(tree, "x.py") if PATTERN.search(n.value)) == \
        ["kvm", "rhevm"]
    assert [n.value for n in _literals(tree, "plugins/base.py")
            if PATTERN.search(n.value)] == ["rhevm"]
