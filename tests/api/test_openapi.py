"""The three OpenAPI documents — ``/mp/v1`` (Mini Program), ``/api/v1`` (shared platform API) and
``/admin/v1`` (cadre console) — stay true to the application: valid OpenAPI 3.1, the same paths
and methods as the real route table, served byte for byte, and real responses that match the
documented schemas."""

from __future__ import annotations

import inspect
import json
import re
import secrets
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import referencing
import tornado.routing
import tornado.web
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing.jsonschema import DRAFT202012

from tests.conftest import MP_APPID, MP_SECRET, late_evening
from tests.services.cadres.test_cadres import PASSWORD, otp
from tests.services.membership.test_membership import join_form
from wxbackend.app import make_app
from wxbackend.handlers.base import BaseHandler
from wxbackend.services.identity.platform import SCOPES, sign, string_to_sign
from wxbackend.services.membership.idnumbers import id_check_char, uscc_check_char
from wxbackend.services.membership.membership import ID_COLUMN, PHONE_COLUMN
from wxbackend.store.membership import members as member_store
from wxbackend.store.membership import orgs as org_store

ROOT = Path(__file__).resolve().parents[2]
MP_DOC = "miniprogram_api/openapi.json"
API_DOC = "wxbackend/data/openapi_api_v1.json"
ADMIN_DOC = "wxbackend/data/openapi_admin_v1.json"
DOCS = (MP_DOC, API_DOC, ADMIN_DOC)
PREFIXES = {MP_DOC: "/mp/v1/", API_DOC: "/api/v1/", ADMIN_DOC: "/admin/v1/"}
SERVED = {name: prefix + "openapi.json" for name, prefix in PREFIXES.items()}
HTTP_METHODS = ("get", "post", "put", "delete", "patch")
OPERATION_KEYS = (*HTTP_METHODS, "head", "options", "trace")
JSON = "application/json"


def load(name: str) -> dict:
    return json.loads((ROOT / name).read_text(encoding="utf-8"))


def operations(doc: dict) -> dict[str, set[str]]:
    return {path: {m for m in item if m in OPERATION_KEYS} for path, item in doc["paths"].items()}


# --- valid OpenAPI 3.1 -----------------------------------------------------------------------
def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _follow(doc: dict, ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def structural_check(doc: dict) -> None:
    """What holds whether or not openapi-spec-validator is installed."""
    assert doc["openapi"].startswith("3.1.")
    assert isinstance(doc["info"]["title"], str) and isinstance(doc["info"]["version"], str)
    assert doc["servers"] == [{"url": "/"}]
    schemes = doc["components"]["securitySchemes"]
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        for method in operations(doc)[path]:
            op = item[method]
            assert op["summary"] and op["responses"], f"{method} {path}"
            for code in op["responses"]:
                assert re.fullmatch(r"[1-5][0-9]{2}", code), f"{method} {path}: {code}"
            for requirement in op.get("security", doc.get("security", [])):
                assert set(requirement) <= set(schemes), f"{method} {path}: {requirement}"
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), f"{method} {path}"
    for ref in _refs(doc):
        _follow(doc, ref)
    ids = [item[m]["operationId"] for path, item in doc["paths"].items() for m in operations(doc)[path]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", DOCS)
def test_documents_are_valid_openapi_31(name: str) -> None:
    doc = load(name)
    structural_check(doc)
    OpenAPIV31SpecValidator(doc).validate()


def test_mini_program_document_names_bearer_and_shared_schemas() -> None:
    doc = load(MP_DOC)
    bearer = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    assert "/mp/v1/session" in bearer["description"]
    assert all(path.startswith("/mp/v1/") for path in doc["paths"])
    assert {"Account", "Error", "Region"} <= set(doc["components"]["schemas"])


def test_signature_example_is_what_the_server_computes() -> None:
    info = load(API_DOC)["info"]
    ex = info["x-signature-example"]
    args = (ex["method"], ex["path"], ex["query"], ex["timestamp"], ex["nonce"], ex["body"].encode())
    assert ex["string_to_sign"] == string_to_sign(*args)
    assert ex["signature"] == sign(ex["secret"], *args)
    for text in (ex["signature"], ex["body"], *ex["string_to_sign"].split("\n")):
        assert text in info["description"]
    for header in ("X-App-Id", "X-Timestamp", "X-Nonce", "X-Signature"):
        assert header in info["description"]


def test_signed_operations_name_known_scopes() -> None:
    doc = load(API_DOC)
    schemes = doc["components"]["securitySchemes"]
    assert {(s["in"], s["name"]) for s in schemes.values() if s["type"] == "apiKey"} >= {
        ("header", "X-App-Id"), ("header", "X-Timestamp"), ("header", "X-Nonce"), ("header", "X-Signature")}
    signed = 0
    for path, item in doc["paths"].items():
        for method in operations(doc)[path]:
            op = item[method]
            scope = op.get("x-required-scope")
            needed = [scope] if isinstance(scope, str) else scope or []
            assert set(needed) <= set(SCOPES), f"{method} {path}: {needed}"
            assert set(op.get("x-optional-scopes", [])) <= set(SCOPES)
            if any("signature" in req for req in op.get("security", [])):
                signed += 1
                assert needed, f"{method} {path} is signed but names no scope"
                assert {"401", "403"} <= set(op["responses"])
    assert signed == 10   # resolve, link, profile; the usage report and trend; the ledger's five


# --- the real route table ----------------------------------------------------------------------
def implemented_methods(handler: type) -> set[str]:
    """HTTP methods the handler class (or its bases below BaseHandler) defines."""
    return {m for cls in handler.__mro__ if issubclass(cls, BaseHandler) and cls is not BaseHandler
            for m in HTTP_METHODS if m in vars(cls)}


def openapi_path(pattern: str, handler: type) -> str:
    """``/api/v1/accounts/([0-9a-fA-F-]{36})$`` → ``/api/v1/accounts/{account_id}``, the names
    taken from the handler method's arguments."""
    method = getattr(handler, sorted(implemented_methods(handler))[0])
    names = iter(list(inspect.signature(method).parameters)[1:])
    path = re.sub(r"\((?!\?:)(?:\?P<(\w+)>)?[^()]*\)",
                  lambda m: "{" + (m.group(1) or next(names)) + "}", pattern.removesuffix("$"))
    path = path.replace("\\", "")
    assert not re.search(r"[()\[\]*+?^$|]", path), f"route not understood: {pattern}"
    return path


def route_table(app: tornado.web.Application) -> dict[str, type]:
    found: dict[str, type] = {}
    seen: set[int] = set()

    def walk(router: tornado.routing.RuleRouter) -> None:
        if id(router) in seen:
            return
        seen.add(id(router))
        for rule in router.rules:
            if isinstance(rule.target, tornado.routing.RuleRouter):
                walk(rule.target)
                continue
            regex = getattr(rule.matcher, "regex", None)
            if regex is None or not isinstance(rule.target, type):
                continue
            if regex.pattern.startswith(tuple(PREFIXES.values())):
                path = openapi_path(regex.pattern, rule.target)
                assert path not in found, f"two routes for {path}"
                found[path] = rule.target

    walk(app.default_router)
    walk(app.wildcard_router)
    return found


async def test_documents_match_the_route_table(rt) -> None:
    routes = route_table(make_app(rt))
    assert "/api/v1/accounts/{account_id}" in routes
    for name, prefix in PREFIXES.items():
        documented = operations(load(name))
        served = {path: implemented_methods(handler) for path, handler in routes.items()
                  if path.startswith(prefix)}
        assert set(documented) == set(served), (
            f"{name}: undocumented {sorted(set(served) - set(documented))}, "
            f"not served {sorted(set(documented) - set(served))}")
        for path, methods in served.items():
            assert methods, f"{path}: no methods"
            assert documented[path] == methods, f"{name} {path}: documented {documented[path]}, "\
                f"implemented {methods}"


@pytest.mark.parametrize("name", DOCS)
async def test_served_documents_are_the_files(http, server, name: str) -> None:
    response = await http.get(server + SERVED[name])
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(JSON)
    assert response.content == (ROOT / name).read_bytes()


# --- real responses against the documented schemas --------------------------------------------
class Contract:
    """Validates responses against one document's response schemas (JSON Schema 2020-12)."""

    def __init__(self, name: str) -> None:
        self.jsonschema = jsonschema
        self.doc = load(name)
        self.uri = f"urn:openapi:{name}"
        self.registry = referencing.Registry().with_resource(self.uri, DRAFT202012.create_resource(self.doc))

    def check(self, path: str, method: str, response: Any) -> Any:
        status = str(response.status_code)
        responses = self.doc["paths"][path][method]["responses"]
        assert status in responses, f"{method.upper()} {path} answered {status}, not documented: " \
                                    f"{response.text}"
        pointer = "#/" + "/".join(p.replace("~", "~0").replace("/", "~1")
                                  for p in ("paths", path, method, "responses", status))
        documented = responses[status]
        if "$ref" in documented:
            pointer, documented = documented["$ref"], _follow(self.doc, documented["$ref"])
        for name, header in documented.get("headers", {}).items():
            header = _follow(self.doc, header["$ref"]) if "$ref" in header else header
            assert name in response.headers, f"{method.upper()} {path} {status}: no {name} header"
            self._validator(header["schema"]).validate(response.headers[name])
        if "content" not in documented:
            return None
        media = response.headers["Content-Type"].split(";")[0].strip()
        assert media in documented["content"], f"{method.upper()} {path} {status} answered {media}, " \
                                               f"documented {sorted(documented['content'])}"
        if media != JSON:
            return response.content
        body = response.json()
        self._validator({"$ref": f"{self.uri}{pointer}/content/application~1json/schema"}).validate(body)
        return body

    def _validator(self, schema: dict) -> Any:
        validator = self.jsonschema.Draft202012Validator
        return validator(schema, registry=self.registry, format_checker=validator.FORMAT_CHECKER)


@pytest.fixture
def mini_program(fake_wechat):
    try:
        fake_wechat.add_app(MP_APPID, MP_SECRET)
    except ValueError:  # already registered by a shared fixture
        pass
    return fake_wechat


async def _sign_in(http, server, fake, contract: Contract, openid: str) -> tuple[str, dict]:
    fake.mp_user(openid, unionid=f"union-{openid}")
    response = await http.post(f"{server}/mp/v1/session", json={"code": fake.issue_js_code(openid, MP_APPID)})
    body = contract.check("/mp/v1/session", "post", response)
    assert response.status_code == 200
    return body["token"], body["account"]


async def test_mini_program_responses_match_the_document(http, server, mini_program) -> None:
    mp = Contract(MP_DOC)
    regions = await http.get(f"{server}/mp/v1/regions")
    body = mp.check("/mp/v1/regions", "get", regions)
    assert regions.status_code == 200 and body["regions"]
    county = next(r for r in body["regions"] if r["level"] == "county")

    anonymous = await http.get(f"{server}/mp/v1/me")
    assert anonymous.status_code == 401
    assert mp.check("/mp/v1/me", "get", anonymous)["error"]["code"] == "unauthenticated"

    token, account = await _sign_in(http, server, mini_program, mp, "o-openapi-worker")
    auth = {"Authorization": f"Bearer {token}"}
    me = await http.get(f"{server}/mp/v1/me", headers=auth)
    version = mp.check("/mp/v1/me", "get", me)["privacy_version"]
    assert me.status_code == 200

    phone = await http.post(f"{server}/mp/v1/phone", headers=auth,
                            json={"code": mini_program.issue_phone_code("13800138000", MP_APPID)})
    assert phone.status_code == 200
    assert mp.check("/mp/v1/phone", "post", phone)["account"]["phone"] == "138****8000"
    outdated = await http.post(f"{server}/mp/v1/me/privacy", headers=auth, json={"version": "1999-01"})
    assert mp.check("/mp/v1/me/privacy", "post", outdated)["error"]["code"] == "privacy_version_outdated"
    accepted = await http.post(f"{server}/mp/v1/me/privacy", headers=auth, json={"version": version})
    assert accepted.status_code == 200
    mp.check("/mp/v1/me/privacy", "post", accepted)
    region = await http.put(f"{server}/mp/v1/me/region", headers=auth, json={"region_code": county["code"]})
    assert region.status_code == 200
    assert mp.check("/mp/v1/me/region", "put", region)["account"]["registered"] is True

    data = await http.get(f"{server}/mp/v1/me/data", headers=auth)
    assert data.status_code == 200
    exported = mp.check("/mp/v1/me/data", "get", data)
    assert exported["account"]["id"] == account["id"] and exported["account"]["phone"] == "13800138000"
    unconfirmed = await http.post(f"{server}/mp/v1/me/cancel", headers=auth, json={"confirm": "yes"})
    assert mp.check("/mp/v1/me/cancel", "post", unconfirmed)["error"]["code"] == "confirm_required"

    logout = await http.post(f"{server}/mp/v1/logout", headers=auth)
    assert logout.status_code == 200
    mp.check("/mp/v1/logout", "post", logout)
    after = await http.get(f"{server}/mp/v1/me/data", headers=auth)
    assert after.status_code == 401
    mp.check("/mp/v1/me/data", "get", after)

    token, _ = await _sign_in(http, server, mini_program, mp, "o-openapi-leaver")
    cancelled = await http.post(f"{server}/mp/v1/me/cancel", headers={"Authorization": f"Bearer {token}"},
                                json={"confirm": "注销"})
    assert cancelled.status_code == 200
    mp.check("/mp/v1/me/cancel", "post", cancelled)


async def test_mini_program_membership_responses_match_the_document(http, server, rt, db,
                                                                    mini_program) -> None:
    """Find a union, join and withdraw, certify (a miss, then the roster's record), the member
    card, a transfer and a founding: every answer as documented, ID numbers and phones masked."""
    mp = Contract(MP_DOC)
    chengdu = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
    tianfu = (await org_store.create_grassroots(
        db, parent_id=chengdu, name="成都天府软件有限公司工会", credit_code=None,
        employer_name="成都天府软件有限公司", region_code=None, founded_via_platform=False))["id"]
    jinjiang = (await org_store.create_grassroots(
        db, parent_id=chengdu, name="锦江宾馆工会", credit_code=None, employer_name=None,
        region_code="510104", founded_via_platform=False))["id"]
    number = "51010419900307131" + id_check_char("51010419900307131")
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    masked = "5101**********" + number[-4:]

    anonymous = await http.get(f"{server}/mp/v1/membership")
    assert anonymous.status_code == 401
    assert mp.check("/mp/v1/membership", "get", anonymous)["error"]["code"] == "unauthenticated"

    token, _ = await _sign_in(http, server, mini_program, mp, "o-openapi-member")
    auth = {"Authorization": f"Bearer {token}"}
    me = await http.get(f"{server}/mp/v1/me", headers=auth)
    version = mp.check("/mp/v1/me", "get", me)["privacy_version"]

    async def call(method: str, path: str, status: int, template: str | None = None, **kwargs) -> Any:
        response = await http.request(method, server + path, headers=auth, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return mp.check(template or path, method.lower(), response)

    # --- finding a union
    assert (await call("GET", "/mp/v1/unions", 400))["error"]["code"] == "search_empty"
    short = await call("GET", "/mp/v1/unions", 400, params={"q": "天"})
    assert short["error"]["code"] == "search_too_short"
    found = (await call("GET", "/mp/v1/unions", 200, params={"q": "天府软件"}))["unions"]
    assert found == [{"id": tianfu, "name": "成都天府软件有限公司工会",
                      "employer_name": "成都天府软件有限公司", "region_code": None, "region_name": None,
                      "parent_name": "成都市总工会"}]
    in_city = (await call("GET", "/mp/v1/unions", 200, params={"region": "510100"}))["unions"]
    assert [(u["id"], u["region_name"], u["employer_name"]) for u in in_city] == [(jinjiang, "锦江区", None)]

    # --- not a member yet
    assert (await call("GET", "/mp/v1/membership/card.png", 403))["error"]["code"] == "not_a_member"
    assert await call("GET", "/mp/v1/membership", 200) == {"member": None, "applications": []}

    # --- 入会: the phone first, then a bad ID number, then the application
    form = {"union_id": tianfu, "name": "张三", "id_number": number, "ethnicity": "汉族", "education": "本科",
            "political_status": "群众", "household_type": "农村", "migrant_worker": True,
            "employer": "成都天府软件有限公司", "job": "工程师", "privacy_version": version}
    join = "/mp/v1/membership/join"
    assert (await call("POST", join, 400, json=form))["error"]["code"] == "phone_required"
    phone = await http.post(f"{server}/mp/v1/phone", headers=auth,
                            json={"code": mini_program.issue_phone_code("13800138000", MP_APPID)})
    assert phone.status_code == 200
    mp.check("/mp/v1/phone", "post", phone)
    bad = await call("POST", join, 400, json={**form, "id_number": wrong})
    assert bad["error"]["code"] == "id_number_checksum"
    application = (await call("POST", join, 201, json=form))["application"]
    assert (application["kind"], application["status"]) == ("join", "pending")
    assert application["union"] == {"id": tianfu, "name": "成都天府软件有限公司工会"}
    assert (application["id_number"], application["phone"]) == (masked, "138****8000")
    assert application["form"]["gender"] == 1 and application["form"]["birth_date"] == "1990-03-07"
    assert (await call("POST", join, 409, json=form))["error"]["code"] == "application_pending"
    overview = await call("GET", "/mp/v1/membership", 200)
    assert overview["member"] is None and [a["id"] for a in overview["applications"]] == [application["id"]]

    # --- 撤回
    withdraw = "/mp/v1/membership/applications/{application_id}/withdraw"
    withdrawn = (await call("POST", withdraw.format(application_id=application["id"]), 200,
                            template=withdraw))["application"]
    assert withdrawn["status"] == "withdrawn" and withdrawn["status_label"] == "已撤回"
    again = await call("POST", withdraw.format(application_id=application["id"]), 409, template=withdraw)
    assert again["error"]["code"] == "application_decided"
    missing = await call("POST", withdraw.format(application_id=999999), 404, template=withdraw)
    assert missing["error"]["code"] == "application_not_found"

    # --- 会员认证: not in the roster, a dispute, then the roster's record is certified
    certify = "/mp/v1/membership/certify"
    miss = await call("POST", certify, 400, json={"name": "张三", "id_number": number})
    assert miss["error"]["code"] == "certify_no_match"
    dispute = (await call("POST", "/mp/v1/membership/certify/dispute", 201,
                          json={"union_id": tianfu, "name": "张三", "id_number": number,
                                "note": "名册漏登", "privacy_version": version}))["application"]
    assert (dispute["kind"], dispute["form"]) == ("certify", {"note": "名册漏登"})
    await member_store.create_member(
        db, org_id=tianfu, name="张三", id_number_enc=rt.pii.encrypt(number, ID_COLUMN),
        id_number_bidx=rt.pii.blind_index(number, ID_COLUMN),
        phone_enc=rt.pii.encrypt("13800138000", PHONE_COLUMN),
        phone_bidx=rt.pii.blind_index("13800138000", PHONE_COLUMN), gender=1,
        birth_date=date(1990, 3, 7), form={}, source="roster", account_id=None,
        joined_on=date(2019, 5, 1))
    member = (await call("POST", certify, 200, json={"name": "张三", "id_number": number.lower()}))["member"]
    assert (member["id_number"], member["phone"], member["certified"]) == (masked, "138****8000", True)
    assert (member["source"], member["ethnicity"], member["union"]["id"]) == ("roster", None, tianfu)
    overview = await call("GET", "/mp/v1/membership", 200)
    assert overview["member"] == member and len(overview["applications"]) == 2

    card = await call("GET", "/mp/v1/membership/card.png", 200)
    assert card.startswith(b"\x89PNG\r\n\x1a\n")

    # --- 会员关系接转 and 建会
    transfer = (await call("POST", "/mp/v1/membership/transfer", 201,
                           json={"union_id": jinjiang, "reason": "调动到新单位工作"}))["application"]
    assert (transfer["from_union"]["id"], transfer["union"]["id"]) == (tianfu, jinjiang)
    assert transfer["member_no"] == member["member_no"] and transfer["id_number"] == masked
    same = await call("POST", "/mp/v1/membership/transfer", 400, json={"union_id": tianfu, "reason": "调动"})
    assert same["error"]["code"] == "same_union"
    first17 = "91510104MA61234X5"
    founding = {"union_name": "成都天府云计算有限公司工会", "credit_code": first17 + uscc_check_char(first17),
                "employer_name": "成都天府云计算有限公司", "region_code": "510104", "organiser_name": "张三",
                "headcount": 30, "upper_union_id": chengdu, "privacy_version": version}
    upper = (await call("GET", "/mp/v1/unions/upper", 200, params={"region": "510104"}))["unions"]
    assert upper[0] == {"id": chengdu, "name": "成都市总工会", "kind": "city"}
    founded = (await call("POST", "/mp/v1/unions/found", 201, json=founding))["application"]
    assert (founded["kind"], founded["union"]["id"], founded["id_number"]) == ("found", chengdu, None)
    assert founded["form"]["form_of_union"] == "工会委员会"

    # --- the worker's own export: the member record masked like everywhere else
    exported = await call("GET", "/mp/v1/me/data", 200)
    assert (exported["member"]["id_number"], exported["member"]["phone"]) == (masked, "138****8000")
    assert exported["account"]["phone"] == "13800138000"
    assert {a["kind"] for a in exported["applications"]} == {"join", "certify", "transfer", "found"}
    assert all(a["id_number"] in (masked, None) for a in exported["applications"])

    # --- certification attempts are limited per worker, malformed ones included
    token, _ = await _sign_in(http, server, mini_program, mp, "o-openapi-guesser")
    auth = {"Authorization": f"Bearer {token}"}
    rt.clock.set(late_evening(rt.clock()))   # 23:30 in China: the day ends in half an hour, whatever UTC says
    for _ in range(rt.settings.membership.certify_per_account_day):
        assert (await call("POST", certify, 400, json={}))["error"]["code"] == "name_invalid"
    limited = await http.post(server + certify, headers=auth, json={"name": "张三", "id_number": number})
    # the account's quota is per day in China time: the wait is what is left of that day
    assert limited.status_code == 429
    assert 1790 <= int(limited.headers["Retry-After"]) <= 1800
    assert mp.check(certify, "post", limited)["error"]["code"] == "certify_limit"


def signed_headers(app_id: str, secret: str, method: str, path: str, body: bytes = b"") -> dict:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    return {"X-App-Id": app_id, "X-Timestamp": timestamp, "X-Nonce": nonce,
            "X-Signature": sign(secret, method, path, "", timestamp, nonce, body)}


async def test_platform_api_responses_match_the_document(http, server, rt, mini_program) -> None:
    api = Contract(API_DOC)
    _, account = await _sign_in(http, server, mini_program, Contract(MP_DOC), "o-openapi-entrance")
    app, secret = await rt.apps.create_app(
        app_id="openapi-check", name="接口文档检查", org_code="SC",
        scopes=["identity.resolve", "profile.read", "sso"], redirect_uris=["https://entrance.example.org/cb"],
        province_scope=True)  # the account has no home region yet: only a province grant finds it

    resolve = "/api/v1/accounts/resolve"
    unsigned = await http.post(server + resolve, json={})
    assert unsigned.status_code == 401
    assert api.check(resolve, "post", unsigned)["error"]["code"] == "signature_missing"

    body = json.dumps({"identity": {"kind": "unionid", "subject": "union-o-openapi-entrance"}}).encode()
    found = await http.post(server + resolve, content=body,
                            headers=signed_headers(app.app_id, secret, "POST", resolve, body))
    assert found.status_code == 200
    assert api.check(resolve, "post", found)["account_id"] == account["id"]

    body = json.dumps({"phone": "13800138000"}).encode()
    no_scope = await http.post(server + resolve, content=body,
                               headers=signed_headers(app.app_id, secret, "POST", resolve, body))
    assert no_scope.status_code == 403
    assert api.check(resolve, "post", no_scope)["error"]["code"] == "scope_missing"

    path = f"/api/v1/accounts/{account['id']}"
    unlinked = await http.get(server + path, headers=signed_headers(app.app_id, secret, "GET", path))
    assert unlinked.status_code == 404
    assert api.check("/api/v1/accounts/{account_id}", "get", unlinked)["error"]["code"] == "account_not_found"
    await rt.apps.record_sign_in(app.app_id, (await rt.accounts.by_public_id(account["id"])).id)
    profile = await http.get(server + path, headers=signed_headers(app.app_id, secret, "GET", path))
    assert profile.status_code == 200
    assert api.check("/api/v1/accounts/{account_id}", "get", profile)["account_id"] == account["id"]

    token = await http.post(f"{server}/api/v1/oauth/token",
                            data={"grant_type": "authorization_code", "code": "not-a-code",
                                  "client_id": app.app_id, "client_secret": "wrong"})
    assert token.status_code == 401
    assert api.check("/api/v1/oauth/token", "post", token)["error"] == "invalid_client"

    authorize = await http.get(f"{server}/api/v1/oauth/authorize",
                               params={"response_type": "code", "client_id": app.app_id})
    assert authorize.status_code == 302
    assert api.check("/api/v1/oauth/authorize", "get", authorize) is None
    assert authorize.headers["Location"].startswith("/h5/login.html?next=")

    userinfo = await http.get(f"{server}/api/v1/oauth/userinfo", headers={"Authorization": "Bearer nope"})
    assert userinfo.status_code == 401
    assert api.check("/api/v1/oauth/userinfo", "get", userinfo)["error"]["code"] == "token_invalid"


async def test_admin_responses_match_the_document(http, server, rt, db, fake_wechat) -> None:
    """The console's calls, each answer as documented: sign-in, accounts and grants, periodic
    verification, the audit trail and ledger, unions, the review queue and a decision, members,
    cards, roster import and export, and what a missing session or CSRF token gets."""
    admin = Contract(ADMIN_DOC)
    chengdu = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)

    failed = await http.post(f"{server}/admin/v1/login", json={"username": "office", "password": "x"})
    assert admin.check("/admin/v1/login", "post", failed)["error"]["code"] == "login_failed"
    anonymous = await http.get(f"{server}/admin/v1/me")
    assert admin.check("/admin/v1/me", "get", anonymous)["error"]["code"] == "unauthenticated"

    async with httpx.AsyncClient(trust_env=False, timeout=10, base_url=server) as browser:
        login = await browser.post("/admin/v1/login", json={"username": "office", "password": PASSWORD,
                                                            "totp": otp(office.totp_uri)})
        assert login.status_code == 200
        csrf = admin.check("/admin/v1/login", "post", login)["csrf_token"]
        write = {"X-CSRF-Token": csrf}

        async def call(method: str, path: str, status: int, *, template: str | None = None, **kw) -> Any:
            response = await browser.request(method, path, **kw)
            assert response.status_code == status, f"{method} {path}: {response.text}"
            return admin.check(template or path.split("?")[0], method.lower(), response)

        assert (await call("GET", "/admin/v1/me", 200))["me"]["role"] == "operator"
        assert (await call("POST", "/admin/v1/cadres", 403, json={}))["error"]["code"] == "csrf_failed"
        new = {"username": "wangwu", "display_name": "王五", "org_id": chengdu, "role": "super_admin",
               "duty": "system", "permissions": ["account.manage", "member.review"], "password": PASSWORD}
        wangwu = await call("POST", "/admin/v1/cadres", 201, headers=write, json=new)
        assert (await call("POST", "/admin/v1/cadres", 409, headers=write, json=new))["error"]["code"] \
            == "super_admin_exists"
        assert (await call("POST", "/admin/v1/cadres", 404, headers=write, json=new | {"org_id": 999999}))
        cadres = (await call("GET", "/admin/v1/cadres", 200))["cadres"]
        assert {c["username"] for c in cadres} == {"office", "wangwu"}
        permissions = "/admin/v1/cadres/{cadre_id}/permissions"
        granted = await call("PUT", permissions.format(cadre_id=wangwu["id"]), 200, template=permissions,
                             headers=write, json={"permissions": ["account.manage", "org.manage"]})
        assert granted["permissions"] == ["account.manage", "org.manage"]
        await call("PUT", permissions.format(cadre_id=999999), 404, template=permissions, headers=write,
                   json={"permissions": []})
        assert (await call("GET", "/admin/v1/verification", 200))["cadres"][0]["username"] == "wangwu"
        verify = "/admin/v1/cadres/{cadre_id}/verify"
        await call("POST", verify.format(cadre_id=wangwu["id"]), 200, template=verify, headers=write)
        assert (await call("GET", "/admin/v1/filings", 200))["filings"][0]["action"] == "appointed"
        assert (await call("GET", "/admin/v1/audit", 403))["error"]["code"] == "permission_missing"
        orgs = (await call("GET", "/admin/v1/orgs", 200))["orgs"]
        assert orgs[0]["kind"] == "province"
        ledger = await call("GET", "/admin/v1/ledger.xlsx", 200)
        assert ledger.startswith(b"PK")

        union = {"name": "成都天府软件有限公司工会", "parent_id": chengdu, "credit_code": None,
                 "employer_name": "成都天府软件有限公司", "region_code": "510104"}
        tianfu = (await call("POST", "/admin/v1/unions", 201, headers=write, json=union))["union"]["id"]
        assert (await call("POST", "/admin/v1/unions", 400, headers=write, json={"name": "x"}))

        # a worker's application, decided in the console
        account = await rt.accounts.account_for_phone("13800000001")
        await rt.accounts.accept_privacy(account.id, rt.accounts.privacy_version)
        await rt.membership.apply_join(account.id, join_form(tianfu) | {"privacy_version":
                                                                          rt.accounts.privacy_version})
        queue = await call("GET", "/admin/v1/applications?status=pending", 200)
        application = queue["applications"][0]
        assert application["decidable"] and queue["counts"]["pending"] == 1
        bad_filter = await call("GET", "/admin/v1/applications?kind=nope", 400)
        assert bad_filter["error"]["code"] == "invalid_filter"
        one = "/admin/v1/applications/{application_id}"
        await call("GET", one.format(application_id=application["id"]), 200, template=one)
        await call("GET", one.format(application_id=999999), 404, template=one)
        reject = one + "/reject"
        await call("POST", reject.format(application_id=application["id"]), 400, template=reject,
                   headers=write, json={"reason": ""})
        approve = one + "/approve"
        approved = await call("POST", approve.format(application_id=application["id"]), 200, template=approve,
                              headers=write)
        assert approved["application"]["status"] == "approved"
        await call("POST", approve.format(application_id=application["id"]), 409, template=approve,
                   headers=write)
        members = (await call("GET", f"/admin/v1/members?org_id={tianfu}", 200))["members"]
        assert members[0]["id_number"].count("*") == 10
        assert (await call("POST", "/admin/v1/cards/verify", 400, headers=write,
                           json={"token": "forged"}))["error"]["code"] == "card_invalid"

        # rosters: office holds member.import and member.export through its duty
        template = await call("GET", "/admin/v1/rosters/template.xlsx", 200)
        imports = "/admin/v1/rosters/imports"
        started = (await call("POST", f"{imports}?filename=roster.xlsx", 202, template=imports,
                              headers=write, content=template))["import"]
        await rt.rosters.drain()
        report = "/admin/v1/rosters/imports/{import_id}"
        await call("GET", report.format(import_id=started["id"]), 200, template=report)
        await call("GET", report.format(import_id=999999), 404, template=report)
        assert (await call("GET", "/admin/v1/rosters/imports", 200))["imports"][0]["id"] == started["id"]
        assert (await call("POST", "/admin/v1/rosters/imports?filename=a.xlsx", 400,
                           template="/admin/v1/rosters/imports", headers=write, content=b"not a workbook"))
        export = "/admin/v1/rosters/export.xlsx"
        await call("GET", f"{export}?org_id={tianfu}&purpose=会员年度核查", 200)
        assert (await call("GET", f"{export}?org_id={tianfu}", 400))["error"]["code"] == "purpose_missing"

        await call("POST", "/admin/v1/logout", 200, headers=write)
        assert (await call("GET", "/admin/v1/me", 401))["error"]["code"] == "unauthenticated"
