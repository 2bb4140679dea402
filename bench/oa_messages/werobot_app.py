"""The comparison server: a WeRoBot app answering every text message with one fixed Chinese text.

It runs in its own virtualenv (``bench/.venv-werobot``: werobot, waitress, cryptography), never in
the project's, and is served as a plain WSGI app by waitress::

    WEROBOT_TOKEN=... WEROBOT_AES_KEY=... WEROBOT_APPID=... \\
        waitress-serve --listen=127.0.0.1:8001 --threads=8 --call werobot_app:create_app

(waitress-serve puts its working directory on ``sys.path``; run it from this folder.)

The answer is the text our server gives to "帮助" (read from the seed file, so both servers encrypt
a reply of the same length). Safe mode works the WeRoBot way: a body with an ``<Encrypt>`` element
is decrypted after the ``msg_signature`` query parameter is checked (the timestamp's age is not),
and once any encrypted push has been seen every reply is encrypted.

Session storage is off (``WEROBOT_SESSION=off``, the default here). WeRoBot's default is SQLite
through one ``sqlite3`` connection shared by every waitress thread; under concurrent load its
``commit`` fails now and then (``SystemError: error return without exception set``), WeRoBot logs
the exception and answers an empty 200, which WeChat takes as "no reply". ``WEROBOT_SESSION=sqlite``
(with ``WEROBOT_SESSION_FILE``) brings that default back. A fixed answer needs no session anyway,
so with it off WeRoBot does less per message than our server, which records every push.
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path

import werobot
from werobot.session.sqlitestorage import SQLiteStorage

RULES = Path(__file__).resolve().parents[2] / "wxbackend" / "data" / "keyword_rules.toml"


def help_text() -> str:
    with RULES.open("rb") as fh:
        rules = tomllib.load(fh)["rule"]
    return next(rule["reply"] for rule in rules if rule["name"] == "帮助")


def create_app():
    # waitress warns "Task queue depth is N" on every request that has to queue, which under a
    # closed-loop load is nearly every request; our server is measured with logging at WARNING
    # and logs nothing per request, so this per-request line is silenced for a like comparison.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    robot = werobot.WeRoBot(
        token=os.environ["WEROBOT_TOKEN"],
        encoding_aes_key=os.environ["WEROBOT_AES_KEY"],
        app_id=os.environ["WEROBOT_APPID"],
    )
    session = os.environ.get("WEROBOT_SESSION", "off")
    if session == "off":
        robot.config["SESSION_STORAGE"] = False
    elif session == "sqlite" and os.environ.get("WEROBOT_SESSION_FILE"):
        # WeRoBot's default storage class, with its file outside the source tree.
        robot.config["SESSION_STORAGE"] = SQLiteStorage(os.environ["WEROBOT_SESSION_FILE"])
    answer = help_text()

    @robot.text
    def reply(message):
        return answer

    return robot.wsgi
