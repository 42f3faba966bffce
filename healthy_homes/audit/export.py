"""The audit log as CSV or JSON Lines, for an IG review; it verifies as exported.

Every column is exported, the MACs included, so the file can be checked with
``verify_entries`` (the HMAC key is needed) or compared with the database later.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import IO, Any, Literal

from healthy_homes.audit.chain import MAC_FIELDS

ExportFormat = Literal["csv", "jsonl"]
COLUMNS = (*MAC_FIELDS, "mac")


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["at"] = row["at"].isoformat()
    return out


def write_export(rows: Iterable[dict[str, Any]], out: IO[str], fmt: ExportFormat) -> int:
    """Write every row; returns how many. CSV holds ``detail`` as a JSON string."""
    count = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(_plain(row), ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
        return count
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        plain = _plain(row)
        detail = plain["detail"]
        plain["detail"] = "" if detail is None else json.dumps(detail, sort_keys=True)
        writer.writerow({k: "" if plain[k] is None else plain[k] for k in COLUMNS})
        count += 1
    return count


def read_export(source: IO[str], fmt: ExportFormat) -> Iterator[dict[str, Any]]:
    """Rows of an export, typed back as the verifier expects (times stay ISO strings)."""
    if fmt == "jsonl":
        for line in source:
            if line.strip():
                yield json.loads(line)
        return
    for raw in csv.DictReader(source):
        row: dict[str, Any] = {k: (v if v != "" else None) for k, v in raw.items()}
        row["seq"] = int(row["seq"])
        row["detail"] = None if row["detail"] is None else json.loads(row["detail"])
        yield row
