"""Typed settings built once at start-up from a TOML file plus ``WXBACKEND__SECTION__KEY``.

Every key is documented in ``config.example.toml``. Secrets are wrapped in :class:`Secret` so that
no ``repr``, log line or traceback ever shows their value.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import logging
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV_PREFIX = "WXBACKEND__"


class ConfigError(Exception):
    """The configuration cannot start the server; the message says what to fix."""


class Secret:
    """A string that never shows itself in ``repr``/``str``; read it with :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('****')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class ServerSettings:
    port: int = 8000
    address: str = "0.0.0.0"  # noqa: S104 - a server binds all interfaces behind nginx by design
    data_dir: str = "./var"
    public_url: str = "http://localhost:8000"
    # Peers (addresses or CIDRs) whose X-Real-IP / X-Forwarded-For / X-Forwarded-Proto are
    # believed; from anyone else those headers are ignored, or a client could pick its address.
    trusted_proxies: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    run_worker: bool = True
    debug: bool = False


@dataclass(frozen=True)
class DatabaseSettings:
    dsn: Secret = field(default_factory=lambda: Secret(""))
    pool_min: int = 2
    pool_max: int = 10
    command_timeout: float = 10.0


@dataclass(frozen=True)
class RedisSettings:
    url: Secret = field(default_factory=lambda: Secret(""))
    timeout: float = 2.0


@dataclass(frozen=True)
class WeChatSettings:
    appid: str = ""
    secret: Secret = field(default_factory=lambda: Secret(""))
    token: Secret = field(default_factory=lambda: Secret(""))
    encoding_aes_key: Secret = field(default_factory=lambda: Secret(""))
    previous_encoding_aes_key: Secret = field(default_factory=lambda: Secret(""))
    original_id: str = ""
    message_mode: str = "safe"
    api_base: str = "https://api.weixin.qq.com"
    oauth_authorize_url: str = "https://open.weixin.qq.com/connect/oauth2/authorize"
    token_endpoint: str = "stable"
    http_timeout: float = 5.0
    http_retries: int = 2
    timestamp_window: int = 300
    max_message_bytes: int = 65_536
    reply_budget: float = 4.0
    keyword_cache_seconds: float = 10.0
    menu: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MiniProgramSettings:
    appid: str = ""
    secret: Secret = field(default_factory=lambda: Secret(""))


@dataclass(frozen=True)
class SecuritySettings:
    field_keys: Secret = field(default_factory=lambda: Secret(""))
    field_key_current: int = 1
    index_key: Secret = field(default_factory=lambda: Secret(""))
    audit_key: Secret = field(default_factory=lambda: Secret(""))
    audit_head_seconds: float = 600.0


@dataclass(frozen=True)
class PrivacySettings:
    version: str = "2026-11"
    inbound_retention_days: int = 30


@dataclass(frozen=True)
class SessionSettings:
    mp_ttl: int = 7 * 86_400
    h5_ttl: int = 7 * 86_400
    verifier_ttl: int = 12 * 3600         # a merchant's or venue's staff: one working day
    oauth_state_ttl: int = 600
    secure_cookies: str = "auto"


@dataclass(frozen=True)
class SmsSettings:
    provider: str = "console"
    code_ttl: int = 300
    resend_seconds: int = 60
    max_per_phone_day: int = 10
    max_per_ip_hour: int = 30
    max_attempts: int = 5
    tencent_secret_id: Secret = field(default_factory=lambda: Secret(""))
    tencent_secret_key: Secret = field(default_factory=lambda: Secret(""))
    sdk_app_id: str = ""
    sign_name: str = ""
    template_id: str = ""
    region: str = "ap-guangzhou"
    endpoint: str = "sms.tencentcloudapi.com"
    scheme: str = "https"
    timeout: float = 5.0


@dataclass(frozen=True)
class PlatformSettings:
    signature_window: int = 300
    nonce_ttl: int = 900
    oauth_code_ttl: int = 300
    access_token_ttl: int = 7200


@dataclass(frozen=True)
class AdminSettings:
    session_idle_minutes: int = 30
    lockout_failures: int = 5             # per account and device (browser + address)…
    lockout_minutes: int = 15             # …lock that device out of that account this long
    account_lockout_failures: int = 50    # failures per clock hour from anywhere…
    account_lockout_minutes: int = 30     # …lock the account for everyone this long
    login_per_ip_minute: int = 20         # sign-in attempts per address per minute
    login_per_username_hour: int = 100    # sign-in attempts per username per clock hour
    refused_delay_ms: int = 2000          # an address over its limit: its 429 after up to this
    hash_concurrency: int = 0             # password hashes at once per process; 0: half the cores
    hash_queue: int = 64                  # sign-ins waiting for a hash before answering 503
    password_min_length: int = 12
    password_history: int = 5
    totp_for_cadres: bool = False
    verification_days: int = 90


@dataclass(frozen=True)
class MembershipSettings:
    review_days: int = 7
    certify_per_account_day: int = 5
    certify_per_ip_hour: int = 30
    card_max_age: int = 86_400
    import_max_bytes: int = 50 * 1_048_576
    import_batch_rows: int = 2000
    import_max_sheet_bytes: int = 128 * 1_048_576
    import_read_seconds: float = 120.0
    notify_template_id: str = ""
    applications_per_account_day: int = 5
    certify_without_phone: str = "review"


@dataclass(frozen=True)
class OutboxSettings:
    poll_interval: float = 1.0
    batch_size: int = 50
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_max: float = 600.0
    lease_seconds: int = 120


@dataclass(frozen=True)
class ActivitiesSettings:
    admission_gate: bool = True        # first-come drops admitted in Redis before PostgreSQL
    pending_grace_seconds: float = 30  # an admission unrecorded this long is given back
    sweep_seconds: float = 30          # lapse overdue holds and reconcile the gate this often
    sold_out_memo_seconds: float = 0.5  # a process answers "sold out" from memory this long
    # Results and reminders. OA category template with thing1 (item), phrase2 (result), time3,
    # thing4 (what to do); Mini Program subscribe templates with the same keywords. Empty: not
    # sent (the worker's pages show everything anyway).
    notice_template_id: str = ""
    mp_result_template_id: str = ""
    mp_reminder_template_id: str = ""


@dataclass(frozen=True)
class ChannelsSettings:
    media_store: str = "file"          # file: media_dir; s3: an S3-compatible bucket
    media_dir: str = ""                # images and attachments; empty: <data_dir>/media
    s3_endpoint: str = ""              # https://obs.example.gov.cn (path-style addressing)
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_prefix: str = "media/"
    s3_access_key: Secret = field(default_factory=lambda: Secret(""))
    s3_secret_key: Secret = field(default_factory=lambda: Secret(""))
    s3_public_url: str = ""            # readers fetch files here (CDN); empty: the server relays them
    image_workers: int = 2             # threads re-encoding uploaded images, per process
    image_queue: int = 16              # uploads waiting for one; more are asked to retry
    mass_sends_per_month: int = 4      # a service account's followers get at most 4 a month
    visits_rollup_seconds: float = 300  # Redis visit counts into PostgreSQL this often


@dataclass(frozen=True)
class CaseworkSettings:
    sweep_seconds: float = 60          # deadlines looked at this often (warn, due, escalate)
    # Reminders to cadres: an OA category template with thing1 (item), thing2 (step),
    # time3 (time limit), thing4 (what is asked). Empty: none sent (the console shows all).
    cadre_template_id: str = ""
    # Progress to workers: the OA template, and the Mini Program subscribe template with the
    # same keywords (thing1 item, phrase2 progress, time3, thing4 what next).
    worker_template_id: str = ""
    mp_worker_template_id: str = ""
    quiet_start: int = 22              # reminders due in these China hours wait until quiet_end
    quiet_end: int = 8
    urge_every_hours: float = 4        # 催办 of one item at most this often
    # Appeal categories workers choose from (12351's five by default); those that ask for no
    # decision may be filed anonymously.
    appeal_categories: tuple[str, ...] = ("咨询", "服务帮扶", "信访投诉", "法律援助", "意见建议")
    anonymous_categories: tuple[str, ...] = ("意见建议",)
    bind_ttl: int = 600                # the console's WeChat binding code lasts this long


@dataclass(frozen=True)
class OfficeSettings:
    # 信息报送: points a report earns at each level that adopts it (peers: city 10, province 25,
    # national 40), and the days after the event within which a report still earns them.
    points_city: int = 10
    points_province: int = 25
    points_national: int = 40
    report_late_days: int = 7
    # 会议签到: the venue's QR code changes this often and a scanned code is good this long.
    meeting_code_seconds: int = 30
    meeting_code_max_age: int = 45
    # 使用率: year 1 of the usage arrangement's yearly standards.
    usage_first_year: int = 2020


@dataclass(frozen=True)
class KpiSettings:
    refresh_seconds: float = 300       # the worker recounts today's and yesterday's counters this often


@dataclass(frozen=True)
class LedgerSettings:
    # The log's name on every checkpoint (tlog-checkpoint origin): never change it once nodes follow.
    origin: str = "chuangongzhijia.local/base-data"
    # The province's note key, "PRIVATE+KEY+<name>+<id>+<key>" (wxbackend ledger keygen); empty:
    # changes are queued but no ledger is written.
    signing_key: Secret = field(default_factory=lambda: Secret(""))
    interval: float = 0.2              # seconds between batches
    batch: int = 5000                  # entries per batch and checkpoint at most
    # The city nodes: "<verifier key> <submission URL prefix>" each; a checkpoint is final once
    # ``quorum`` of them have cosigned it.
    witnesses: tuple[str, ...] = ()
    quorum: int = 1
    witness_timeout: float = 5


@dataclass(frozen=True)
class NodeSettings:
    """A city node (``wxbackend node``): witness and mirror of the province's ledger."""
    signing_key: Secret = field(default_factory=lambda: Secret(""))   # cosignature key (type 0x04)
    province_url: str = ""             # the province's server, e.g. https://platform.example.org
    log_key: str = ""                  # the province's verifier key, as it publishes it
    origin: str = "chuangongzhijia.local/base-data"
    app_id: str = ""                   # the node's access entrance at the province (scope ledger.node)
    app_secret: Secret = field(default_factory=lambda: Secret(""))
    # The union codes from the province down to the node's union, e.g. ["SC", "SC-510100"]: the
    # subtree whose entries it keeps (checked on every entry it receives).
    subtree: tuple[str, ...] = ()
    sync_seconds: float = 5            # how often it asks for the newest checkpoint besides pushes
    port: int = 8100


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    json: bool = True


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    wechat: WeChatSettings = field(default_factory=WeChatSettings)
    miniprogram: MiniProgramSettings = field(default_factory=MiniProgramSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    platform: PlatformSettings = field(default_factory=PlatformSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    membership: MembershipSettings = field(default_factory=MembershipSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    activities: ActivitiesSettings = field(default_factory=ActivitiesSettings)
    channels: ChannelsSettings = field(default_factory=ChannelsSettings)
    casework: CaseworkSettings = field(default_factory=CaseworkSettings)
    office: OfficeSettings = field(default_factory=OfficeSettings)
    kpi: KpiSettings = field(default_factory=KpiSettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    node: NodeSettings = field(default_factory=NodeSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    source: str = ""

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir).expanduser().resolve()

    @property
    def media_dir(self) -> Path:
        return Path(self.channels.media_dir).expanduser().resolve() if self.channels.media_dir \
            else self.data_dir / "media"

    @property
    def embedded_database(self) -> bool:
        return not self.database.dsn

    @property
    def embedded_redis(self) -> bool:
        return not self.redis.url

    def replace(self, **sections: Any) -> Settings:
        """A copy with some keys changed: ``replace(wechat={"api_base": url})``."""
        changes = {}
        for name, values in sections.items():
            current = getattr(self, name)
            changes[name] = dataclasses.replace(current, **_coerce_section(type(current), values))
        return dataclasses.replace(self, **changes)


_SECTION_TYPES = {name: hint for name, hint in typing.get_type_hints(Settings).items()
                  if name != "source"}


def _coerce(name: str, hint: Any, value: Any) -> Any:
    if hint is Secret or hint == "Secret":
        return value if isinstance(value, Secret) else Secret(str(value))
    if hint is bool or hint == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if hint is int or hint == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
    if hint is float or hint == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if typing.get_origin(hint) is tuple:
        # a TOML array, or a comma-separated string from the environment
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{name}: expected a list")
        return tuple(str(item).strip() for item in items if str(item).strip())
    if hint is dict or hint == "dict":
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a table")
        return value
    return str(value)


# Settings that no longer do anything: accepted, with a warning, so older config files still load.
_RETIRED = {("wechat", "dedup_ttl"): "retries are recognised by PostgreSQL alone",
            ("server", "xheaders"): "forwarded headers are believed only from [server] "
                                    "trusted_proxies, e.g. [\"127.0.0.1\"] with nginx on this host"}


def _coerce_section(cls: type, values: dict[str, Any], section: str = "") -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in values.items():
        if (section, key) in _RETIRED:
            log.warning("[%s] %s is no longer used (%s); remove it", section, key,
                        _RETIRED[section, key])
            continue
        if key not in hints:
            raise ConfigError(f"unknown setting [{section or cls.__name__}] {key}")
        out[key] = _coerce(f"[{section}] {key}", hints[key], value)
    return out


def _env_overrides(environ: typing.Mapping[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"{name}: expected {ENV_PREFIX}SECTION__KEY")
        out.setdefault(parts[0], {})[parts[1]] = value
    return out


def load_settings(path: str | os.PathLike | None = None,
                  environ: typing.Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), apply environment overrides, validate, return settings."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"配置文件不存在 / config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for section, values in _env_overrides(environ).items():
        raw.setdefault(section, {}).update(values)
    kwargs: dict[str, Any] = {}
    for section, values in raw.items():
        if section not in _SECTION_TYPES:
            raise ConfigError(f"unknown section [{section}]")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table")
        cls = _SECTION_TYPES[section]
        kwargs[section] = cls(**_coerce_section(cls, values, section))
    settings = Settings(**kwargs, source=str(path or ""))
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    wx = settings.wechat
    if settings.membership.certify_without_phone not in {"review", "allow"}:
        raise ConfigError("[membership] certify_without_phone must be review or allow")
    if settings.privacy.inbound_retention_days < 1:
        raise ConfigError("[privacy] inbound_retention_days must be at least 1")
    ch = settings.channels
    if ch.media_store not in {"file", "s3"}:
        raise ConfigError("[channels] media_store must be file or s3")
    if ch.media_store == "s3" and not (ch.s3_endpoint and ch.s3_bucket and ch.s3_access_key.reveal()
                                       and ch.s3_secret_key.reveal()):
        raise ConfigError("[channels] media_store = s3 needs s3_endpoint, s3_bucket, s3_access_key "
                          "and s3_secret_key")
    if not 1 <= ch.image_workers <= 32 or not 0 <= ch.image_queue <= 1000:
        raise ConfigError("[channels] image_workers must be 1-32 and image_queue 0-1000")
    if not 0 <= ch.mass_sends_per_month <= 31:
        raise ConfigError("[channels] mass_sends_per_month must be between 0 and 31")
    if ch.visits_rollup_seconds < 10:
        raise ConfigError("[channels] visits_rollup_seconds must be at least 10")
    if not 0 <= settings.admin.refused_delay_ms <= 60_000:
        raise ConfigError("[admin] refused_delay_ms must be between 0 and 60000")
    if wx.message_mode not in {"plain", "compat", "safe"}:
        raise ConfigError("[wechat] message_mode must be plain, compat or safe")
    if wx.token_endpoint not in {"stable", "classic"}:
        raise ConfigError("[wechat] token_endpoint must be stable or classic")
    for key in ("encoding_aes_key", "previous_encoding_aes_key"):
        value = getattr(wx, key).reveal()
        if value and (len(value) != 43 or not value.isalnum()):
            raise ConfigError(f"[wechat] {key} must be the 43 letters/digits shown in the console")
    if settings.sms.provider not in {"console", "tencent"}:
        raise ConfigError("[sms] provider must be console or tencent")
    if settings.sessions.secure_cookies not in {"auto", "always", "never"}:
        raise ConfigError("[sessions] secure_cookies must be auto, always or never")
    for proxy in settings.server.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(f"[server] trusted_proxies: {proxy!r} is not an address or CIDR") from None
    if settings.server.max_body_bytes < wx.max_message_bytes:
        raise ConfigError("[server] max_body_bytes must be at least [wechat] max_message_bytes")


def require_security(settings: Settings) -> None:
    """Personal data cannot be stored without the field and blind-index keys, nor an audit
    record written without the audit key."""
    sec = settings.security
    missing = [f"[security] {k}" for k, v in (("field_keys", sec.field_keys),
                                              ("index_key", sec.index_key),
                                              ("audit_key", sec.audit_key)) if not v]
    if missing:
        raise ConfigError(f"缺少加密密钥：{', '.join(missing)}（可用 wxbackend init-config 生成）"
                          f" / missing keys: {', '.join(missing)}")
    try:
        audit_key = base64.b64decode(sec.audit_key.reveal(), validate=True)
    except ValueError:
        audit_key = b""
    if len(audit_key) < 16:
        raise ConfigError("[security] audit_key 应为至少 16 字节的 base64（可用 wxbackend init-config 生成）"
                          " / [security] audit_key must be base64 of at least 16 bytes")
    if settings.sms.provider == "tencent":
        sms = settings.sms
        absent = [f"[sms] {k}" for k, v in (
            ("tencent_secret_id", sms.tencent_secret_id), ("tencent_secret_key", sms.tencent_secret_key),
            ("sdk_app_id", sms.sdk_app_id), ("sign_name", sms.sign_name),
            ("template_id", sms.template_id)) if not v]
        if absent:
            raise ConfigError(f"缺少短信配置：{', '.join(absent)} / missing SMS settings")


def require_wechat(settings: Settings) -> None:
    """Stop start-up with a clear message when a mandatory WeChat secret is missing."""
    wx = settings.wechat
    missing = [name for name, value in (
        ("appid", wx.appid), ("secret", wx.secret), ("token", wx.token),
        ("original_id", wx.original_id),
    ) if not value]
    if wx.message_mode != "plain" and not wx.encoding_aes_key:
        missing.append("encoding_aes_key")
    if missing:
        keys = ", ".join(f"[wechat] {m}" for m in missing)
        raise ConfigError(
            f"缺少必需的公众号配置：{keys}（可在配置文件或环境变量 "
            f"{ENV_PREFIX}WECHAT__<KEY> 中设置）/ missing mandatory settings: {keys}")
