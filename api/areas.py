"""The chain of command as data: every area's name and the codes of the areas above it.

Built once from the boundary set the service serves, so names in call answers, scope
checks and code validation all agree with the router.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from api.errors import ForbiddenError, NotFoundError, UnprocessableError
from jurisdictions.boundaries import PROVINCE_CODE, PROVINCE_NAME, BoundarySet

if TYPE_CHECKING:
    from api.auth import Principal

LEVELS = ("station", "tehsil", "district", "region", "province")
"""Fine to coarse (the order of a call's path)."""

PARENT_LEVEL = {"station": "tehsil", "tehsil": "district", "district": "region", "region": "province"}


@dataclass(frozen=True, slots=True)
class Area:
    """One jurisdiction: its level, code, name and the codes of itself and its ancestors."""

    level: str
    code: str
    name: str
    path: dict[str, str] = field(default_factory=dict)


class Areas:
    """Lookup of areas by level and code; unknown codes raise :class:`NotFoundError`."""

    def __init__(self, boundaries: BoundarySet) -> None:
        self.version = boundaries.version
        self._by_level: dict[str, dict[str, Area]] = {level: {} for level in LEVELS}
        self._by_level["province"][PROVINCE_CODE] = Area(
            "province", PROVINCE_CODE, PROVINCE_NAME, {"province": PROVINCE_CODE})
        parent_column = {"region": None, "district": "region_code", "tehsil": "district_code",
                         "station": "tehsil_code"}
        for level in ("region", "district", "tehsil", "station"):
            frame = boundaries.layer(level)
            column = parent_column[level]
            parents: list[Any] = (frame[column].tolist() if column else [PROVINCE_CODE] * len(frame))
            upper = self._by_level[PARENT_LEVEL[level]]
            for code, name, parent in zip(frame["code"].tolist(), frame["name"].tolist(), parents,
                                          strict=True):
                above = upper.get(str(parent))
                path = {**(above.path if above else {"province": PROVINCE_CODE}), level: str(code)}
                self._by_level[level][str(code)] = Area(level, str(code), str(name), path)

    def get(self, level: str, code: str) -> Area:
        """The area ``code`` of ``level``; 404 naming what is unknown."""
        if level not in self._by_level:
            raise NotFoundError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
        found = self._by_level[level].get(code)
        if found is None:
            raise NotFoundError(f"no {level} with code {code!r}")
        return found

    def station(self, code: str) -> Area:
        return self.get("station", code)

    def name(self, level: str, code: str | None) -> str | None:
        """The name of an area, ``None`` for no code or an unknown one (names are informative)."""
        if not code:
            return None
        found = self._by_level.get(level, {}).get(code)
        return found.name if found else None

    def find(self, code: str) -> Area | None:
        """The area with ``code`` at whichever level has it (codes are unique across levels)."""
        for level in LEVELS:
            found = self._by_level[level].get(code)
            if found is not None:
                return found
        return None

    def children(self, area: Area) -> list[Area]:
        """The areas one level below ``area``, by code (none below a station)."""
        child = next((lv for lv, parent in PARENT_LEVEL.items() if parent == area.level), None)
        if child is None:
            return []
        return sorted((a for a in self._by_level[child].values()
                       if a.path.get(area.level) == area.code), key=lambda a: a.code)

    def count(self, level: str) -> int:
        return len(self._by_level[level])

    def conditions(self, principal: Principal, columns: Mapping[str, Any],
                   wanted: Mapping[str, str | None]) -> list[Any]:
        """SQL conditions of a list endpoint's area filters and the caller's scope.

        ``columns`` maps each level to the column holding its code; ``wanted`` the levels
        a request filters on to their codes (``None``: no filter). Each wanted area must
        exist (422) and lie in the principal's scope (403); rows outside the principal's
        own scope are left out even without a filter.
        """
        found: list[Any] = []
        for level, code in wanted.items():
            if code is None:
                continue
            try:
                area = self.get(level, code)
            except NotFoundError as exc:
                raise UnprocessableError(f"no {level} with code {code!r}") from exc
            principal.require_scope(area.path, f"{level} {code}")
            found.append(columns[level] == code)
        if principal.role != "admin" and principal.level != "province":
            column = columns.get(principal.level)
            if column is None:  # such a scope cannot see these rows: refuse, never show all
                raise ForbiddenError(f"these records are not kept per {principal.level}")
            found.append(column == principal.scope)
        return found
