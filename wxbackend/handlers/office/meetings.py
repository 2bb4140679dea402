"""Meetings: rooms and bookings, internal meetings (invitations, answers, leave, the venue's QR
code, sign-in, minutes) and external meetings (``/admin/v1``), and the attendee's sign-in from
the venue's QR code in WeChat (``/h5/api/v1/meeting-signins``)."""

from __future__ import annotations

import tornado.web

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.handlers.identity.accounts import WorkerHandler, worker_routes
from wxbackend.handlers.uploads import StreamedUpload, send_file
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.channels import attachments
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.wechat_login import WeChatLogin
from wxbackend.services.office.meetings import Meetings


class MeetingHandler(AdminHandler):
    def initialize(self, cadres: CadreService, meetings: Meetings) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.meetings = meetings

    def window(self) -> tuple[str | None, int]:
        """``?day=YYYY-MM-DD&days=N``: the lists' period (default today, a week)."""
        return self.get_query_argument("day", "") or None, self.int_argument("days", 7) or 7


class RoomsHandler(MeetingHandler):
    route = "/admin/v1/meeting-rooms"

    async def get(self) -> None:
        self.write_json(await self.meetings.rooms.rooms(self.actor))

    async def post(self) -> None:
        self.write_json({"room": await self.meetings.rooms.create(self.actor, self.json_body())}, 201)


class BookingsHandler(MeetingHandler):
    route = "/admin/v1/meeting-bookings"

    async def get(self) -> None:
        self.write_json(await self.meetings.rooms.bookings(self.actor, *self.window()))


class MeetingsHandler(MeetingHandler):
    route = "/admin/v1/meetings"

    async def get(self) -> None:
        day, days = self.window()
        self.write_json(await self.meetings.internal.meetings(
            self.actor, kind=self.get_query_argument("kind", "internal"), day=day, days=days))

    async def post(self) -> None:
        created = await self.meetings.internal.create(self.actor, self.json_body(65_536))
        self.write_json({"meeting": created}, 201)


class OneMeetingHandler(MeetingHandler):
    route = "/admin/v1/meetings/{id}"

    async def get(self, meeting_id: str) -> None:
        self.write_json({"meeting": await self.meetings.internal.detail(self.actor, int(meeting_id))})


class InviteesHandler(MeetingHandler):
    route = "/admin/v1/meetings/{id}/invitees"

    async def post(self, meeting_id: str) -> None:
        self.write_json({"meeting": await self.meetings.internal.invite(self.actor, int(meeting_id),
                                                                        self.json_body(65_536))})


class CancelHandler(MeetingHandler):
    route = "/admin/v1/meetings/{id}/cancel"

    async def post(self, meeting_id: str) -> None:
        self.write_json({"meeting": await self.meetings.internal.cancel(self.actor, int(meeting_id),
                                                                        self.json_body())})


class AnswerHandler(MeetingHandler):
    route = "/admin/v1/meetings/{id}/answer"

    async def post(self, meeting_id: str) -> None:
        self.write_json({"answer": await self.meetings.internal.answer(self.actor, int(meeting_id),
                                                                       self.json_body())})


class LeaveDecisionHandler(MeetingHandler):
    route = "/admin/v1/meetings/{id}/leave-decisions"

    async def post(self, meeting_id: str) -> None:
        self.write_json({"meeting": await self.meetings.internal.decide_leave(
            self.actor, int(meeting_id), self.json_body())})


class VenueCodeHandler(MeetingHandler):
    route = "/admin/v1/meetings/{id}/venue-code"

    async def get(self, meeting_id: str) -> None:
        self.write_json(await self.meetings.signin.venue_code(self.actor, int(meeting_id)))


class VenueCodeImageHandler(MeetingHandler):
    route = "/admin/v1/meetings/{id}/venue-code.png"

    async def get(self, meeting_id: str) -> None:
        data = await self.meetings.signin.venue_png(self.actor, int(meeting_id))
        self.set_header("Content-Type", "image/png")
        self.finish(data)


class SignInByHandHandler(MeetingHandler):
    route = "/admin/v1/meetings/{id}/signins"

    async def post(self, meeting_id: str) -> None:
        self.write_json({"signin": await self.meetings.signin.by_hand(self.actor, int(meeting_id),
                                                                      self.json_body())})


class MinutesHandler(MeetingHandler):
    route = "/admin/v1/meetings/{id}/minutes"

    async def post(self, meeting_id: str) -> None:
        self.write_json({"meeting": await self.meetings.internal.file_minutes(
            self.actor, int(meeting_id), self.json_body(262_144))})


class InvitationsHandler(MeetingHandler):
    route = "/admin/v1/meeting-invitations"

    async def get(self) -> None:
        self.write_json(await self.meetings.internal.invitations(self.actor))


@tornado.web.stream_request_body
class FileUploadHandler(StreamedUpload, MeetingHandler):
    """An attachment of minutes or of an external notice, kept with the meetings (never public
    media)."""
    route = "/admin/v1/meeting-files"
    limit = attachments.MAX_BYTES
    what = "附件"

    def initialize(self, cadres: CadreService, meetings: Meetings) -> None:  # type: ignore[override]
        super().initialize(cadres, meetings)
        self.start_upload()

    async def prepare(self) -> None:
        await super().prepare()
        self.actor.require("meeting.manage")
        self.check_declared()

    async def post(self) -> None:
        self.write_json({"file": await self.meetings.internal.upload_file(
            self.actor, self.upload_body(), self.get_query_argument("filename", ""))}, 201)


class FileHandler(MeetingHandler):
    route = "/admin/v1/meeting-files/{id}"

    async def get(self, file_id: str) -> None:
        row = await self.meetings.internal.file(self.actor, int(file_id))
        send_file(self, row["data"], row["content_type"], row["filename"])


class ExternalMeetingsHandler(MeetingHandler):
    route = "/admin/v1/external-meetings"

    async def post(self) -> None:
        registered = await self.meetings.external.register(self.actor, self.json_body(65_536))
        self.write_json({"meeting": registered}, 201)


class ExternalStepHandler(MeetingHandler):
    route = "/admin/v1/external-meetings/{id}/steps"

    async def post(self, meeting_id: str) -> None:
        self.write_json({"meeting": await self.meetings.external.step(self.actor, int(meeting_id),
                                                                      self.json_body(65_536))})


# Streamed uploads check their own size: the front's general body limit does not apply.
UPLOAD_ROUTES = (FileUploadHandler.route,)


def routes(cadres: CadreService, meetings: Meetings) -> list:
    return route_table((RoomsHandler, BookingsHandler, MeetingsHandler, OneMeetingHandler,
                        InviteesHandler, CancelHandler, AnswerHandler, LeaveDecisionHandler,
                        VenueCodeHandler, VenueCodeImageHandler, SignInByHandHandler, MinutesHandler,
                        InvitationsHandler, FileUploadHandler, FileHandler, ExternalMeetingsHandler,
                        ExternalStepHandler), {"cadres": cadres, "meetings": meetings})


# --- the attendee's phone -----------------------------------------------------------------------
class ScanSignInHandler(WorkerHandler):
    """The page the venue's QR code opens in WeChat: signs the cadre bound to this WeChat in."""
    route = "meeting-signins"

    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,  # type: ignore[override]
                   meetings: Meetings) -> None:
        super().initialize(accounts, login, auth)
        self.meetings = meetings

    async def post(self) -> None:
        self.write_json({"signin": await self.meetings.signin.by_scan(self.account_id, self.json_body())})


def attendee_routes(accounts: AccountService, login: WeChatLogin, meetings: Meetings) -> list:
    return worker_routes((), h5=(ScanSignInHandler,), accounts=accounts, login=login, meetings=meetings)
