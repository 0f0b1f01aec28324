"""Statistical disclosure control for published counts, as the UK's trusted research environments
apply it (OpenSAFELY's output rules): a count of 7 or fewer is suppressed (it could single out a
person), every other count is rounded to the nearest 5 (so totals cannot be differenced back to a
small cell). Totals are protected from the unrounded total, not summed from protected cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How a suppressed count is written in CSV and tables.
REDACTED = "[REDACTED]"


@dataclass(frozen=True)
class DisclosureControl:
    """``applied=False`` publishes exact counts (for an auditor's internal use only)."""

    applied: bool = True
    suppress_at_or_below: int = 7
    round_to: int = 5

    def protect(self, count: int) -> int | None:
        """The count as it may be published: None (suppressed) or rounded to ``round_to``."""
        if count < 0:
            raise ValueError("a count cannot be negative")
        if not self.applied:
            return count
        if count <= self.suppress_at_or_below:
            return None
        return (count + self.round_to // 2) // self.round_to * self.round_to

    def to_json(self) -> dict[str, Any]:
        if not self.applied:
            return {"applied": False, "note": "exact counts: not for publication"}
        return {
            "applied": True,
            "suppressed_at_or_below": self.suppress_at_or_below,
            "rounded_to_nearest": self.round_to,
            "note": f"counts of {self.suppress_at_or_below} or fewer are suppressed ({REDACTED}); "
            f"the rest are rounded to the nearest {self.round_to}",
        }

    def describe(self) -> str:
        if not self.applied:
            return "Exact counts (disclosure control OFF): not for publication."
        return (
            f"Counts of {self.suppress_at_or_below} or fewer suppressed, others rounded to the nearest {self.round_to}."
        )
