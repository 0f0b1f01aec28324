"""How medledger writes a time for machines: ISO-8601 UTC to the second (``2026-12-01T10:00:00Z``).

The chain counts Unix seconds and says "no expiry" with ``uint64`` max, which is past any calendar
date: that reads as None (null in JSON, an empty cell in CSV), so every table tool parses the column.
"""

from __future__ import annotations

import datetime as _dt

#: The last second of the year 9999: a later "time" is the chain's way of saying "never".
LAST_DATE = 253_402_300_799


def iso(timestamp: int | None) -> str | None:
    """``timestamp`` (Unix seconds) as ISO-8601 UTC to the second; None for None or past any date."""
    if timestamp is None or timestamp > LAST_DATE:
        return None
    return _dt.datetime.fromtimestamp(int(timestamp), _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
