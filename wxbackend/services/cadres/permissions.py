"""Who may do what, and where: the permission catalogue and the subtree rule, in one place.

Every cadre belongs to one union and acts only inside that union's subtree (the union and
everything below it in the tree). A grant can only pass on what its grantor holds. Duties are
separated (三权分立): system administration (accounts, unions), security administration, and
audit administration (reads the audit trail, manages no accounts); nobody can alter the trail.
Later features add their permissions to :data:`CATALOGUE`.
"""

from __future__ import annotations

from dataclasses import dataclass

from wxbackend.services.errors import Forbidden

CATALOGUE: dict[str, str] = {
    "account.manage": "账号与权限管理",
    "account.verify": "账号定期核实",
    "org.manage": "工会组织管理",
    "member.review": "会员审核",
    "member.import": "会员导入",
    "member.export": "会员导出（含个人信息）",
    "channel.publish": "频道信息发布",
    "channel.review": "频道信息审核",
    "activity.manage": "活动管理",
    "service.manage": "普惠服务管理",
    "appeal.handle": "职工诉求（信访）办理",
    "proposal.handle": "提案办理",
    "notice.publish": "通知公告发布",
    "info.report": "信息报送与采用",
    "document.handle": "公文流转",
    "meeting.manage": "会议管理",
    "business.configure": "业务模块配置",
    "business.approve": "业务上线审批（领导小组）",
    "business.handle": "配置业务办理",
    "ledger.record": "线下办件台账登记",
    "kpi.read": "查看使用情况指标",
    "kpi.manage": "使用情况目标设定",
    "basedata.ledger": "基础数据账本监看（检查点、节点联署、告警）",
    "audit.read": "查看审计记录",
    "security.manage": "安全策略管理",
}
# What each duty may ever hold: the audit administrator reads the trail and nothing else; the
# system administrator manages accounts but cannot read the trail that watches it.
DUTY_LIMITS: dict[str, frozenset[str]] = {
    "audit": frozenset({"audit.read"}),
    "security": frozenset({"security.manage", "audit.read", "kpi.read"}),
    "system": frozenset(CATALOGUE) - {"audit.read", "security.manage"},
    "business": frozenset(CATALOGUE) - {"audit.read", "security.manage", "account.manage",
                                         "account.verify", "org.manage"},
}


@dataclass(frozen=True)
class Actor:
    """A signed-in cadre, as every service call sees it."""
    id: int
    username: str
    org_id: int
    org_path: str        # ltree path of the union: the subtree the actor may act in
    role: str            # operator | super_admin | cadre
    duty: str
    permissions: frozenset[str]
    ip: str = ""

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise Forbidden(f"您没有“{CATALOGUE.get(permission, permission)}”权限",
                            code="permission_missing")

    def covers(self, org_path: str) -> bool:
        """Is a union (by its ltree path) inside this actor's subtree?"""
        return org_path == self.org_path or org_path.startswith(self.org_path + ".")

    def require_within(self, org_path: str) -> None:
        if not self.covers(org_path):
            raise Forbidden("只能管理本单位及下级工会的数据", code="outside_subtree")


def grantable(grantor: Actor, permissions: set[str], duty: str) -> frozenset[str]:
    """What ``grantor`` may give to someone with ``duty``: only what it holds itself (the
    platform office, root of every union's authority, may give anything in the catalogue),
    and only what the duty allows."""
    unknown = permissions - set(CATALOGUE)
    if unknown:
        raise Forbidden(f"未知的权限：{', '.join(sorted(unknown))}", code="permission_unknown")
    beyond = set() if grantor.role == "operator" else permissions - grantor.permissions
    if beyond:
        raise Forbidden(f"不能授予自己没有的权限：{', '.join(sorted(beyond))}", code="grant_beyond_own")
    outside = permissions - DUTY_LIMITS[duty]
    if outside:
        raise Forbidden(f"该岗位不能持有这些权限（三权分立）：{', '.join(sorted(outside))}",
                        code="duty_conflict")
    return frozenset(permissions)
