"""The most safe-mode messages one core can open, answer and seal with no HTTP, database or Redis.

    .venv/bin/python bench/oa_messages/ceiling.py [--seconds 3] [--runs 3] [--core 0] [--json]

Two paths, timed the same way (each run: a fixed time slice, cycling over pre-made pushes):

* ``envelope``: what our handler does around the database: ``Envelope.open`` (size, timestamp
  window, signature, defusedxml parse of the envelope, msg_signature, AES decrypt and AppID check,
  defusedxml parse of the inner document, message checks), the text reply rendered the way the
  server renders it (``envelope.text_reply`` where it exists, else wechatpy's
  ``create_reply(text, opened.message).render()``) and ``Envelope.seal``.
* ``wechatpy``: wechatpy alone: ``check_signature``, ``WeChatCrypto.decrypt_message``,
  ``parse_message``, ``create_reply(...).render()``, ``WeChatCrypto.encrypt_message``.

The difference is the cost of our extra checks. Both are checked once (the sealed reply opened by
the tests' independent WeChat implementation) before they are timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pushes import (
    AES_KEY,
    APPID,
    ORIGINAL_ID,
    SECRET,
    TOKEN,
    MsgIds,
    help_reply,
    make_pushes,
    openids,
    pusher,
)
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature

from wxbackend.config import load_settings
from wxbackend.wechat import envelope as envelope_module
from wxbackend.wechat.envelope import Envelope

Step = Callable[[dict[str, str], bytes], str]

# The server's own reply renderer when it has one; older code replied through wechatpy's message.
_text_reply = getattr(envelope_module, "text_reply", None)
REPLY_BUILDER = ("envelope.text_reply" if _text_reply is not None
                 else "wechatpy create_reply(...).render()")


def render_reply(opened, text: str) -> str:
    if _text_reply is not None:
        return _text_reply(opened, text)
    return create_reply(text, opened.message).render()


def envelope_path(text: str) -> Step:
    settings = load_settings(None, environ={}).replace(wechat={
        "appid": APPID, "secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY,
        "original_id": ORIGINAL_ID, "message_mode": "safe"})
    envelope = Envelope(settings.wechat)

    def step(query: dict[str, str], body: bytes) -> str:
        opened = envelope.open(query, body)
        return envelope.seal(render_reply(opened, text), opened, query)

    return step


def wechatpy_path(text: str) -> Step:
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)

    def step(query: dict[str, str], body: bytes) -> str:
        check_signature(TOKEN, query["signature"], query["timestamp"], query["nonce"])
        xml = crypto.decrypt_message(body, query["msg_signature"], query["timestamp"],
                                     query["nonce"])
        message = parse_message(xml)
        reply = create_reply(text, message).render()
        return crypto.encrypt_message(reply, query["nonce"], query["timestamp"])

    return step


def verify(step: Step, push: tuple[dict[str, str], bytes], text: str) -> None:
    query, body = push
    sealed = step(query, body)
    plain = pusher().open_reply(sealed, timestamp=query["timestamp"], nonce=query["nonce"])
    fields = pusher().parse(plain)
    if fields.get("MsgType") != "text" or fields.get("Content") != text:
        raise SystemExit(f"ceiling: unexpected reply {fields!r}")


def timed(step: Step, pool: list[tuple[dict[str, str], bytes]], seconds: float) -> float:
    """Messages per second over ``seconds`` (the clock is read every 64 messages)."""
    n = 0
    size = len(pool)
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(64):
            query, body = pool[n % size]
            step(query, body)
            n += 1
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def measure(seconds: float, runs: int, pool_size: int) -> dict:
    text = help_reply()
    users = openids()
    # Made just before timing so every timestamp is well inside the 300 s window.
    pool = list(make_pushes(pool_size, MsgIds(), users))
    paths = {"envelope": envelope_path(text), "wechatpy": wechatpy_path(text)}
    results: dict[str, list[float]] = {name: [] for name in paths}
    for step in paths.values():
        verify(step, pool[0], text)
        timed(step, pool, min(0.5, seconds))  # warm-up
    for _ in range(runs):
        for name, step in paths.items():  # interleaved, like the HTTP runs
            results[name].append(timed(step, pool, seconds))
    out = {"seconds": seconds, "runs": runs, "pool": pool_size,
           "core": sorted(os.sched_getaffinity(0)), "python": platform.python_version(),
           "reply_builder": REPLY_BUILDER}
    for name, values in results.items():
        out[name] = {"median": statistics.median(values), "min": min(values), "max": max(values),
                     "runs": values}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one timed run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pool", type=int, default=5000, help="distinct pushes cycled over")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin this process to")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    result = measure(args.seconds, args.runs, args.pool)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"ceiling on core {args.core}, {args.runs} runs of {args.seconds:g} s, "
          f"{args.pool} distinct pushes")
    for name in ("envelope", "wechatpy"):
        r = result[name]
        print(f"  {name:9s} {r['median']:8.0f} msg/s  (range {r['min']:.0f}-{r['max']:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
