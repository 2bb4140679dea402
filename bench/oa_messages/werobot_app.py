"""The comparison server: a WeRoBot app answering every text message with one fixed Chinese text.

It runs in its own virtualenv (``bench/.venv-werobot``: werobot, waitress, cryptography), never in
the project's, and is served as a plain WSGI app by waitress::

    WEROBOT_TOKEN=... WEROBOT_AES_KEY=... WEROBOT_APPID=... \\
        waitress-serve --listen=127.0.0.1:8001 --threads=8 --call werobot_app:create_app

(waitress-serve puts its working directory on ``sys.path``; run it from this folder.)

The answer is the text our server gives to "帮助" (read from the seed file, so both servers encrypt
a reply of the same length). WeRoBot keeps its defaults otherwise, including its default session
storage (SQLite: one read and one committed write per message); ``WEROBOT_SESSION=off`` turns it
off. Safe mode works the WeRoBot way: a body with an ``<Encrypt>`` element is decrypted after the
``msg_signature`` query parameter is checked, and once any encrypted push has been seen every
reply is encrypted.
"""

from __future__ import annotations

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
    session = os.environ.get("WEROBOT_SESSION", "sqlite")
    robot = werobot.WeRoBot(
        token=os.environ["WEROBOT_TOKEN"],
        encoding_aes_key=os.environ["WEROBOT_AES_KEY"],
        app_id=os.environ["WEROBOT_APPID"],
    )
    if session == "off":
        robot.config["SESSION_STORAGE"] = False
    elif os.environ.get("WEROBOT_SESSION_FILE"):
        # WeRoBot's default storage class, with its file outside the source tree.
        robot.config["SESSION_STORAGE"] = SQLiteStorage(os.environ["WEROBOT_SESSION_FILE"])
    answer = help_text()

    @robot.text
    def reply(message):
        return answer

    return robot.wsgi
