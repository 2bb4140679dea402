"""What one ledger entry says, canonically encoded.

An entry is UTF-8 JSON with sorted keys and no insignificant white space, so the same change
always gives the same bytes (and the same leaf hash) wherever it is re-encoded. It holds what the
base-data change log holds and nothing more: no personal data in clear, only record ids, union
codes, member numbers and the names of the fields that changed. ``org`` is the path of union
codes from the province to the union the record belongs to, which lets a city node check that
what it receives is its own subtree's. An audit-trail head commits the newest audit record's
number and chained MAC, so a rewritten trail no longer matches the heads the nodes hold.

tlog-tiles bundles entries with a 16-bit length, so an entry is at most 65,535 bytes: a change
whose data would not fit keeps the SHA-256 of its data instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

VERSION = 1
MAX_ENTRY = 65535


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(row: Mapping[str, Any]) -> bytes:
    """The entry of a queued item, from the columns ``store.ledger.log.take_queued`` returns."""
    if row["kind"] == "audit_head":
        return canonical({"v": VERSION, "type": "audit_head", "seq": row["head_seq"],
                          "record_mac": bytes(row["head_hash"]).hex(),
                          "head_mac": bytes(row["head_mac"]).hex(),
                          "at": _time(row["at"])})
    body = {"v": VERSION, "type": "change", "change": row["ref"], "entity": row["entity"],
            "id": row["entity_id"], "action": row["action"], "data": row["data"] or {},
            "actor": row["actor"], "org": list(row["codes"] or []), "at": _time(row["at"])}
    data = canonical(body)
    if len(data) > MAX_ENTRY:
        body["data"] = {"sha256": hashlib.sha256(canonical(body["data"])).hexdigest()}
        data = canonical(body)
    return data


def decode(body: bytes) -> dict:
    """An entry's fields; ValueError when it is not an entry this version wrote."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("账本条目不是有效的 JSON") from exc
    if not isinstance(value, dict) or value.get("v") != VERSION or canonical(value) != body:
        raise ValueError("账本条目不是规范编码")
    return value


def within(body: bytes, codes: list[str]) -> bool:
    """Does the entry belong to the subtree of the union whose code path is ``codes``? Audit
    heads belong to every node."""
    entry = decode(body)
    if entry["type"] == "audit_head":
        return True
    return entry.get("org", [])[:len(codes)] == codes


def audit_head(body: bytes) -> tuple[int, bytes, datetime, bytes]:
    """An audit-head entry's (record number, record MAC, time, head MAC)."""
    entry = decode(body)
    if entry["type"] != "audit_head":
        raise ValueError("不是审计记录头条目")
    at = datetime.strptime(entry["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return entry["seq"], bytes.fromhex(entry["record_mac"]), at, bytes.fromhex(entry["head_mac"])
