"""The layering rules of docs/architecture.md, checked on the code's own imports.

Each rule fails with the offending module and import, so a change that breaks a layer is
stopped by the suite, not by a reviewer. Imports are read with :mod:`ast` (every
``import`` and ``from … import`` anywhere in a module, including those inside functions
and under ``TYPE_CHECKING``; the latter are listed apart where a rule allows them).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
DOMAIN_LIBRARIES = ("jurisdictions", "geo")
"""Plain libraries: no web, no database."""
FORBIDDEN_IN_LIBRARIES = ("api", "litestar", "sqlalchemy", "geoalchemy2", "advanced_alchemy",
                          "asyncpg", "psycopg", "redis", "uvicorn")
HIDDEN_LOADERS = ("jurisdictions.catalog", "jurisdictions.sources", "jurisdictions.stations")
"""What loads the shipped Punjab files: ``geo/`` gets boundaries, towns and paths as arguments."""


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, dotted (``api.domain.calls.services``)."""
    target: str
    """What it imports, dotted (``from a.b import c`` gives ``a.b.c`` and ``a.b``)."""
    line: int
    type_only: bool

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(package: str) -> Iterator[Import]:
    """Every import in every module of ``package`` (a top-level folder)."""
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        type_only = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module, alias.name, node.lineno, node.lineno in type_only)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against the importing package
                    base = module.split(".")
                    base = base[:len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
                    source = ".".join([*base, node.module] if node.module else base)
                else:
                    source = node.module or ""
                yield Import(module, source, node.lineno, node.lineno in type_only)
                for alias in node.names:
                    yield Import(module, f"{source}.{alias.name}", node.lineno,
                                 node.lineno in type_only)


def _is(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


@pytest.mark.parametrize("library", DOMAIN_LIBRARIES)
def test_domain_libraries_import_no_web_or_database(library: str) -> None:
    broken = [str(i) for i in imports_of(library)
              if any(_is(i.target, forbidden) for forbidden in FORBIDDEN_IN_LIBRARIES)]
    assert not broken, "plain libraries import no web or database code:\n" + "\n".join(broken)


def test_geo_takes_boundaries_as_arguments_and_loads_nothing_itself() -> None:
    broken = [str(i) for i in imports_of("geo")
              if any(_is(i.target, loader) for loader in HIDDEN_LOADERS)]
    assert not broken, ("geo/ gets boundaries, towns and files from its caller; it imports "
                        "none of jurisdictions' loaders:\n" + "\n".join(broken))


def test_jurisdictions_does_not_import_geo_analytics() -> None:
    """``jurisdictions`` sits below the analytics: it may use geo's lowest layer only."""
    lowest = ("geo.crs", "geo.h3cells", "geo.progress", "geo.distance")
    broken = [str(i) for i in imports_of("jurisdictions")
              if _is(i.target, "geo") and not i.type_only and i.target != "geo"
              and not any(_is(i.target, low) for low in lowest)]
    assert not broken, "jurisdictions/ uses only geo's lowest layer:\n" + "\n".join(broken)


PUBLIC_MODULES = ("schemas", "services")
"""What one package of ``api/domain`` may use of another (``api/domain/__init__.py``)."""
PUBLIC_EXTRA = {"calls": ("wire",)}
"""The calls package also offers the call's one wire form."""


def test_domain_packages_use_only_each_others_public_modules() -> None:
    broken = []
    for i in imports_of("api"):
        here, there = i.module.split("."), i.target.split(".")
        if here[:2] != ["api", "domain"] or there[:2] != ["api", "domain"] or len(there) < 3:
            continue
        if len(here) < 3 or here[2] == there[2]:
            continue  # the domain package itself, or its own modules
        public = PUBLIC_MODULES + PUBLIC_EXTRA.get(there[2], ())
        if len(there) > 3 and there[3] not in public:  # (``from pkg import mod``: seen as pkg.mod)
            broken.append(str(i))
    assert not broken, ("a domain package uses another's schemas and services only "
                        "(api/domain/__init__.py):\n" + "\n".join(broken))


def test_no_domain_package_cycles() -> None:
    """Domain packages depend on each other one way (calls → stations, alerts → calls, …)."""
    edges: dict[str, set[str]] = {}
    for i in imports_of("api"):
        here, there = i.module.split("."), i.target.split(".")
        if (len(here) >= 3 and len(there) >= 3 and here[:2] == there[:2] == ["api", "domain"]
                and here[2] != there[2]):
            edges.setdefault(here[2], set()).add(there[2])

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(p for p in edges if reaches(p, p, set()))
    assert not cycles, f"domain packages in a cycle: {cycles} (edges {edges})"


def test_no_simplenamespace_in_the_application() -> None:
    broken = [str(i) for i in imports_of("api") if i.target == "types.SimpleNamespace"]
    assert not broken, "records are real types, not SimpleNamespace:\n" + "\n".join(broken)


def test_the_persistence_layer_imports_no_domain_package() -> None:
    """``api/db`` is below the domain packages: they hand it what it needs."""
    broken = [str(i) for i in imports_of("api")
              if _is(i.module, "api.db") and _is(i.target, "api.domain")]
    assert not broken, "api/db imports no api/domain code:\n" + "\n".join(broken)


ASSEMBLY = ("api.app", "api.container", "api.deps", "api.cli", "api.watchers")
"""Where the application is put together (the service's process, the CLI's, the watcher
process's): the only api modules outside api/domain that may reach into it."""


def test_shared_modules_sit_below_the_domain_packages() -> None:
    """``api/areas.py``, ``audit.py``, ``streams.py``, ``jobs.py``, … serve the domain
    packages; they import none of them (a domain package hands them what they need)."""
    broken = [str(i) for i in imports_of("api")
              if not _is(i.module, "api.domain") and not _is(i.module, "api.db")
              and not any(_is(i.module, top) for top in ASSEMBLY)
              and _is(i.target, "api.domain")]
    assert not broken, "shared api modules import no domain package:\n" + "\n".join(broken)


def test_the_rules_see_real_imports() -> None:
    """The reader finds what is there (a rule over an empty list would pass forever)."""
    seen = {(i.module, i.target) for i in imports_of("api")}
    assert ("api.db.intake", "api.db.intake_sql.take_call_statement") in seen
    assert any(_is(target, "litestar") for _module, target in seen)
