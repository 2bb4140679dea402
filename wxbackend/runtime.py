"""Everything a running process holds, built once from settings and passed in explicitly.

``Runtime`` owns the connections (pool, Redis, HTTP client) and the services made from them;
handlers and the worker receive what they need from it, never from module globals.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import redis.asyncio as aioredis

from wxbackend.config import Settings
from wxbackend.infra.db import create_pool
from wxbackend.infra.pii import PersonalData, parse_keyring
from wxbackend.infra.redis import create_redis
from wxbackend.infra.sms import create_sms_sender
from wxbackend.services.activities.admission import Admission
from wxbackend.services.activities.catalogue import Catalogue
from wxbackend.services.activities.gates import Gates
from wxbackend.services.activities.lottery import Lottery
from wxbackend.services.activities.notices import Notices
from wxbackend.services.activities.participants import Participants
from wxbackend.services.activities.polls import Polls
from wxbackend.services.activities.posters import Posters
from wxbackend.services.activities.quizzes import Quizzes
from wxbackend.services.activities.redemption import Redemption, code_key
from wxbackend.services.activities.registrations import Registrations
from wxbackend.services.activities.signups import Signups
from wxbackend.services.cadres.audit import AuditTrail, parse_key
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.cadres.passwords import PasswordHashing
from wxbackend.services.casework.appeals import Appeals
from wxbackend.services.casework.binding import CadreWeChat
from wxbackend.services.casework.calendar import WorkdayCalendar
from wxbackend.services.casework.engine import Engine
from wxbackend.services.casework.operations import Operations
from wxbackend.services.casework.proposals import Proposals
from wxbackend.services.casework.rates import CompletionRates
from wxbackend.services.casework.registry import MODULES
from wxbackend.services.casework.reminders import Reminders
from wxbackend.services.casework.sweep import DeadlineSweep
from wxbackend.services.casework.worklists import WorkLists
from wxbackend.services.channels.articles import Articles
from wxbackend.services.channels.channels import Channels
from wxbackend.services.channels.conformance import ConformanceCheck
from wxbackend.services.channels.media import MediaLibrary
from wxbackend.services.channels.media_store import media_store
from wxbackend.services.channels.oa_publishing import OAPublishing, publish_id_of
from wxbackend.services.channels.reading import Reading
from wxbackend.services.channels.self_built import SelfBuiltChannels
from wxbackend.services.channels.visits import VisitCounter, VisitStats
from wxbackend.services.clock import Clock, china_now
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.platform import PlatformApps
from wxbackend.services.identity.sessions import SessionStore
from wxbackend.services.identity.sms_codes import SmsCodeService
from wxbackend.services.identity.sso import SingleSignOn
from wxbackend.services.identity.wechat_login import WeChatLogin
from wxbackend.services.kpi.briefings import Briefings
from wxbackend.services.kpi.reports import KpiReports
from wxbackend.services.kpi.rollups import Rollups
from wxbackend.services.kpi.targets import KpiTargets
from wxbackend.services.ledger.alarms import LedgerAlarms
from wxbackend.services.ledger.cosigning import Cosigning
from wxbackend.services.ledger.cosigning import from_settings as ledger_services
from wxbackend.services.ledger.log import LedgerLog
from wxbackend.services.membership.membership import MembershipService, card_key
from wxbackend.services.membership.reviews import ReviewService
from wxbackend.services.membership.rosters import RosterService
from wxbackend.services.messaging.keywords import KeywordRouter
from wxbackend.services.messaging.oa_inbox import InboxRetention, OAInbox
from wxbackend.services.messaging.outbox import OutboxWorker
from wxbackend.services.office.business.applications import BusinessApplications
from wxbackend.services.office.business.configuration import BusinessModules
from wxbackend.services.office.documents import Documents
from wxbackend.services.office.info_reports.reports import InfoReports
from wxbackend.services.office.meetings import Meetings, build_meetings
from wxbackend.services.office.notices import OfficeNotices
from wxbackend.services.office.usage import UsageRates
from wxbackend.services.signed_tokens import derived_key
from wxbackend.services.wxa_codes import WxaCodes
from wxbackend.wechat.api import WeChatAPI
from wxbackend.wechat.envelope import Envelope


@dataclass
class Runtime:
    settings: Settings
    clock: Clock          # the one clock every service takes (tests set it)
    pool: asyncpg.Pool
    redis: aioredis.Redis
    http: httpx.AsyncClient
    api: WeChatAPI
    mp_api: WeChatAPI | None  # the Mini Program's, when one is configured
    wxa_codes: WxaCodes | None  # Mini Program codes, drawn once and kept (with a Mini Program)
    envelope: Envelope
    keywords: KeywordRouter
    inbox: OAInbox
    inbox_retention: InboxRetention
    outbox: OutboxWorker
    pii: PersonalData
    accounts: AccountService
    login: WeChatLogin
    sms: SmsCodeService
    apps: PlatformApps
    sso: SingleSignOn
    cadres: CadreService
    membership: MembershipService
    reviews: ReviewService
    rosters: RosterService
    audit: AuditTrail
    catalogue: Catalogue
    signups: Signups
    quizzes: Quizzes
    polls: Polls
    participants: Participants
    lottery: Lottery
    redemption: Redemption
    posters: Posters
    notices: Notices
    registrations: Registrations
    media: MediaLibrary
    channels: Channels
    articles: Articles
    reading: Reading
    visits: VisitCounter
    visit_stats: VisitStats
    oa_publishing: OAPublishing
    self_built: SelfBuiltChannels
    calendar: WorkdayCalendar
    engine: Engine
    work: Operations
    work_lists: WorkLists
    deadlines: DeadlineSweep
    rates: CompletionRates
    appeals: Appeals
    proposals: Proposals
    cadre_wechat: CadreWeChat
    meetings: Meetings
    office_notices: OfficeNotices
    info_reports: InfoReports
    documents: Documents
    business: BusinessModules
    business_apps: BusinessApplications
    usage: UsageRates
    kpi_rollups: Rollups
    kpi_reports: KpiReports
    kpi_briefings: Briefings
    kpi_targets: KpiTargets
    ledger: LedgerLog
    ledger_alarms: LedgerAlarms
    cosigning: Cosigning

    @property
    def h5_base(self) -> str:
        return _h5_base(self.settings)


def _h5_base(settings: Settings) -> str:
    return settings.server.public_url.rstrip("/") + "/h5"


def _index_key(settings: Settings) -> bytes:
    return base64.b64decode(settings.security.index_key.reveal() or "")


def personal_data(settings: Settings, index_key: bytes | None = None) -> PersonalData:
    """``index_key``: the blind-index key, when the caller has decoded it already."""
    sec = settings.security
    return PersonalData(parse_keyring(sec.field_keys.reveal()), sec.field_key_current,
                        _index_key(settings) if index_key is None else index_key)


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, dsn: str, redis_url: str, *,
                       now: Clock = china_now) -> AsyncIterator[Runtime]:
    """``now``: the clock handed to every service."""
    pool = await create_pool(dsn, settings.database)
    redis = create_redis(redis_url, settings.redis)
    http = httpx.AsyncClient(
        timeout=settings.wechat.http_timeout, trust_env=False,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "wxbackend"})
    rosters: RosterService | None = None
    media: MediaLibrary | None = None
    try:
        wx = settings.wechat
        h5_base = _h5_base(settings)
        api = WeChatAPI(http, wx, redis)
        router = KeywordRouter(pool, h5_base=h5_base, cache_seconds=wx.keyword_cache_seconds)
        trail = AuditTrail(parse_key(settings.security.audit_key.reveal()), now=now)
        index_key = _index_key(settings)   # the blind index's key; the card key derives from it
        pii = personal_data(settings, index_key)
        inbox = OAInbox(pool, router, pii, appid=wx.appid, reply_budget=wx.reply_budget)
        accounts = AccountService(pool, pii, privacy_version=settings.privacy.version)
        mp = WeChatAPI(http, wx, redis, appid=settings.miniprogram.appid,
                       secret=settings.miniprogram.secret.reveal()) \
            if settings.miniprogram.appid else None
        login = WeChatLogin(
            oa=api, mp=mp, accounts=accounts, redis=redis,
            h5_sessions=SessionStore(redis, kind="h5", ttl=settings.sessions.h5_ttl, now=now),
            mp_sessions=SessionStore(redis, kind="mp", ttl=settings.sessions.mp_ttl, now=now),
            pii=pii, public_url=settings.server.public_url,
            state_ttl=settings.sessions.oauth_state_ttl, authorize_url=wx.oauth_authorize_url, now=now)
        apps = PlatformApps(pool, redis, pii, settings.platform, audit=trail, now=now)
        public_url = settings.server.public_url.rstrip("/")
        cards = card_key(index_key)
        membership = MembershipService(pool, redis, pii, settings.membership,
                                       accounts=accounts, card_key=cards,
                                       card_url=f"{public_url}/admin/card.html", now=now)
        reviews = ReviewService(pool, pii, settings.membership, oa_appid=wx.appid,
                                h5_base=h5_base, card_key=cards, audit=trail, now=now)
        rosters = RosterService(pool, pii, settings.membership, audit=trail, now=now)
        catalogue = Catalogue(pool, pii, audit=trail, now=now)
        notices = Notices(settings.activities, oa_appid=wx.appid,
                          mp_appid=settings.miniprogram.appid, h5_base=h5_base, now=now)
        # One bound on password hashing per process, for cadres and verifiers alike.
        hashing = PasswordHashing(concurrency=settings.admin.hash_concurrency,
                                  queue=settings.admin.hash_queue,
                                  busy_delay=settings.admin.refused_delay_ms / 1000)
        act = settings.activities
        admission = Admission(pool, redis, now=now, gate=act.admission_gate,
                              grace_seconds=act.pending_grace_seconds,
                              sold_out_memo=act.sold_out_memo_seconds)
        wxa_codes = WxaCodes(pool, mp, redis=redis, now=now) if mp is not None else None
        ch = settings.channels
        media = MediaLibrary(pool, media_store(settings, http), audit=trail,
                             workers=ch.image_workers, queue=ch.image_queue, now=now)
        articles = Articles(pool, media, audit=trail, now=now)
        reading = Reading(pool, now=now)
        articles.on_change.append(reading.forget)
        oa_publishing = OAPublishing(pool, api, media, audit=trail, public_url=settings.server.public_url,
                                     mass_sends_per_month=ch.mass_sends_per_month, now=now)
        inbox.event_hooks["PUBLISHJOBFINISH"] = lambda fields: oa_publishing.publish_finished(
            publish_id_of(fields))
        calendar = WorkdayCalendar(pool, audit=trail, now=now)
        reminders = Reminders(settings.casework, oa_appid=wx.appid,
                              mp_appid=settings.miniprogram.appid,
                              console_url=f"{public_url}/admin/", h5_base=h5_base, now=now)
        engine = Engine(pool, calendar, reminders, MODULES, audit=trail, now=now)
        work = Operations(engine, settings.casework)
        work_lists = WorkLists(pool, engine, pii, audit=trail, now=now)
        deadlines = DeadlineSweep(pool, engine, calendar, now=now)
        calendar.on_import.append(deadlines.recompute_provisional)
        appeals = Appeals(pool, pii, engine, work, work_lists, media,
                          categories=settings.casework.appeal_categories,
                          anonymous=settings.casework.anonymous_categories, audit=trail, now=now)
        accounts.export_parts["appeals"] = appeals.export
        accounts.cancel_parts.append(appeals.forget)
        rates = CompletionRates(pool, engine.modules, now=now)
        rollups = Rollups(pool, now=now)
        kpi_reports = KpiReports(pool, rollups, engine.modules,
                                 first_year=settings.office.usage_first_year, now=now)
        business = BusinessModules(pool, engine, work, audit=trail, now=now)
        await business.reload()   # the configured modules live now, on the engine
        business_apps = BusinessApplications(pool, pii, engine, work, work_lists, media, audit=trail,
                                             now=now)
        accounts.export_parts["business_applications"] = business_apps.export
        accounts.cancel_parts.append(business_apps.forget)
        ledger, ledger_alarms, cosigning = ledger_services(pool, settings.ledger, http, audit=trail,
                                                           clock=now)
        office_notices = OfficeNotices(pool, engine, work, media, settings.casework, audit=trail, now=now)
        yield Runtime(settings=settings, clock=now, pool=pool, redis=redis, http=http, api=api,
                      mp_api=mp, wxa_codes=wxa_codes,
                      envelope=Envelope(wx), keywords=router, inbox=inbox,
                      inbox_retention=InboxRetention(
                          pool, pii, retention_days=settings.privacy.inbound_retention_days, now=now),
                      outbox=OutboxWorker(pool, api, settings.outbox, mp=mp), pii=pii,
                      accounts=accounts, login=login,
                      sms=SmsCodeService(redis, create_sms_sender(settings.sms), pii, settings.sms,
                                         now=now),
                      apps=apps, sso=SingleSignOn(apps, redis, settings.platform),
                      cadres=CadreService(pool, redis, pii, settings.admin, audit=trail, now=now,
                                          hashing=hashing),
                      membership=membership, reviews=reviews, rosters=rosters, audit=trail,
                      catalogue=catalogue, signups=Signups(pool, catalogue, admission, notices,
                                                                  Gates(pool, now=now), now=now),
                      quizzes=Quizzes(pool, catalogue, audit=trail, now=now),
                      polls=Polls(pool, catalogue, audit=trail, now=now),
                      participants=Participants(pool, pii, catalogue, audit=trail, now=now),
                      lottery=Lottery(pool, pii, catalogue, notices, audit=trail, now=now),
                      posters=Posters(pool, catalogue, wxa_codes, h5_base=h5_base, now=now),
                      redemption=Redemption(
                          pool, redis, code_key(index_key), audit=trail, hashing=hashing, now=now,
                          public_url=settings.server.public_url,
                          sessions=SessionStore(redis, kind="verifier",
                                                ttl=settings.sessions.verifier_ttl, now=now)),
                      registrations=Registrations(pool, notices, audit=trail, now=now),
                      notices=notices, media=media,
                      channels=Channels(pool, audit=trail, now=now), articles=articles,
                      reading=reading, visits=VisitCounter(redis, index_key, now=now),
                      visit_stats=VisitStats(pool, redis, now=now), oa_publishing=oa_publishing,
                      self_built=SelfBuiltChannels(
                          pool, apps, media, ConformanceCheck(pool, redis, apps, now=now),
                          audit=trail, now=now),
                      calendar=calendar, engine=engine, work=work, work_lists=work_lists,
                      deadlines=deadlines, rates=rates,
                      appeals=appeals,
                      proposals=Proposals(pool, pii, engine, work, work_lists, audit=trail, now=now),
                      office_notices=office_notices,
                      info_reports=InfoReports(pool, engine, work, media, settings.office,
                                               audit=trail, now=now),
                      documents=Documents(pool, engine, work, work_lists, media, audit=trail, now=now),
                      cadre_wechat=CadreWeChat(
                          pool, derived_key(index_key, b"cadre-wechat-bind-v1"), oa_appid=wx.appid,
                          h5_base=h5_base, ttl=settings.casework.bind_ttl, audit=trail, now=now),
                      meetings=build_meetings(pool, engine, work, media, settings, index_key,
                                              audit=trail, now=now),
                      business=business, business_apps=business_apps,
                      usage=UsageRates(pool, engine, first_year=settings.office.usage_first_year,
                                       audit=trail, now=now),
                      kpi_rollups=rollups,
                      kpi_reports=kpi_reports,
                      kpi_briefings=Briefings(pool, kpi_reports, reminders, audit=trail, now=now),
                      kpi_targets=KpiTargets(pool, audit=trail, now=now),
                      ledger=ledger, ledger_alarms=ledger_alarms, cosigning=cosigning)
    finally:
        if media is not None:
            media.close()
        if rosters is not None:
            await rosters.close()  # imports still running end as failed, before the pool goes
        await http.aclose()
        await redis.aclose()
        await pool.close()
