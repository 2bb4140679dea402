"""``wxbackend seed``: the Sichuan union tree, the province's registered-user targets and the
first keyword rules. Idempotent: running it again changes nothing that is already right, and
never overwrites a keyword rule a cadre has edited.
"""

from __future__ import annotations

import csv
import io
import tomllib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from importlib import resources

import asyncpg

from wxbackend.services.casework.calendar import seed_calendar
from wxbackend.services.casework.registry import MODULES
from wxbackend.services.casework.worklists import seed_definitions
from wxbackend.services.clock import china_now
from wxbackend.services.kpi.targets import seed_target
from wxbackend.services.membership.idnumbers import uscc_check_char
from wxbackend.store.channels import channels as channel_store
from wxbackend.store.identity import accounts
from wxbackend.store.membership import members, orgs
from wxbackend.store.messaging import keywords

PROVINCE_CODE = "SC"
PROVINCE_NAME = "四川省总工会"
PROVINCE_DIVISION = "510000"
# The provincial industry unions the usage arrangement names, and the holder for the other 68
# provincial industry (bureau) and enterprise-group unions, whose targets are given together.
INDUSTRY_UNIONS = {
    "省教科文卫工会": ("SC-IND-JKWW", "四川省教科文卫工会", "industry"),
    "省机电冶煤工会": ("SC-IND-JDYM", "四川省机电冶煤工会", "industry"),
    "省财贸轻化纺工会": ("SC-IND-CMQHF", "四川省财贸轻化纺工会", "industry"),
}
OTHER_INDUSTRY = ("SC-IND-OTHER", "其他省产业（局）、企业集团（公司）工会", "industry_holder")
YEARS = (2020, 2021, 2022)


@dataclass(frozen=True)
class SeedReport:
    orgs: dict[str, int]
    targets: int
    new_keyword_rules: int
    regions: int
    channels: int = 0
    calendar_years: int = 0
    processes: int = 0


def _data(name: str) -> str:
    return resources.files("wxbackend.data").joinpath(name).read_text(encoding="utf-8")


def _csv(name: str) -> list[dict[str, str]]:
    lines = [line for line in _data(name).splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


def _persons(wan: str) -> int:
    """Targets are given in 万人 (10,000 people), some with one decimal (0.5, 15.2)."""
    return int(Decimal(wan) * 10_000)


def keyword_seed() -> list[dict]:
    return tomllib.loads(_data("keyword_rules.toml"))["rule"]


async def seed(conn: asyncpg.Connection, now: datetime | None = None) -> SeedReport:
    async with conn.transaction():
        province = await orgs.upsert(conn, code=PROVINCE_CODE, name=PROVINCE_NAME,
                                     short_name="省总工会", kind="province", parent_id=None,
                                     division_code=PROVINCE_DIVISION)
        by_short: dict[str, int] = {}
        for city in _csv("sichuan_cities.csv"):
            by_short[city["short"]] = await orgs.upsert(
                conn, code=f"SC-{city['code']}", name=f"{city['name']}总工会",
                short_name=city["short"], kind="city", parent_id=province,
                division_code=city["code"])
        for short, (code, name, kind) in INDUSTRY_UNIONS.items():
            by_short[short] = await orgs.upsert(conn, code=code, name=name, short_name=short,
                                                kind=kind, parent_id=province, division_code=None)
        # One channel each for the province, every city union and every provincial industry
        # union (not for the holder of the other industry unions' targets, which is no union).
        made = [await channel_store.upsert(conn, org_id=province, slug="sc", name=PROVINCE_NAME)]
        for city in _csv("sichuan_cities.csv"):
            made.append(await channel_store.upsert(conn, org_id=by_short[city["short"]],
                                              slug=city["code"], name=f"{city['name']}总工会"))
        for short, (code, name, _kind) in INDUSTRY_UNIONS.items():
            made.append(await channel_store.upsert(conn, org_id=by_short[short],
                                              slug=code.removeprefix("SC-").lower(), name=name))
        code, name, kind = OTHER_INDUSTRY
        other = await orgs.upsert(conn, code=code, name=name, short_name="其他省产业（企业）工会",
                                  kind=kind, parent_id=province, division_code=None)
        targets = 0
        for row in _csv("registered_user_targets.csv"):
            org_id = by_short.get(row["unit"])
            if org_id is None:
                if not row["unit"].startswith("其他省产业"):
                    raise ValueError(f"target for unknown unit {row['unit']}")
                org_id = other
            for year in YEARS:
                # Through the targets' history, so the annex figures are its first entries.
                await seed_target(conn, org_id, year, _persons(row[f"y{year}"]), now or china_now())
                targets += 1
        rules = await keywords.insert_missing(conn, keyword_seed())
        regions = [(r["code"], r["name"], r["city_code"], r["level"])
                   for r in _csv("sichuan_regions.csv")]
        await accounts.upsert_regions(conn, regions)
        counts = await orgs.count_by_kind(conn)
        calendar_years = await seed_calendar(conn, now or china_now())
        processes = await seed_definitions(conn, list(MODULES), now or china_now())
    return SeedReport(orgs=counts, targets=targets, new_keyword_rules=rules, regions=len(regions),
                      channels=len(made), calendar_years=calendar_years, processes=processes)


# Example grassroots unions for a local run (`seed --demo`), so the join and certification pages
# have something to find. Production never runs it; the names say 示例.
DEMO_UNIONS = (
    ("SC-510100", "510104", "915101040000000001", "成都示例软件有限公司"),
    ("SC-510100", "510107", "915101070000000002", "成都示例物流有限公司"),
    ("SC-511700", "511702", "915117020000000003", "达州示例钢铁有限公司"),
)


async def seed_demo(conn: asyncpg.Connection) -> int:
    """Add the example unions that are missing; return how many were added."""
    added = 0
    async with conn.transaction():
        for parent_code, region, code, employer in DEMO_UNIONS:
            credit_code = code[:17] + uscc_check_char(code[:17])
            if await members.union_exists_for(conn, credit_code):
                continue
            parent = await orgs.by_code(conn, parent_code)
            await orgs.create_grassroots(conn, parent_id=parent["id"], name=f"{employer}工会（示例）",
                                         credit_code=credit_code, employer_name=employer,
                                         region_code=region, founded_via_platform=False)
            added += 1
    return added
