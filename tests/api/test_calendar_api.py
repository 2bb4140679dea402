"""The working-day calendar over HTTP: the platform office imports next year's notice; every
answer matches the admin document."""

from __future__ import annotations

from tests.api.test_admin import sign_in
from tests.api.test_openapi import ADMIN_DOC, Contract
from tests.services.cadres.test_cadres import PASSWORD, otp
from tests.services.casework.test_calendar import NOTICE_2027


async def test_the_office_imports_a_year_and_everyone_reads_it(server, rt, db) -> None:
    admin = Contract(ADMIN_DOC)
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    browser, csrf = await sign_in(server, "office", otp(office.totp_uri))
    browser.headers["X-CSRF-Token"] = csrf
    try:
        known = admin.check("/admin/v1/calendar/{year}", "get",
                            await browser.get(f"{server}/admin/v1/calendar/2026"))
        assert known["calendar"]["known"] and 2027 in known["missing_years"]
        backwards = {"holidays": [{"from": "2027-01-03", "to": "2027-01-01", "name": "元旦"}]}
        bad = await browser.put(f"{server}/admin/v1/calendar/2027", json=backwards)
        admin.check("/admin/v1/calendar/{year}", "put", bad)
        assert bad.status_code == 400 and "起止颠倒" in bad.json()["error"]["message"]
        done = admin.check("/admin/v1/calendar/{year}", "put",
                           await browser.put(f"{server}/admin/v1/calendar/2027", json=NOTICE_2027))
        # the weekdays off (1 for 元旦, 5 for 春节) and the Saturday worked
        assert done["calendar"]["known"] and len(done["calendar"]["days"]) == 7
    finally:
        await browser.aclose()
        await db.execute("DELETE FROM calendar_days WHERE day >= '2027-01-01' AND day < '2028-01-01'")
        await db.execute("DELETE FROM calendar_years WHERE year = 2027")
