"""A city union's self-built channel from application to retirement, each step by whom the
usage arrangement names, with the automated conformance report reading what the entrance did."""

from __future__ import annotations

import pytest

from tests.services.activities.conftest import make_workers
from tests.services.channels.conftest import channel_of
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput
from wxbackend.services.identity.platform import sign

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF"


def application(**overrides) -> dict:
    body = {"plan": "建设成都职工服务频道，统一接入川工之家账号体系", "reasons": "本地服务多，需要自建",
            "hosting": "成都市政务云", "mlps_report": "DJCP-510100-2030-0001",
            "police_filing": "川公网安备51010402000001号",
            "entrance_url": "https://zg.chengdu.example.cn/",
            "redirect_uris": ["https://zg.chengdu.example.cn/sso/callback"],
            "scopes": ["sso", "profile.read"]}
    body.update(overrides)
    return body


async def _signed_call(rt, app_id: str, secret: str) -> None:
    """What the entrance's developers do during acceptance: one signed request to /api/v1."""
    timestamp = str(int(rt.clock().timestamp()))
    nonce = "acceptance-0001"
    signature = sign(secret, "GET", "/api/v1/regions", "", timestamp, nonce, b"")
    await rt.apps.authenticate(app_id=app_id, timestamp=timestamp, nonce=nonce, signature=signature,
                               method="GET", path="/api/v1/regions", query="", body=b"")


async def test_from_application_to_retirement(rt, db, cadres, clock) -> None:
    clock.set(china_now())  # platform sign-ins are stamped by the database's clock
    chengdu = await channel_of(db, "SC-510100")
    union, office = cadres["second"], cadres["province"]
    attachment = await rt.media.upload_attachment(union, PDF, "等保测评报告.pdf")
    applied = await rt.self_built.apply(union, chengdu, application(attachments=[attachment["id"]]))
    assert applied["status"] == "applied" and applied["attachments"] == [attachment["id"]]
    with pytest.raises(Conflict):
        await rt.self_built.apply(union, chengdu, application())
    with pytest.raises(Forbidden) as not_office:
        await rt.self_built.decide(union, applied["id"], "approve", {})
    assert not_office.value.code == "platform_office_only"

    approved = await rt.self_built.decide(office, applied["id"], "approve", {})
    app_id, secret = approved["platform_app_id"], approved.pop("platform_secret")
    app = await rt.apps.get_app(app_id)
    assert app.active and sorted(app.scopes) == ["profile.read", "sso"]
    assert app.redirect_uris == ("https://zg.chengdu.example.cn/sso/callback",)

    with pytest.raises(Conflict) as unchecked:
        await rt.self_built.decide(office, applied["id"], "accept",
                                   {"uniformity": True, "content": True, "security": True})
    assert unchecked.value.code == "conformance_failed"
    report = (await rt.self_built.check(office, applied["id"]))["conformance"]
    failing = {c["name"] for c in report["checks"] if not c["passed"]}
    assert not report["passed"] and failing == {"signed_call", "sso_sign_in"}

    await _signed_call(rt, app_id, secret)
    [worker] = await make_workers(db, 1, None)
    await rt.apps.record_sign_in(app_id, worker)  # a worker signed in to the entrance by SSO
    report = (await rt.self_built.check(office, applied["id"]))["conformance"]
    assert report["passed"], report
    with pytest.raises(InvalidInput) as half:
        await rt.self_built.decide(office, applied["id"], "accept", {"uniformity": True})
    assert half.value.code == "acceptance_incomplete"
    await rt.self_built.decide(office, applied["id"], "accept",
                               {"uniformity": True, "content": True, "security": True})
    await rt.self_built.decide(office, applied["id"], "connect", {})
    channel = (await rt.reading.channel("510100"))["channel"]
    assert (channel["mode"], channel["entrance_url"]) == ("self_built", "https://zg.chengdu.example.cn/")

    with pytest.raises(InvalidInput):
        await rt.self_built.decide(office, applied["id"], "suspend", {})
    await rt.self_built.decide(office, applied["id"], "suspend", {"reason": "安全检查发现漏洞"})
    assert (await rt.reading.channel("510100"))["channel"]["mode"] == "common"
    rt.apps._cache.clear()
    assert not (await rt.apps.get_app(app_id)).active
    await rt.self_built.decide(office, applied["id"], "resume", {})
    rt.apps._cache.clear()
    assert (await rt.apps.get_app(app_id)).active
    retired = await rt.self_built.decide(office, applied["id"], "retire", {"reason": "并入通用频道"})
    assert [h["status"] for h in retired["history"]] == [
        "applied", "approved", "checked", "checked", "accepted", "connected", "suspended",
        "connected", "retired"]
    assert retired["history"][-1]["actor_org"] == "四川省总工会"
    # the union sees its application and its history; another city does not
    assert [a["id"] for a in await rt.self_built.list(union)] == [applied["id"]]
    assert await rt.self_built.list(cadres["dazhou"]) == []
    # the steps are in the work ledger's actions
    actions = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE target = $1 ORDER BY id", f"channel_application:{applied['id']}")]
    assert actions[0] == "channel_application.applied" and actions[-1] == "channel_application.retired"
    # retired: a new application may start
    assert (await rt.self_built.apply(union, chengdu, application()))["status"] == "applied"


async def test_only_city_and_industry_unions_apply_with_a_complete_plan(rt, db, cadres) -> None:
    province = await channel_of(db, "SC")
    with pytest.raises(Forbidden) as not_allowed:
        await rt.self_built.apply(cadres["province"], province, application())
    assert not_allowed.value.code == "self_built_not_allowed"
    chengdu = await channel_of(db, "SC-510100")
    with pytest.raises(Forbidden):
        await rt.self_built.apply(cadres["dazhou"], chengdu, application())
    for bad in (application(hosting="阿里云"), application(entrance_url="http://zg.example.cn/"),
                application(redirect_uris=["https://elsewhere.example.com/cb"]),
                application(scopes=["profile.read"]), application(scopes=["sso", "root"]),
                application(plan=""), application(extra=1)):
        with pytest.raises(InvalidInput):
            await rt.self_built.apply(cadres["second"], chengdu, bad)
    assert await db.fetchval("SELECT count(*) FROM channel_applications") == 0


async def test_a_rejection_needs_reasons_and_ends_the_application(rt, db, cadres) -> None:
    chengdu = await channel_of(db, "SC-510100")
    applied = await rt.self_built.apply(cadres["second"], chengdu, application())
    with pytest.raises(InvalidInput):
        await rt.self_built.decide(cadres["province"], applied["id"], "reject", {"reason": " "})
    rejected = await rt.self_built.decide(cadres["province"], applied["id"], "reject",
                                          {"reason": "等保测评报告已过期"})
    assert rejected["status"] == "rejected" and rejected["history"][-1]["reason"] == "等保测评报告已过期"
    with pytest.raises(Conflict):
        await rt.self_built.decide(cadres["province"], applied["id"], "connect", {})
    assert await db.fetchval("SELECT count(*) FROM platform_apps") == 0


async def test_each_step_is_news_to_the_union_until_it_looks(rt, db, cadres) -> None:
    chengdu = await channel_of(db, "SC-510100")
    union, office = cadres["second"], cadres["province"]
    applied = await rt.self_built.apply(union, chengdu, application())
    assert [a["news"] for a in await rt.self_built.list(union)] == [False]   # its own step
    assert [a["news"] for a in await rt.self_built.list(office)] == [True]   # the office's news
    await rt.self_built.get(office, applied["id"])
    await rt.self_built.decide(office, applied["id"], "reject", {"reason": "方案不完整"})
    assert [a["news"] for a in await rt.self_built.list(office)] == [False]
    assert [a["news"] for a in await rt.self_built.list(union)] == [True]    # told of the decision
    await rt.self_built.get(union, applied["id"])
    assert [a["news"] for a in await rt.self_built.list(union)] == [False]
