"""The demo province's office work (机关办公) at the 成都 union and below, made through the
office services as cadres make it, so their rules (permissions, the union each step waits on)
apply: information reports (信息报送) from 锦江区 to 成都 and from 成都 to the province, in every
state; documents (公文流转) of the 成都 union; its meeting room and meetings; and a union
congress whose representatives (demo workers) submit and second proposals (提案).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from wxbackend.runtime import Runtime
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import CHINA

REPORTS = (  # (title, body, days since the event)
    ("锦江区总工会开展新就业形态劳动者集中入会活动（演示）",
     "近日，锦江区总工会在辖区商圈开展新就业形态劳动者集中入会活动，现场为外卖配送员、网约车司机等"
     "办理入会手续，并发放职工之家服务指南。本文为培训演示数据。", 2),
    ("锦江区职工书屋读书分享会举行（演示）",
     "锦江区一基层工会职工书屋举办月度读书分享会，四十余名职工参加，交流阅读心得，推荐优秀图书。"
     "本文为培训演示数据。", 1),
    ("成都市总工会“夏送清凉”慰问一线职工（演示）",
     "成都市总工会组织开展“夏送清凉”活动，走访慰问高温下坚守岗位的环卫、建筑、快递等一线职工，"
     "送去防暑降温物资。本文为培训演示数据。", 3),
    ("成都市职工技能竞赛决赛圆满落幕（演示）",
     "成都市职工技能竞赛决赛在市工人文化宫举行，来自各区县的选手同台竞技，评出一、二、三等奖。"
     "本文为培训演示数据。", 2),
)
RETURN_REASON = "请补充活动参与人数和现场图片后重新报送。"


def _iso(at: datetime) -> str:
    return at.astimezone(CHINA).isoformat()


def _weekday(now: datetime, ahead: int, hour: int) -> datetime:
    """``ahead`` days from now, moved to the next working day, at ``hour`` o'clock (China)."""
    at = (now + timedelta(days=ahead)).astimezone(CHINA)
    while at.weekday() >= 5:
        at += timedelta(days=1)
    return at.replace(hour=hour, minute=0, second=0, microsecond=0)


async def info_reports(rt: Runtime, now: datetime, county: Actor, city: Actor,
                       province: Actor) -> dict[str, int]:
    """锦江区 reports twice to 成都 (one adopted there and passed up to the province, one waiting);
    成都 reports twice to the province (one adopted, one returned for changes)."""
    made = []
    for k, (title, body, ago) in enumerate(REPORTS):
        author = county if k < 2 else city
        day = (now - timedelta(days=ago)).astimezone(CHINA).date()
        report = await rt.info_reports.submit(author, {"title": title, "body": body, "category": "工作动态",
                                                       "event_date": day.isoformat()})
        made.append(report["id"])
    await rt.info_reports.review(city, made[0], {"action": "adopt"})
    await rt.info_reports.pass_up(city, made[0])
    await rt.info_reports.review(province, made[2], {"action": "adopt"})
    await rt.info_reports.review(province, made[3], {"action": "return", "reason": RETURN_REASON})
    return {"info_reports": len(made)}


async def documents(rt: Runtime, city: Actor) -> dict[str, int]:
    """The 成都 union's document settings, a notice being drafted, one at 核稿, and a document
    received from the province registered by hand."""
    await rt.documents.set_office(city, {"issuer_code": "成工办字", "issuer_mark": "成都市总工会文件",
                                         "issuer_name": "成都市总工会", "principal_id": city.id})
    drafts = (
        ("关于做好元旦春节期间困难职工帮扶工作的通知（演示）",
         "各区（市）县总工会：为做好元旦春节期间困难职工帮扶工作，现将有关事项通知如下。本文为培训演示数据。"),
        ("关于开展职工技能竞赛的通知（演示）",
         "各区（市）县总工会：为提升职工技能水平，决定开展全市职工技能竞赛。本文为培训演示数据。"),
    )
    made = 0
    for k, (title, body) in enumerate(drafts):
        doc = await rt.documents.draft(city, {"title": title, "main_to": "各区（市）县总工会", "body": body,
                                              "flow": "down", "urgency": None})
        if k == 1:
            await rt.documents.act(city, doc["document"]["id"], {"action": "submit", "opinion": "请核稿"})
        made += 1
    await rt.documents.receive(city, {
        "title": "关于做好全省工会网上工作平台推广应用的通知（演示）", "main_to": "各市（州）总工会",
        "body": "请各市（州）总工会按照三年目标，做好平台推广应用工作。本文为培训演示数据。",
        "sender": "四川省总工会", "doc_number": "川工办发〔2026〕1号"})
    return {"documents": made + 1}


async def meetings(rt: Runtime, now: datetime, city: Actor, invitees: list[int]) -> dict[str, int]:
    """A meeting room of the 成都 union and two meetings in it next week."""
    room = await rt.meetings.rooms.create(city, {"name": "第一会议室（演示）", "place": "成都市总工会三楼",
                                                 "capacity": 30})
    plans = (("平台推广应用工作推进会（演示）", "一、通报各区县使用情况；二、部署下一阶段推广工作。", 3, 9),
             ("困难职工帮扶工作专题会（演示）", "研究元旦春节期间帮扶慰问安排。", 4, 14))
    for title, agenda, ahead, hour in plans:
        starts = _weekday(now, ahead, hour)
        await rt.meetings.internal.create(city, {
            "title": title, "agenda": agenda, "room_id": room["id"], "starts_at": _iso(starts),
            "ends_at": _iso(starts + timedelta(hours=2)), "invitees": invitees})
    return {"meetings": len(plans)}


async def proposals(rt: Runtime, now: datetime, city: Actor,
                    representatives: list[tuple[int, str, str]]) -> dict[str, int]:
    """A union congress of the 成都 union collecting proposals now: its representatives (demo
    workers: account id, name, phone) submit three; two have their seconders and wait for the
    committee's review, one is still collecting them."""
    session = await rt.proposals.create_session(city, {
        "kind": "union", "name": "成都市总工会会员代表大会（演示）", "seconders": 2, "reply_days": 40,
        "opens_at": _iso(now - timedelta(days=5)), "closes_at": _iso(now + timedelta(days=25))})
    await rt.proposals.add_representatives(city, session["id"], {"representatives": [
        {"name": name, "phone": phone, "delegation": "锦江区代表团" if k % 2 else "武侯区代表团"}
        for k, (_, name, phone) in enumerate(representatives)]})
    ideas = (
        ("关于在职工之家增设母婴室的提案（演示）",
         "部分女职工反映哺乳期缺少合适的场所，影响工作和身体健康。",
         "建议各基层工会在职工之家增设母婴室，并配备必要设施。", 2),
        ("关于扩大职工疗休养覆盖面的提案（演示）",
         "一线职工参加疗休养的机会较少，名额多集中在管理岗位。",
         "建议疗休养名额向一线职工和劳模工匠倾斜，并公开名额分配。", 2),
        ("关于提高困难职工帮扶标准的提案（演示）",
         "物价上涨，现行帮扶标准难以满足困难职工的基本生活需要。",
         "建议结合物价水平适时提高帮扶标准，并简化申请流程。", 1),
    )
    accounts = [r[0] for r in representatives]
    for k, (title, reasons, measures, seconders) in enumerate(ideas):
        proposer = accounts[k % len(accounts)]
        made = await rt.proposals.submit(proposer, session["id"], {
            "title": title, "reasons": reasons, "measures": measures})
        others = [a for a in accounts if a != proposer]
        for n in range(min(seconders, len(others))):
            await rt.proposals.second(others[(k + n) % len(others)], made["id"])
    return {"proposals": len(ideas)}
