"""Information-report rankings (排名): the points and counts per period for each union below the
viewer, its subtree included, and the same as a watermarked workbook.

Mixed into :class:`~wxbackend.services.office.info_reports.reports.InfoReports`, whose
constructor gives the pool, settings, audit trail and clock declared here.
"""

from __future__ import annotations

import asyncio

import asyncpg

from wxbackend.config import OfficeSettings
from wxbackend.infra.xlsx import Watermark, watermarked_xlsx
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.rates import period_bounds
from wxbackend.services.clock import CHINA, Clock
from wxbackend.services.errors import InvalidInput
from wxbackend.services.office.info_reports.process import PERMISSION
from wxbackend.store.office import info_reports as store

RANKED_CHILDREN = 200       # more unions below than this: only those with reports are listed


class Rankings:
    _pool: asyncpg.Pool
    _s: OfficeSettings
    _audit: AuditTrail
    _now: Clock

    async def rankings(self, actor: Actor, period: str) -> dict:
        """The unions directly below the viewer, each with its whole subtree, ranked by points;
        the viewer's own reports apart (本级) and the subtree's total."""
        if PERMISSION not in actor.permissions and "kpi.read" not in actor.permissions:
            actor.require(PERMISSION)
        start, end = period_bounds(period)
        if start > self._now():
            raise InvalidInput("该期间尚未开始，不能排名", code="period_future")
        async with self._pool.acquire() as conn:
            rows = await store.tallies(conn, actor.org_path, start, end)
            kids = await store.children(conn, actor.org_id, RANKED_CHILDREN + 1)
            own = await store.org(conn, actor.org_id)
            named = {k["path"]: k for k in kids}
            missing = sorted({r["grp"] for r in rows if r["grp"] and r["grp"] not in named})
            if missing:
                named.update({o["path"]: o for o in await store.orgs_by_path(conn, missing)})
        groups: dict[str, dict] = {}
        if len(kids) <= RANKED_CHILDREN:
            for k in kids:
                groups[k["path"]] = self._tally()
        for r in rows:
            tally = groups.setdefault(r["grp"], self._tally())
            if r["kind"] == "submitted":
                tally["submitted"] += r["n"]
                tally["late"] += r["late"]
            else:
                tally["adopted"][r["kind"]] += r["n"]
                tally["points"] += r["points"]
        total = self._tally()
        for tally in groups.values():
            total["submitted"] += tally["submitted"]
            total["late"] += tally["late"]
            total["points"] += tally["points"]
            for level, n in tally["adopted"].items():
                total["adopted"][level] += n
        unions = sorted(({"org_id": named[path]["id"], "org_name": named[path]["name"], **tally}
                         for path, tally in groups.items() if path),
                        key=lambda u: (-u["points"], -sum(u["adopted"].values()), -u["submitted"],
                                       u["org_id"]))
        rank, previous = 0, None
        for n, union in enumerate(unions, 1):
            key = (union["points"], sum(union["adopted"].values()))
            rank = rank if key == previous else n
            previous = key
            union["rank"] = rank
        return {"period": period, "from": start.isoformat(), "to": end.isoformat(),
                "org_id": actor.org_id, "org_name": own["name"], "total": total,
                "own": groups.get("", self._tally()), "unions": unions,
                "points": {"city": self._s.points_city, "province": self._s.points_province,
                           "national": self._s.points_national},
                "late_days": self._s.report_late_days}

    @staticmethod
    def _tally() -> dict:
        return {"submitted": 0, "late": 0, "points": 0,
                "adopted": {"county": 0, "city": 0, "province": 0, "national": 0}}

    async def rankings_xlsx(self, actor: Actor, period: str) -> tuple[bytes, str]:
        view = await self.rankings(actor, period)
        now = self._now().astimezone(CHINA)

        def line(rank: object, name: str, t: dict) -> list:
            a = t["adopted"]
            return [rank, name, t["submitted"], a["county"], a["city"], a["province"], a["national"],
                    t["points"], t["late"]]

        rows = [line(u["rank"], u["org_name"], u) for u in view["unions"]]
        rows += [line("本级", view["org_name"], view["own"]), line("合计", view["org_name"], view["total"])]
        async with self._pool.acquire() as conn, conn.transaction():
            await self._audit.acted(conn, actor, "info_report.rankings_export", f"org:{actor.org_id}",
                                {"period": period})
        data = await asyncio.get_running_loop().run_in_executor(None, lambda: watermarked_xlsx(
            title=f"{view['org_name']}信息报送排名（{period}）", sheet="排名",
            header=["名次", "工会", "报送", "县级采用", "市级采用", "省级采用", "全总采用", "积分",
                    "逾期报送（不计分）"],
            rows=rows, watermark=Watermark(actor.username, now.strftime("%Y-%m-%d %H:%M"))))
        return data, f"信息报送排名-{period}.xlsx"
