"""Documents over HTTP: Chengdu's office sets its issuer code and principal, drafts an important
document (a classified one is refused), the principal alone signs it, it is numbered once (the
second request is 409), distributed to a union below (one beside is refused) and arrives in
that union's queue; the registry and the printable page; every answer matches the document."""

from __future__ import annotations

import pytest

from tests.api.test_admin import sign_in
from tests.api.test_openapi import ADMIN_DOC, Contract
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp
from wxbackend.store.membership import orgs as org_store

DOC = {"title": "关于报送2026年职工之家建设情况的报告", "main_to": "四川省总工会",
       "body": "现将我市2026年职工之家建设情况报告如下。", "important": True, "urgency": "加急"}
ACTIONS = "/admin/v1/documents/{document_id}/actions"


@pytest.fixture
async def office(server, rt, db):
    """Chengdu's head of office (super admin, documents) and its principal, both signed in."""
    operator = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(operator.totp_uri),
                                   ip="10.0.0.1", user_agent="test")).actor
    chengdu = await org_id(db, "SC-510100")
    head = await rt.cadres.create_account(
        actor, username="libiao", display_name="李标", org_id=chengdu, role="super_admin", duty="system",
        password=PASSWORD, permissions={"document.handle", "account.manage"})
    desk, csrf = await sign_in(server, "libiao", otp(head.totp_uri))
    desk.headers["X-CSRF-Token"] = csrf
    made = await desk.post(f"{server}/admin/v1/cadres", json={
        "username": "zhuxi", "display_name": "朱席", "org_id": chengdu, "role": "cadre",
        "duty": "business", "permissions": ["document.handle"], "password": PASSWORD})
    assert made.status_code == 201, made.text
    totp = made.json()["totp_uri"]
    principal, csrf = await sign_in(server, "zhuxi", otp(totp) if totp else "")
    principal.headers["X-CSRF-Token"] = csrf
    yield desk, principal, made.json()["id"]
    for browser in (desk, principal):
        await browser.aclose()


async def test_an_important_document_signed_numbered_and_distributed(server, rt, db, office) -> None:
    admin = Contract(ADMIN_DOC)
    desk, principal, principal_id = office
    chengdu = await org_id(db, "SC-510100")
    below = (await org_store.create_grassroots(
        db, parent_id=chengdu, name="成都天府软件有限公司工会", credit_code=None,
        employer_name="成都天府软件有限公司", region_code=None, founded_via_platform=False))["id"]

    async def call(method: str, template: str, status: int, **kwargs) -> dict:
        url = server + template.format(**kwargs.pop("path", {}))
        response = await getattr(desk if kwargs.pop("as_principal", False) is False else principal,
                                 method.lower())(url, **kwargs)
        assert response.status_code == status, f"{method} {url}: {response.status_code} {response.text}"
        return admin.check(template, method.lower(), response)

    settings = await call("PUT", "/admin/v1/document-office", 200, json={
        "issuer_code": "成工办字", "issuer_mark": "成都市总工会文件", "issuer_name": "成都市总工会",
        "principal_id": principal_id})
    assert settings["office"]["principal_name"] == "朱席"
    await call("GET", "/admin/v1/document-office", 200)

    refused = await call("POST", "/admin/v1/documents", 400, json={**DOC, "classification": "机密"})
    assert refused["error"]["code"] == "classified_document"
    assert refused["error"]["message"].startswith("涉密公文不得在互联网平台处理")
    assert await db.fetchval("SELECT count(*) FROM documents") == 0

    page = await call("POST", "/admin/v1/documents", 201, json=DOC)
    doc_id = page["document"]["id"]
    path = {"document_id": doc_id}
    assert page["document"]["principal_required"] is True
    drafts = (await call("GET", "/admin/v1/documents/mine", 200))["drafts"]
    assert [d["document_id"] for d in drafts] == [doc_id]
    await call("PUT", "/admin/v1/documents/{document_id}", 200, path=path, json={"copy_to": "市委办公室"})
    await call("POST", ACTIONS, 200, path=path, json={"action": "submit"})
    early = await call("POST", ACTIONS, 409, path=path, json={"action": "number"})
    assert early["error"]["code"] == "not_at_step"

    # 核稿 through the engine's generic step.
    item = (await call("GET", "/admin/v1/documents/{document_id}", 200, path=path))["item"]
    [task] = [t for s in item["steps"] if s["status"] == "open" for t in s["tasks"] if t["mine"]]
    checked = await desk.post(f"{server}/admin/v1/casework/items/{item['id']}/actions",
                              json={"action": "pass", "task_id": task["id"]})
    admin.check("/admin/v1/casework/items/{item_id}/actions", "post", checked)

    not_principal = await call("POST", ACTIONS, 403, path=path, json={"action": "sign"})
    assert not_principal["error"]["code"] == "principal_only"
    await call("POST", ACTIONS, 200, path=path, as_principal=True, json={"action": "sign", "opinion": "同意"})
    item = (await call("GET", "/admin/v1/documents/{document_id}", 200, path=path))["item"]
    [task] = [t for s in item["steps"] if s["status"] == "open" for t in s["tasks"] if t["mine"]]
    rechecked = await desk.post(f"{server}/admin/v1/casework/items/{item['id']}/actions",
                                json={"action": "pass", "task_id": task["id"]})
    assert rechecked.status_code == 200

    numbered = await call("POST", ACTIONS, 200, path=path, json={"action": "number"})
    assert numbered["result"]["doc_number"] == f"成工办字〔{rt.clock():%Y}〕1号"
    twice = await call("POST", ACTIONS, 409, path=path, json={"action": "number"})
    assert twice["error"]["code"] == "already_numbered"
    assert numbered["result"]["doc_number"] in twice["error"]["message"]
    await call("POST", ACTIONS, 200, path=path, json={"action": "seal"})
    outside = await call("POST", ACTIONS, 403, path=path,
                         json={"action": "distribute", "org_ids": [await org_id(db, "SC-511700")]})
    assert outside["error"]["code"] == "outside_subtree"
    sent = await call("POST", ACTIONS, 200, path=path, json={"action": "distribute", "org_ids": [below]})
    assert sent["result"]["recipients"] == 1

    view = await call("GET", "/admin/v1/documents/{document_id}", 200, path=path)
    assert view["document"]["signer"] == "朱席" and view["document"]["sealed"]
    assert [c["org_id"] for c in view["copies"]] == [below]
    registry = await call("GET", "/admin/v1/documents", 200, params={"direction": "out"})
    assert [r["doc_number"] for r in registry["documents"]] == [numbered["result"]["doc_number"]]
    incoming = await call("GET", "/admin/v1/documents", 200, params={"direction": "in", "org_id": below})
    assert [r["sender"] for r in incoming["documents"]] == ["成都市总工会"]
    bad = await call("GET", "/admin/v1/documents", 400, params={"direction": "sideways"})
    assert bad["error"]["code"] == "invalid_filter"
    missing = await call("GET", "/admin/v1/documents/{document_id}", 404, path={"document_id": 999999})
    assert missing["error"]["code"] == "document_not_found"

    printable = await desk.get(f"{server}/static/admin/document-print.html")
    assert printable.status_code == 200 and "document-print.js" in printable.text
