"""What both benchmark scripts share: the test account, the expected answer, and the pushes.

The pushes are made by ``tests.fakes.FakePusher``, the tests' independent implementation of
WeChat's safe mode (安全模式), so they are byte for byte what WeChat sends: a text message "帮助"
from one of a few thousand followers, each with its own MsgId and a current timestamp.
"""

from __future__ import annotations

import random
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes import FakePusher  # noqa: E402

# A made-up account: nothing here is a real AppID or secret.
TOKEN = "benchToken2026oaMessages"
AES_KEY = "B3nchKeyForOaMessages0123456789abcdefGHIJKL"  # 43 letters and digits
APPID = "wxbe0c0ffee0123456"
SECRET = "0123456789abcdef0123456789abcdef"
ORIGINAL_ID = "gh_be0c0ffee012"
PATH = "/wechat/oa"
CONTENT = "帮助"
N_OPENIDS = 5000
_OPENID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

assert len(AES_KEY) == 43 and AES_KEY.isalnum()


def help_reply() -> str:
    """The answer our seed gives to "帮助" (WeRoBot's app answers the same text)."""
    with (ROOT / "wxbackend" / "data" / "keyword_rules.toml").open("rb") as fh:
        rules = tomllib.load(fh)["rule"]
    return next(rule["reply"] for rule in rules if rule["name"] == "帮助")


def pusher() -> FakePusher:
    return FakePusher(TOKEN, AES_KEY, APPID, ORIGINAL_ID, mode="safe")


def openids(n: int = N_OPENIDS, seed: int = 2026) -> list[str]:
    """``n`` distinct 28-character openids shaped like WeChat's (``o`` + 27 url-safe chars)."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        out.add("o" + "".join(rng.choice(_OPENID_ALPHABET) for _ in range(27)))
    return sorted(out)


class MsgIds:
    """Unique MsgIds for one driver process: 64-bit numbers of WeChat's size, never repeated."""

    def __init__(self) -> None:
        self._next = random.SystemRandom().randint(24_000_000_000_000_000, 24_900_000_000_000_000)

    def take(self, n: int) -> range:
        first = self._next
        self._next += n
        return range(first, first + n)


def make_pushes(n: int, msg_ids: MsgIds, users: list[str],
                pushing: FakePusher | None = None) -> Iterator[tuple[dict[str, str], bytes]]:
    """``n`` fresh pushes as (query, body); consecutive pushes come from different followers, so
    the requests in flight at one moment never update the same follower row."""
    pushing = pushing or pusher()
    for i, msg_id in enumerate(msg_ids.take(n)):
        openid = users[i % len(users)]
        xml = pushing.text(openid, CONTENT, msg_id=msg_id)
        yield pushing.request(xml, openid=openid)


def path_with_query(query: dict[str, str]) -> str:
    # Every value is hex, digits or an openid (url-safe): nothing needs percent-encoding.
    return PATH + "?" + "&".join(f"{k}={v}" for k, v in query.items())
