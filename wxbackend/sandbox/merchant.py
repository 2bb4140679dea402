"""The merchant tour's side of the demo province: a few members of the grassroots tour's union
hold confirmed places on what is open now (a service of their union and an activity), taken
through the product's own sign-up service as the worker's page takes them (Redis admission,
eligibility, hold, confirmation); and a redemption verifier (核销员) of that union, created by its
super admin and bound to the union's open services, redeems them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from wxbackend.runtime import Runtime
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import CHINA

VERIFIER_USERNAME = "shopdesk"
VERIFIER_NAME = "合作影院前台演示核销员"
FALLBACK_SERVICE = {
    "kind": "service", "form": "coupon", "title": "职工餐厅餐券（演示）",
    "summary": "会员凭券在合作餐厅就餐立减 15 元。", "place": "合作餐厅", "stock": 300,
    "mode": "first_come", "per_person": 1}


async def _open_items(rt: Runtime, desk: Actor, kind: str) -> list[dict]:
    """The union's own published items of ``kind`` open for sign-up now, oldest first."""
    items = await rt.catalogue.manage_list(desk, kind=kind, status="published", before_id=None)
    return sorted((i for i in items if i["state"] == "open" and i["org_id"] == desk.org_id),
                  key=lambda i: i["id"])


async def _services(rt: Runtime, now: datetime, desk: Actor) -> list[dict]:
    services = await _open_items(rt, desk, "service")
    if not services:  # the catalogue made none for this union: open one, as its cadre would
        opens = now - timedelta(days=1)
        item = await rt.catalogue.create(desk, {
            **FALLBACK_SERVICE, "opens_at": opens.astimezone(CHINA).isoformat(),
            "closes_at": (now + timedelta(days=30)).astimezone(CHINA).isoformat()})
        await rt.catalogue.set_status(desk, item["id"], "published")
        services = await _open_items(rt, desk, "service")
    return services


async def _take(rt: Runtime, account_id: int, offering_id: int) -> dict:
    """A place taken and confirmed as the worker's page does it (sign up, then confirm a hold)."""
    claim = await rt.signups.sign_up(account_id, offering_id)
    if claim["status"] == "held":
        claim = await rt.signups.confirm(account_id, claim["id"])
    return claim


async def places_and_verifier(rt: Runtime, now: datetime, desk: Actor,
                              workers: list[int]) -> tuple[dict, dict[str, int]]:
    """``workers`` (members of ``desk``'s union) each take a place on the union's first open
    service and on an open activity; the verifier is bound to all the union's open services.
    Returns the verifier (username, password, display name, offering titles) and counts."""
    services = await _services(rt, now, desk)
    activities = await _open_items(rt, desk, "activity")
    taken = 0
    for account_id in workers:
        for item in services[:1] + activities[:1]:
            claim = await _take(rt, account_id, item["id"])
            taken += claim["status"] == "confirmed"
    made = await rt.redemption.create_verifier(desk, {
        "username": VERIFIER_USERNAME, "display_name": VERIFIER_NAME,
        "offering_ids": [s["id"] for s in services]})
    verifier = {"username": made["verifier"]["username"], "password": made["password"],
                "display_name": made["verifier"]["display_name"],
                "offerings": [s["title"] for s in services]}
    return verifier, {"verifiers": 1, "places_confirmed": taken}
