"""``/admin/v1/calendar/{year}``: the working-day calendar casework deadlines count in; the
platform office imports each year's State Council notice."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.casework.calendar import WorkdayCalendar


class CalendarYearHandler(AdminHandler):
    route = "/admin/v1/calendar/{year}"

    def initialize(self, cadres: CadreService, calendar: WorkdayCalendar) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.calendar = calendar

    async def get(self, year: str) -> None:
        self.write_json({"calendar": await self.calendar.year(self.actor, int(year)),
                         "missing_years": await self.calendar.missing_years()})

    async def put(self, year: str) -> None:
        self.write_json({"calendar": await self.calendar.import_year(self.actor, int(year),
                                                                     self.json_body(65_536))})


def routes(cadres: CadreService, calendar: WorkdayCalendar) -> list:
    return [(r"/admin/v1/calendar/([0-9]{4})", CalendarYearHandler,
             {"cadres": cadres, "calendar": calendar})]
