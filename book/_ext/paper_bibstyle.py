"""Sphinx extension: number the bibliography as the paper does.

The paper's list ([1]-[15]) is alphabetical by author's last name (particles such as "van der"
ignored). The pybtex style ``paper`` sorts the same way, but first by the entry's ``group``
field (default 0): the paper itself has ``group = {1}`` and comes right after its fifteen
references ([16]); references this companion adds have ``group = {2}`` and come after it.
Citations then show these numbers.
"""

from __future__ import annotations

from typing import Any

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.sorting.author_year_title import SortingStyle as AuthorYearTitle


class PaperOrder(AuthorYearTitle):
    """Sort by the ``group`` field, then by author, year and title (the paper's own order)."""

    def sorting_key(self, entry: Any) -> tuple:
        return (int(entry.fields.get("group", 0)), *super().sorting_key(entry))

    def person_key(self, person: Any) -> str:
        """Last name first, without its particle: "van der Maaten" sorts under M, as in the paper."""
        return "  ".join(
            (
                " ".join(person.last_names),
                " ".join(person.first_names + person.middle_names),
                " ".join(person.lineage_names),
            )
        ).lower()


class PaperStyle(PlainStyle):
    """pybtex's ``plain`` formatting with :class:`PaperOrder` sorting."""

    default_sorting_style = "paper_order"


def setup(app: Any) -> dict[str, Any]:
    register_plugin("pybtex.style.sorting", "paper_order", PaperOrder)
    register_plugin("pybtex.style.formatting", "paper", PaperStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
