"""The call categories as the service uses them, read once through ``api.shipped``."""

from __future__ import annotations

import math
from dataclasses import dataclass

from api.errors import UnprocessableError
from api.shipped import load_categories


@dataclass(frozen=True, slots=True)
class Category:
    """One row of ``data/categories.csv`` with the fields intake and linking need."""

    code: str
    label: str
    call_class: str
    serious: bool
    related_group: str
    sla_urban_min: float | None
    sla_rural_min: float | None

    @property
    def links_duplicates(self) -> bool:
        """Only dispatched incidents are linked: two enquiries nearby are not one event."""
        return self.call_class == "case"


class Categories:
    """Lookup by code; an unknown code is a 422 listing the valid ones."""

    def __init__(self) -> None:
        frame = load_categories()
        self._by_code: dict[str, Category] = {}
        for row in frame.itertuples(index=False):
            self._by_code[str(row.code)] = Category(
                code=str(row.code), label=str(row.label), call_class=str(row.call_class),
                serious=bool(row.serious), related_group=str(row.related_group),
                sla_urban_min=_minutes(row.sla_urban_min), sla_rural_min=_minutes(row.sla_rural_min),
            )
        self._groups: dict[str, tuple[str, ...]] = {}
        for category in self._by_code.values():
            self._groups.setdefault(category.related_group, ())
            self._groups[category.related_group] += (category.code,)

    def get(self, code: str) -> Category:
        found = self._by_code.get(code)
        if found is None:
            raise UnprocessableError(f"unknown category {code!r}; categories are "
                                     f"{', '.join(self._by_code)}")
        return found

    def label(self, code: str) -> str:
        found = self._by_code.get(code)
        return found.label if found else code

    def related(self, code: str) -> tuple[str, ...]:
        """Codes whose calls may be the same incident as one of ``code`` (its group)."""
        return self._groups.get(self.get(code).related_group, ())

    def codes(self) -> tuple[str, ...]:
        return tuple(self._by_code)


def _minutes(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number
