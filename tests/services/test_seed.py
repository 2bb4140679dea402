"""``wxbackend seed``: the Sichuan union tree and the annexes' targets, idempotently."""

from __future__ import annotations

from wxbackend.services.seed import seed


async def test_tree_has_the_province_21_cities_and_the_industry_unions(db) -> None:
    kinds = dict(await db.fetch("SELECT kind, count(*) FROM orgs GROUP BY kind"))
    assert kinds == {"province": 1, "city": 21, "industry": 3, "industry_holder": 1}
    province = await db.fetchrow("SELECT * FROM orgs WHERE kind = 'province'")
    assert province["name"] == "四川省总工会" and province["division_code"] == "510000"
    assert await db.fetchval("SELECT count(*) FROM orgs WHERE parent_id = $1", province["id"]) == 25
    assert await db.fetchval("SELECT count(*) FROM orgs WHERE NOT path <@ $1::ltree",
                             str(province["path"])) == 0


async def test_cities_carry_their_division_codes(db) -> None:
    rows = dict(await db.fetch("SELECT name, division_code FROM orgs WHERE kind = 'city'"))
    assert rows["成都市总工会"] == "510100"
    assert rows["凉山彝族自治州总工会"] == "513400"
    assert rows["阿坝藏族羌族自治州总工会"] == "513200"
    assert all(code.startswith("51") for code in rows.values())


async def test_targets_match_the_annexes_in_persons(db) -> None:
    by_kind = dict(await db.fetch(
        """SELECT o.kind = 'city', sum(t.new_users) FROM registered_user_targets t
           JOIN orgs o ON o.id = t.org_id GROUP BY 1"""))
    assert by_kind[True] == 5_750_000      # 附件1 合计 575 万人
    assert by_kind[False] == 731_000       # 附件2 合计 73.1 万人
    yearly = dict(await db.fetch(
        "SELECT year, sum(new_users) FROM registered_user_targets GROUP BY year"))
    assert yearly == {2020: 3_350_000, 2021: 2_077_000, 2022: 1_054_000}
    chengdu = dict(await db.fetch(
        """SELECT t.year, t.new_users FROM registered_user_targets t JOIN orgs o ON o.id = t.org_id
           WHERE o.short_name = '成都'"""))
    assert chengdu == {2020: 600_000, 2021: 400_000, 2022: 200_000}
    jdym = dict(await db.fetch(
        """SELECT t.year, t.new_users FROM registered_user_targets t JOIN orgs o ON o.id = t.org_id
           WHERE o.code = 'SC-IND-JDYM'"""))
    assert jdym == {2020: 10_000, 2021: 5_000, 2022: 3_000}


async def test_seeding_again_changes_nothing_and_keeps_edited_rules(db) -> None:
    await db.execute("UPDATE keyword_rules SET reply = '请拨打 12351' WHERE name = '帮助'")
    before = await db.fetch("SELECT id, code, name, path::text FROM orgs ORDER BY id")
    report = await seed(db)
    assert report.new_keyword_rules == 0
    assert await db.fetch("SELECT id, code, name, path::text FROM orgs ORDER BY id") == before
    assert await db.fetchval("SELECT reply FROM keyword_rules WHERE name = '帮助'") == "请拨打 12351"
    assert await db.fetchval("SELECT count(*) FROM registered_user_targets") == 75


async def test_demo_unions_are_valid_findable_and_added_once(db) -> None:
    from wxbackend.services.membership.idnumbers import parse_credit_code
    from wxbackend.services.seed import seed_demo

    assert await seed_demo(db) == 3
    assert await seed_demo(db) == 0
    rows = await db.fetch("SELECT name, credit_code, kind, path::text AS path FROM orgs "
                          "WHERE credit_code IS NOT NULL")
    assert len(rows) == 3 and all(r["kind"] == "grassroots" and "示例" in r["name"] for r in rows)
    assert all(parse_credit_code(r["credit_code"]) == r["credit_code"] for r in rows)
    assert all(r["path"].count(".") == 2 for r in rows)   # province.city.union
