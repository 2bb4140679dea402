"""The guided tours (操作培训): for each role, the steps a trainee takes, in Chinese, each opening
the page it is about and saying what the trainee should see there. A union can train its people
with them as they are. The walk-through tests (tests/browser/test_tours.py) take every step in
Chromium, acting as the step says (``action``) and checking what it says will be seen (``see``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

PHONE = "/sandbox/phone.html"


@dataclass(frozen=True)
class Step:
    title: str
    text: str                 # what to do
    page: str                 # what the tour opens
    see: str                  # what the trainee then sees on that page
    # sign_in | verifier_sign_in | redeem | follow | say:<text> | menu:<button>/<item> | mp:<action>
    action: str = ""


@dataclass(frozen=True)
class Tour:
    id: str                   # the demo cadres' ``tour`` (the worker's has no cadre)
    title: str
    who: str
    steps: tuple[Step, ...]
    account: str = "cadre"    # whose sign-in the tour shows: cadre, verifier (核销员) or none


def _sign_in(where: str) -> Step:
    return Step("登录工会干部工作台",
                f"用上方的演示账号登录{where}：输入登录名、密码和动态码（真实环境中，动态码在干部手机的"
                "身份验证器里）。登录后左侧是本账号能用的菜单，右上角有“退出”。",
                "/admin/", "退出", "sign_in")


TOURS: tuple[Tour, ...] = (
    Tour("worker", "职工：关注、咨询、报名", "一位已注册的职工，用演示手机操作",
         account="none", steps=(
        Step("关注公众号", "在演示手机左侧选择一位职工，点“关注公众号”。公众号会自动回复欢迎语。",
             PHONE, "欢迎关注川工之家", "follow"),
        Step("问公众号能办什么", "在聊天框输入“帮助”并发送。公众号按关键词回复可以办理的事项。",
             PHONE, "川工之家可以为您办理", "say:帮助"),
        Step("从菜单打开活动报名",
             "点底部菜单“工会服务”→“活动报名”。页面在手机的“网页”中打开，微信授权后即登录（演示环境中由模拟微信完成）。",
             PHONE, "工会活动", "menu:工会服务/活动报名"),
        Step("在小程序中登录",
             "切到“小程序”，点“微信登录”：小程序用 wx.login 的 code 换取会话，与真实小程序调用同一接口。",
             PHONE, "token", "mp:login"),
        Step("浏览活动和服务", "点“活动和服务”，列表中的项目可以直接报名；报名后在“我的报名”中出示核销码。",
             PHONE, "offerings", "mp:offerings"),
    )),
    Tour("grassroots", "基层工会干部：审核、活动、诉求", "锦江区一个基层工会的干部", (
        _sign_in("本单位的工作台"),
        Step("审核入会申请", "在“会员审核”中查看职工通过平台提交的入会申请，逐条通过或退回。",
             "/admin/#reviews", "会员审核"),
        Step("管理会员名册", "在“会员名册”中查询、导入和导出本单位会员；身份证号、手机号按规定脱敏显示。",
             "/admin/#members", "会员名册"),
        Step("发布活动与普惠服务", "在“活动与普惠”中发布活动、设置名额，查看报名和签到。",
             "/admin/#offerings", "活动与普惠"),
        Step("办理职工诉求", "在“事项办理”中处理分派给本单位的诉求和申请，注意办理时限。",
             "/admin/#work", "事项办理"),
        Step("查看本单位使用情况", "在“使用情况”中对照标准查看注册、入会、活动等指标。",
             "/admin/#kpi", "使用情况"),
    )),
    Tour("city", "市总工会超级管理员：账号、频道、监测", "成都市总工会的超级管理员", (
        _sign_in("成都市总工会的工作台"),
        Step("管理下级工会的账号", "在“账号管理”中为本单位干部创建账号、授予权限；更换超级管理员会留下备案。",
             "/admin/#accounts", "账号管理"),
        Step("定期核实账号", "在“定期核实”中确认本单位干部账号仍然在用，逾期未核实的账号会被停用。",
             "/admin/#verification", "定期核实"),
        Step("管理城市频道", "在“频道与文章”中编辑、审核和发布成都频道的文章。",
             "/admin/#channels", "频道与文章"),
        Step("查看全市使用情况", "在“使用情况”中看各区县的排名，未达标的单位标红，点击可逐级查看。",
             "/admin/#kpi", "使用情况"),
    )),
    Tour("merchant", "普惠商户核销员：核验券码", "为工会会员提供普惠服务的商户店员",
         account="verifier", steps=(
        Step("职工出示券码",
             "先扮演职工：在演示手机左侧选第一位职工（已领取本单位的普惠服务），切到“小程序”，点“微信登录”"
             "“我的报名”，在上方核销员可核销的服务（如观影优惠券）后点“出示核销码”。真实环境中职工出示二维码，"
             "店员扫码。",
             PHONE, "券码", "mp:code"),
        Step("核销员登录核销页",
             "用上方的核销员账号登录核销页（账号由主办工会在工作台创建，初始密码只显示一次）。",
             "/verify/", "券码", "verifier_sign_in"),
        Step("核销券码", "把上一步的券码粘贴到“券码”中，点“核销此券码”，核对后点“确认核销”。",
             "/verify/", "核销成功", "redeem"),
    )),
    Tour("office", "省平台办公室：全省账号与数据", "省总工会平台办公室的操作员", (
        _sign_in("平台管理端"),
        Step("为各级工会开通超级管理员", "在“账号管理”中为市（州）和产业工会创建超级管理员账号。",
             "/admin/#accounts", "账号管理"),
        Step("查看全省使用情况和情况通报",
             "在“使用情况”中按月、季、年查看全省各市（州）的指标和排名，下载情况通报。",
             "/admin/#kpi", "使用情况"),
        Step("核对基础数据账本", "在“基础数据账本”中查看账本的规模、各市节点的见证和告警。",
             "/admin/#basedata-ledger", "基础数据账本"),
    )),
)
BY_ID = {t.id: t for t in TOURS}


def as_data() -> list[dict]:
    return [asdict(t) for t in TOURS]
