"""Field-key rotation: re-encrypt every sealed value under the current key, in batches, while
the server keeps running (see docs/security.md, "Rotating the field key").

Each batch is one short transaction; rows being changed by a request at that moment are skipped
(SKIP LOCKED) and picked up by the next pass, so the command can be re-run until it reports
nothing left. The AAD is the value's own column label, as when it was written.
"""

from __future__ import annotations

import asyncio

import asyncpg

from wxbackend.infra.pii import PersonalData
from wxbackend.services.cadres import cadres
from wxbackend.services.identity import accounts, platform
from wxbackend.services.membership import membership
from wxbackend.store import sealed as store
from wxbackend.store.messaging import inbound

# The AAD each stored value was sealed with: the services' own labels, so the two cannot drift
# (an application holds the values it will hand to a member record, sealed for its columns).
_AAD = {"accounts.phone": accounts.PHONE_COLUMN, "members.id_number": membership.ID_COLUMN,
        "members.phone": membership.PHONE_COLUMN, "applications.id_number": membership.ID_COLUMN,
        "applications.phone": membership.PHONE_COLUMN, "platform_apps.secret": platform.SECRET_COLUMN,
        "cadres.totp_secret": cadres.TOTP_COLUMN, "wechat_inbound.payload": inbound.PAYLOAD_COLUMN}


async def reseal_all(pool: asyncpg.Pool, pii: PersonalData, *, batch: int = 1000) -> dict[str, int]:
    """Re-encrypt what is sealed under an older key; return how many values per column."""
    loop = asyncio.get_running_loop()
    done: dict[str, int] = {}
    for column in store.COLUMNS:
        aad, after, count = _AAD[column], 0, 0
        while True:
            async with pool.acquire() as conn, conn.transaction():
                rows = await store.stale(conn, column, pii.current_key, after, batch)
                if not rows:
                    break
                # SM4 over a batch is CPU work: off the event loop.
                fresh = await loop.run_in_executor(
                    None, lambda rows=rows, aad=aad: [(r["id"], pii.reseal(r["value"], aad)) for r in rows])
                await store.write(conn, column, fresh)
            after, count = rows[-1]["id"], count + len(rows)
        done[column] = count
    return done
