"""What the sandbox page shows a trainee: who they can be (the demo's cadres with the code their
authenticator app would show now, and some of its workers), read from what the demo province's
generation recorded. Nothing here is secret: every person and key of the sandbox is made up."""

from __future__ import annotations

import json
from pathlib import Path

import pyotp

from wxbackend.infra.files import write_private
from wxbackend.services.clock import Clock, china_now

SHOWN_WORKERS = 50


class Guide:
    def __init__(self, demo: dict, *, password: str, now: Clock = china_now) -> None:
        self._demo = demo
        self._password = password
        self._now = now

    @classmethod
    def load(cls, path: Path, *, password: str, now: Clock = china_now) -> Guide:
        return cls(json.loads(path.read_text(encoding="utf-8")), password=password, now=now)

    @staticmethod
    def save(path: Path, demo: dict) -> None:
        """Private like the sandbox's config: made up as they are, the accounts' keys are for
        whoever runs the sandbox, not for the machine's other users."""
        write_private(path, json.dumps(demo, ensure_ascii=False, indent=1))

    @property
    def password(self) -> str:
        return self._password

    @property
    def cadres(self) -> list[dict]:
        return self._demo["cadres"]

    @property
    def workers(self) -> list[dict]:
        return self._demo["workers"]

    def people(self) -> dict:
        at = self._now()
        return {
            "password": self._password,
            "cadres": [{"username": c["username"], "display_name": c["display_name"], "role": c["role"],
                        "org_name": c["org_name"], "tour": c["tour"],
                        "totp": pyotp.TOTP(c["totp_secret"]).at(at) if c.get("totp_secret") else None}
                       for c in self._demo["cadres"]],
            "workers": [{"name": w["name"], "phone": w["phone"], "member": w["member"], "openid": w["openid"]}
                        for w in self._demo["workers"][:SHOWN_WORKERS]],
            # The redemption desk's accounts: their first password is the one the union was shown.
            "verifiers": [{k: v[k] for k in ("username", "password", "display_name", "org_name", "offerings")}
                          for v in self._demo.get("verifiers", [])],
            "counts": self._demo.get("counts", {}),
        }
