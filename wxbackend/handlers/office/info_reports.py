"""Information reports (信息报送) in the cadre console: ``/admin/v1/info-reports``; pictures are
streamed uploads (:mod:`wxbackend.handlers.uploads`)."""

from __future__ import annotations

import tornado.web

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.handlers.uploads import StreamedUpload
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.channels import images
from wxbackend.services.office.info_reports.process import PERMISSION
from wxbackend.services.office.info_reports.reports import InfoReports


class ReportsHandler(AdminHandler):
    def initialize(self, cadres: CadreService, reports: InfoReports) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.reports = reports


class ListHandler(ReportsHandler):
    route = "/admin/v1/info-reports"

    async def get(self) -> None:
        self.write_json(await self.reports.listing(
            self.actor, self.get_query_argument("box", "mine"),
            open_only=self.get_query_argument("open", "") in ("1", "true"),
            limit=self.int_argument("limit", 50) or 50, offset=self.int_argument("offset", 0) or 0))

    async def post(self) -> None:
        self.write_json({"report": await self.reports.submit(self.actor, self.json_body(65_536))}, 201)


class OneHandler(ReportsHandler):
    route = "/admin/v1/info-reports/{id}"

    async def get(self, report_id: str) -> None:
        self.write_json({"report": await self.reports.report(self.actor, int(report_id))})


class ReviewHandler(ReportsHandler):
    route = "/admin/v1/info-reports/{id}/review"

    async def post(self, report_id: str) -> None:
        self.write_json({"report": await self.reports.review(self.actor, int(report_id), self.json_body())})


class ResubmitHandler(ReportsHandler):
    route = "/admin/v1/info-reports/{id}/resubmission"

    async def post(self, report_id: str) -> None:
        self.write_json({"report": await self.reports.resubmit(self.actor, int(report_id),
                                                               self.json_body(65_536))})


class PassUpHandler(ReportsHandler):
    route = "/admin/v1/info-reports/{id}/pass-up"

    async def post(self, report_id: str) -> None:
        self.write_json({"report": await self.reports.pass_up(self.actor, int(report_id))})


class NationalHandler(ReportsHandler):
    route = "/admin/v1/info-reports/{id}/national-adoption"

    async def post(self, report_id: str) -> None:
        self.write_json({"report": await self.reports.national_adoption(self.actor, int(report_id),
                                                                        self.json_body())})


class RankingsHandler(ReportsHandler):
    route = "/admin/v1/info-reports/rankings"

    async def get(self) -> None:
        self.write_json(await self.reports.rankings(self.actor, self.get_query_argument("period", "")))


class RankingsXlsxHandler(ReportsHandler):
    route = "/admin/v1/info-reports/rankings.xlsx"

    async def get(self) -> None:
        data, filename = await self.reports.rankings_xlsx(self.actor, self.get_query_argument("period", ""))
        self.send_xlsx_headers(filename)
        self.finish(data)


@tornado.web.stream_request_body
class PictureUploadHandler(StreamedUpload, ReportsHandler):
    """A picture for a report, for any cadre who reports (not only publishers)."""

    route = "/admin/v1/info-reports/pictures"
    limit = images.MAX_UPLOAD_BYTES
    what = "图片"

    def initialize(self, cadres: CadreService, reports: InfoReports) -> None:  # type: ignore[override]
        super().initialize(cadres, reports)
        self.start_upload()

    async def prepare(self) -> None:
        await super().prepare()
        self.actor.require(PERMISSION)
        self.check_declared()

    async def post(self) -> None:
        self.write_json({"picture": await self.reports.upload_picture(self.actor, self.upload_body())}, 201)


def routes(cadres: CadreService, reports: InfoReports) -> list:
    return route_table((ListHandler, RankingsHandler, RankingsXlsxHandler, PictureUploadHandler,
                        OneHandler, ReviewHandler, ResubmitHandler, PassUpHandler, NationalHandler),
                       {"cadres": cadres, "reports": reports})
