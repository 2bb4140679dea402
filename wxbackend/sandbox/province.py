"""The demo province of the training sandbox (操作培训): the real union tree (seeded) plus its
counties, a few hundred grassroots unions, cadres for every guided tour, a few thousand workers
and members with obviously fictitious data (:mod:`wxbackend.sandbox.people`), activities,
services, articles and a year of usage history, so every page and dashboard has something to show.
The first workers hold confirmed places on what is open now, and a redemption verifier
(:mod:`wxbackend.sandbox.merchant`) redeems them in the merchant tour.

Reproducible: the same seed and sizes on a freshly migrated and seeded database give the same
state. Every choice comes from ``random.Random(seed)``, every time from the runtime's clock (the
caller fixes it); only what production itself randomises differs (sealed values' nonces,
password hashes, TOTP secrets, public ids).

Cadres are created through the cadre service (so they sign in as any cadre does); the bulk rows
go through :mod:`wxbackend.store.sandbox` with personal data sealed by the runtime's
:class:`~wxbackend.infra.pii.PersonalData`, as the services seal it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlparse

from wxbackend.runtime import Runtime
from wxbackend.sandbox import casework, content, merchant, office
from wxbackend.sandbox.people import People, employer_name, unionid_of
from wxbackend.services.cadres.permissions import DUTY_LIMITS, Actor
from wxbackend.services.clock import CHINA
from wxbackend.services.identity.accounts import PHONE_COLUMN as ACCOUNT_PHONE
from wxbackend.services.identity.accounts import UNIONID_ISSUER
from wxbackend.services.membership.membership import ID_COLUMN
from wxbackend.services.membership.membership import PHONE_COLUMN as MEMBER_PHONE
from wxbackend.services.seed import _csv
from wxbackend.store import sandbox as store
from wxbackend.store.membership import orgs as org_store

# Passes the cadre password policy (12+ characters, four classes) and contains no demo username.
DEMO_PASSWORD = "Sichuan-Demo-2026!"  # noqa: S105 (the sandbox's published password)
CHENGDU, MIANYANG = "510100", "510700"
JINJIANG = "510104"        # 锦江区: the grassroots tour's union is there
HISTORY_DAYS = 365         # the usage history: the last 12 months
FOUNDING_DAYS = 730        # grassroots unions founded over the last two years
ETHNICITIES = ("汉族",) * 94 + ("彝族",) * 3 + ("藏族",) * 2 + ("羌族",)
EDUCATION = ("初中", "高中", "中专", "大专", "大学本科", "硕士研究生")
POLITICAL = ("群众",) * 6 + ("中共党员", "共青团员")
# The first workers: registered, certified members of the grassroots tour's union, each holding
# confirmed places on what is open now (the phone simulator lists them first).
TOUR_WORKERS = 4


@dataclass(frozen=True)
class DemoCadre:
    username: str
    display_name: str
    role: str                  # operator | super_admin | cadre
    duty: str
    org_name: str
    totp_secret: str | None    # base32; None when the role signs in without a second factor
    tour: str                  # the guided tour it is for: grassroots | city | merchant | office;
                               # "" for none (a union's office work: information reports)


@dataclass(frozen=True)
class DemoWorker:
    account_id: int
    name: str
    phone: str
    openid: str                # under the Official Account
    member: bool


@dataclass(frozen=True)
class DemoVerifier:
    username: str
    password: str              # as the verifier service answered it, once
    display_name: str
    org_name: str
    offerings: list[str]       # the titles of the items it may redeem


@dataclass(frozen=True)
class Demo:
    cadres: list[DemoCadre]
    workers: list[DemoWorker]
    counts: dict[str, int]
    verifiers: list[DemoVerifier] = field(default_factory=list)


@dataclass
class Union:
    id: int
    name: str
    county: str
    city: str
    founded: datetime
    via_platform: bool


def _secret(totp_uri: str | None) -> str | None:
    return parse_qs(urlparse(totp_uri).query)["secret"][0] if totp_uri else None


def _ramp(rng: random.Random, first: datetime, now: datetime, days: int) -> datetime:
    """A moment in the ``days`` before ``now``, more of them lately (the platform taking on)."""
    at = now - timedelta(days=days) + timedelta(days=days * rng.random() ** 0.6)
    return min(max(at, first), now - timedelta(minutes=30))


async def generate(rt: Runtime, *, seed: int = 2026, workers: int = 3000, grassroots: int = 300) -> Demo:
    """Fill the (migrated and seeded) database with the demo province; see the module's text."""
    if workers < 1 or grassroots < 1:
        raise ValueError("workers and grassroots must be positive")
    rng = random.Random(seed)
    people = People(rng)
    now = rt.clock().astimezone(CHINA).replace(microsecond=0)
    counts: dict[str, int] = {}
    regions = _csv("sichuan_regions.csv")
    counties = [r for r in regions if r["level"] == "county"]
    county_name = {r["code"]: r["name"] for r in regions}
    async with rt.pool.acquire() as conn, conn.transaction():
        county_ids = await store.insert_counties(
            conn, [(r["code"], r["name"], r["city_code"]) for r in counties],
            now - timedelta(days=FOUNDING_DAYS + 30))
        city_ids = await store.city_ids(conn)
        unions = await _grassroots(conn, rng, people, now, grassroots, counties, county_ids, county_name)
    counts["counties"] = len(county_ids)
    counts["grassroots_unions"] = len(unions)
    counts["founded_via_platform"] = sum(u.via_platform for u in unions)

    cadres, actors = await _cadres(rt, unions)
    counts["cadres"] = len(cadres)
    async with rt.pool.acquire() as conn, conn.transaction():
        demo_workers, member_count, certified = await _workers(
            rt, conn, rng, people, now, workers, unions, counties, city_ids)
    counts["workers"] = len(demo_workers)
    counts["members"] = member_count
    counts["certified"] = certified
    counts.update(await content.generate(rt, rng, now, actors=actors, unions=[u.id for u in unions],
                                         accounts=[w.account_id for w in demo_workers]))
    counts.update(await casework.appeals(rt, now, actors["grassroots"], [w.account_id for w in demo_workers]))
    counts.update(await casework.notice(rt, actors["city_office"], actors["city"]))
    tour = [w.account_id for w in demo_workers[:TOUR_WORKERS]]
    made, places = await merchant.places_and_verifier(rt, now, actors["grassroots"], tour)
    counts.update(places)
    counts.update(await _office_work(rt, now, actors, demo_workers))
    verifiers = [DemoVerifier(made["username"], made["password"], made["display_name"], unions[0].name,
                              made["offerings"])]
    first = (now - timedelta(days=FOUNDING_DAYS + 1)).date()
    counts["kpi_rows"] = await rt.kpi_rollups.backfill(first)
    return Demo(cadres=cadres, workers=demo_workers, counts=counts, verifiers=verifiers)


async def _office_work(rt: Runtime, now: datetime, actors: dict[str, Actor],
                       workers: list[DemoWorker]) -> dict[str, int]:
    """Information reports, documents, meetings and proposals (:mod:`wxbackend.sandbox.office`);
    the congress's representatives are the first registered workers."""
    counts = await office.info_reports(rt, now, actors["county"], actors["city"], actors["office"])
    counts.update(await office.documents(rt, actors["city"]))
    counts.update(await office.meetings(rt, now, actors["city"],
                                        [actors["city_office"].id, actors["county"].id]))
    representatives = []
    for worker in workers:
        if len(representatives) == 8:
            break
        if (await rt.accounts.get_account(worker.account_id)).registered:
            representatives.append((worker.account_id, worker.name, worker.phone))
    if len(representatives) >= 3:
        counts.update(await office.proposals(rt, now, actors["city"], representatives))
    return counts


async def _grassroots(conn, rng: random.Random, people: People, now: datetime, n: int,
                      counties: list[dict], county_ids: dict[str, int],
                      county_name: dict[str, str]) -> list[Union]:
    """Most unions under 成都 and 绵阳; the first one in 锦江区 (the grassroots tour's)."""
    of_city: dict[str, list[str]] = {}
    for r in counties:
        of_city.setdefault(r["city_code"], []).append(r["code"])
    others = [c for c in counties if c["city_code"] not in (CHENGDU, MIANYANG)]
    rows, made = [], []
    for k in range(n):
        if k == 0:
            county, city = JINJIANG, CHENGDU
        else:
            pick = rng.random()
            city = CHENGDU if pick < 0.5 else MIANYANG if pick < 0.75 else rng.choice(others)["city_code"]
            county = rng.choice(of_city[city])
        place = county_name[county].removesuffix("区").removesuffix("县").removesuffix("市")
        employer = employer_name(rng, place)
        founded = now - timedelta(days=FOUNDING_DAYS) + timedelta(
            seconds=rng.randrange(FOUNDING_DAYS * 86_400))
        founded = founded.replace(hour=rng.randint(9, 17)) if k else now - timedelta(days=FOUNDING_DAYS - 1)
        # The last year's foundings went through the platform (application, then approval).
        via = founded >= now - timedelta(days=HISTORY_DAYS) and rng.random() < 0.6
        rows.append((county_ids[county], f"{employer}工会（演示）", people.credit_code(county), employer,
                     county, via, founded))
        made.append((county, city, founded))
    ids = await store.insert_grassroots(conn, rows)
    await store.log_changes(conn, [
        ("org", str(i), "founded" if r[5] else "created", {"parent_id": r[0], "name": r[1]},
         "sandbox", r[6]) for i, r in zip(ids, rows, strict=True)])
    return [Union(i, r[1], county, city, founded, r[5])
            for i, r, (county, city, founded) in zip(ids, rows, made, strict=True)]


async def _actor(rt: Runtime, cadre_id: int) -> Actor:
    return await rt.cadres.actor(cadre_id, ip="127.0.0.1")


async def _cadres(rt: Runtime, unions: list[Union]) -> tuple[list[DemoCadre], dict[str, Actor]]:
    """The tours' cadres: the platform office's operator creates the 成都 super admin and the
    grassroots union's; that union's super admin creates the merchant verifier (a cadre holding
    only 普惠服务管理, who checks in and redeems the union's services). The operator also creates
    the super admin of 锦江区总工会, who reports information to 成都 (no tour of its own)."""
    office = await rt.cadres.create_operator(username="office", display_name="省平台办公室演示操作员",
                                             password=DEMO_PASSWORD)
    operator = await _actor(rt, office.id)
    async with rt.pool.acquire() as conn:
        chengdu_id = (await org_store.by_code(conn, "SC-510100"))["id"]
    business = set(DUTY_LIMITS["business"]) - {"business.approve", "kpi.manage", "basedata.ledger"}
    city = await rt.cadres.create_account(
        operator, username="chengdu", display_name="成都市总工会演示管理员", org_id=chengdu_id,
        role="super_admin", duty="system", password=DEMO_PASSWORD,
        permissions=business | {"account.manage", "account.verify", "org.manage"})
    home = unions[0]
    union_admin = await rt.cadres.create_account(
        operator, username="jinjiang", display_name="锦江区基层工会演示干部", org_id=home.id,
        role="super_admin", duty="system", password=DEMO_PASSWORD,
        permissions={"account.manage", "member.review", "member.import", "activity.manage",
                     "service.manage", "appeal.handle", "channel.publish", "kpi.read"})
    grassroots = await _actor(rt, union_admin.id)
    shop = await rt.cadres.create_account(
        grassroots, username="shop", display_name="普惠商户演示核销员", org_id=home.id, role="cadre",
        duty="business", password=DEMO_PASSWORD, permissions={"service.manage"})
    city_actor = await _actor(rt, city.id)
    city_office = await rt.cadres.create_account(
        city_actor, username="cdoffice", display_name="成都市总工会办公室演示干部", org_id=chengdu_id,
        role="cadre", duty="business", password=DEMO_PASSWORD,
        permissions={"notice.publish", "channel.publish", "activity.manage", "kpi.read"})
    async with rt.pool.acquire() as conn:
        county_id = (await org_store.by_code(conn, f"SC-{JINJIANG}"))["id"]
    county = await rt.cadres.create_account(
        operator, username="jjzgh", display_name="锦江区总工会演示管理员", org_id=county_id,
        role="super_admin", duty="system", password=DEMO_PASSWORD,
        permissions={"account.manage", "info.report", "document.handle", "meeting.manage", "kpi.read"})
    cadres = [
        DemoCadre("jinjiang", "锦江区基层工会演示干部", "super_admin", "system", home.name,
                  _secret(union_admin.totp_uri), "grassroots"),
        DemoCadre("chengdu", "成都市总工会演示管理员", "super_admin", "system", "成都市总工会",
                  _secret(city.totp_uri), "city"),
        DemoCadre("cdoffice", "成都市总工会办公室演示干部", "cadre", "business", "成都市总工会",
                  _secret(city_office.totp_uri), "city"),
        DemoCadre("shop", "普惠商户演示核销员", "cadre", "business", home.name, _secret(shop.totp_uri),
                  "merchant"),
        DemoCadre("office", "省平台办公室演示操作员", "operator", "system", "四川省总工会",
                  _secret(office.totp_uri), "office"),
        DemoCadre("jjzgh", "锦江区总工会演示管理员", "super_admin", "system", "锦江区总工会",
                  _secret(county.totp_uri), ""),
    ]
    actors = {"office": operator, "city": city_actor, "grassroots": grassroots,
              "merchant": await _actor(rt, shop.id), "city_office": await _actor(rt, city_office.id),
              "county": await _actor(rt, county.id)}
    return cadres, actors


async def _workers(rt: Runtime, conn, rng: random.Random, people: People, now: datetime, n: int,
                   unions: list[Union], counties: list[dict],
                   city_ids: dict[str, int]) -> tuple[list[DemoWorker], int, int]:
    """Workers who followed the Official Account and registered over the last year; four in five
    are members (a roster imported when their union was founded, or joined through the
    platform), and most roster members certified their membership after registering. The first
    :data:`TOUR_WORKERS` are registered, certified members of the grassroots tour's union. Each
    account has its Official Account openid and its unionid."""
    pii = rt.pii
    first = now - timedelta(days=HISTORY_DAYS)
    city_of = {r["code"]: r["city_code"] for r in counties}
    plans, accounts = [], []
    for k in range(n):
        name, phone, openid = people.name(), people.phone(), people.openid()
        tour = k < TOUR_WORKERS
        union = unions[0] if tour else rng.choice(unions) if rng.random() < 0.8 else None
        county = union.county if union else rng.choice(counties)["code"]
        registered = _ramp(rng, first, now, HISTORY_DAYS)
        followed = registered - timedelta(minutes=rng.randint(2, 600))
        done = tour or rng.random() < 0.95      # the rest have not chosen their region yet
        accounts.append((name, pii.encrypt(phone, ACCOUNT_PHONE), pii.blind_index(phone, ACCOUNT_PHONE),
                         rt.settings.privacy.version, county if done else None,
                         city_ids[city_of[county]] if done else None, followed,
                         registered if done else None))
        plans.append((name, phone, openid, union, county, followed, registered if done else None))
    ids = await store.insert_accounts(conn, accounts)
    appid = rt.settings.wechat.appid
    # The Official Account openid and the unionid joining it to the Mini Program's (so its
    # sign-in finds the same account), as WeChat sign-in stores them.
    await store.insert_identities(conn, [
        row for i, p in zip(ids, plans, strict=True)
        for row in ((i, "oa_openid", appid, p[2], p[5]),
                    (i, "unionid", UNIONID_ISSUER, unionid_of(p[2]), p[5]))])
    changes = [("registered_user", str(i), "registered", {"region": a[4], "home_org": a[5]}, "self", a[7])
               for i, a in zip(ids, accounts, strict=True) if a[7] is not None]
    members, demo, certified = [], [], 0
    for k, (account_id, (name, phone, openid, union, county, _, registered)) in enumerate(
            zip(ids, plans, strict=True)):
        demo.append(DemoWorker(account_id, name, phone, openid, union is not None))
        if union is None:
            continue
        number, born, gender = people.id_number(county)
        via_platform = registered is not None and registered > union.founded and rng.random() < 0.35
        if via_platform:
            at = min(registered + timedelta(hours=rng.randint(2, 120)), now - timedelta(minutes=5))
            joined, created, linked = at.date(), at, at
        else:
            joined = date(rng.randint(2005, union.founded.year), rng.randint(1, 12), rng.randint(1, 28))
            joined = min(joined, union.founded.date())
            created = union.founded + timedelta(days=rng.randint(1, 20))
            created = min(created, now - timedelta(hours=1))
            linked = None
            if registered is not None and (k < TOUR_WORKERS or rng.random() < 0.7):
                linked = min(max(registered, created) + timedelta(hours=rng.randint(1, 72)),
                             now - timedelta(minutes=5))
        certified += linked is not None
        employer = union.name.removesuffix("工会（演示）")
        members.append((union.id, f"SC{joined.year}9{len(members) + 1:08d}", name,
                        pii.encrypt(number, ID_COLUMN), pii.blind_index(number, ID_COLUMN),
                        pii.encrypt(phone, MEMBER_PHONE), pii.blind_index(phone, MEMBER_PHONE),
                        gender, born, rng.choice(ETHNICITIES), rng.choice(EDUCATION), rng.choice(POLITICAL),
                        "农村" if rng.random() < 0.3 else "城镇", employer,
                        "platform" if via_platform else "roster", joined,
                        account_id if linked else None, linked, created))
    member_ids = await store.insert_members(conn, members)
    for member_id, m in zip(member_ids, members, strict=True):
        changes.append(("member", str(member_id), "joined" if m[14] == "platform" else "imported",
                        {"member_no": m[1], "org_id": m[0]}, "sandbox", m[18]))
        if m[17] is not None and m[14] == "roster":
            changes.append(("member", str(member_id), "certified", {"member_no": m[1]}, "self", m[17]))
    changes.sort(key=lambda c: c[5])    # the change log in the order things happened
    await store.log_changes(conn, changes)
    return demo, len(members), certified
