"""The usage arrangement's indicators (`001_…` articles 5 and 9) and their standards, as data:
an indicator names the daily counters it is made of (:mod:`wxbackend.services.kpi.rollups`) or
the figure source it reads, and its standard. A new module's figures are one entry here.

Standards:
- ``target``: the union's registered-user targets, cumulative to the period's year
  (``registered_user_targets``);
- ``tiers``: a share that must reach 30 % / 60 % / 90 % in the union's year 1 / 2 / 3 on the
  platform (and 90 % after);
- ``monthly``: at least so many in each month (a quarter or a year: that many times the months);
- ``yearly``: at least so many in the year, judged on the year so far against the same share of
  the year's number (10 a year: 5 by the end of June);
- ``minimum``: a rate that must reach the figure (办结率 ≥ 90 %);
- ``usage``: a module's usage rate (使用率, `docs/casework.md`) against the yearly tiers the
  platform office sets for it (meetings 50/70/90 %, documents, notices and reports 70/80/90 %);
- none: reported and ranked.

Article 8's indicators (the office modules' usage, the completion of documents, proposals and
appeals) name their engine modules: a module not on the engine shows as not connected (未接入),
so the gap stays in every report until it is built.
"""

from __future__ import annotations

from dataclasses import dataclass

SHARE_TIERS = (0.3, 0.6, 0.9)


@dataclass(frozen=True)
class Indicator:
    code: str
    name: str
    unit: str                                # 人, 个, 篇, 次, %
    counters: tuple[str, ...] = ()           # summed: the figure, or a share's numerator
    of: tuple[str, ...] = ()                 # a share's denominator (with ``counters``)
    cumulative: bool = False                 # from the beginning to the period's end
    source: str = "counters"                 # or 'completion' (办结率) or 'usage' (使用率)
    modules: tuple[str, ...] = ()            # engine modules the completion or usage is of (all: ())
    standard: str | None = None              # target, tiers, monthly, yearly, minimum
    amount: float | None = None              # the standard's number



INDICATORS: tuple[Indicator, ...] = (
    Indicator("registered", "注册用户", "人", ("registered",), cumulative=True, standard="target"),
    Indicator("certified_share", "认证会员占注册用户比例", "%", ("certified",), of=("registered",),
              cumulative=True, standard="tiers"),
    Indicator("members_via_platform", "通过平台新入会会员占比", "%", ("joined_platform",),
              of=("joined_platform", "joined_roster"), standard="tiers"),
    Indicator("unions_via_platform", "通过平台新建基层工会占比", "%", ("founded_platform",),
              of=("founded_platform", "founded_other"), standard="tiers"),
    Indicator("completion", "业务办结率", "%", source="completion", standard="minimum", amount=0.9),
    Indicator("articles", "频道发布信息", "篇", ("articles",), standard="monthly", amount=50),
    Indicator("visits", "频道访问量", "次", ("visits",)),
    Indicator("services", "开展普惠服务", "项", ("services",), standard="yearly", amount=10),
    Indicator("activities", "开展活动", "项", ("activities",), standard="yearly", amount=10),
    Indicator("cadres", "录入工会干部", "人", ("cadres",), cumulative=True),
    # Article 8: the province's departments' use of the office modules.
    Indicator("usage_meetings", "会议使用平台比例", "%", source="usage", standard="usage",
              modules=("meeting", "meeting_external")),
    Indicator("usage_documents", "公文流转使用平台比例", "%", source="usage", standard="usage",
              modules=("document_out", "document_in")),
    Indicator("usage_notices", "通知公告使用平台比例", "%", source="usage", standard="usage",
              modules=("notice",)),
    Indicator("usage_reports", "信息报送使用平台比例", "%", source="usage", standard="usage",
              modules=("info_report",)),
    Indicator("completion_documents", "公文流转办结率", "%", source="completion", standard="minimum",
              amount=0.9, modules=("document_out", "document_in")),
    Indicator("completion_proposals", "提案办结率", "%", source="completion", standard="minimum",
              amount=0.9, modules=("proposal",)),
    Indicator("completion_appeals", "职工诉求（信访）办结率", "%", source="completion",
              standard="minimum", amount=0.9, modules=("appeal",)),
)
BY_CODE = {i.code: i for i in INDICATORS}


def counters_of(indicators: tuple[Indicator, ...] = INDICATORS) -> list[str]:
    return sorted({c for i in indicators for c in (*i.counters, *i.of)})
