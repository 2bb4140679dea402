"""A city node's HTTP side: the tlog-witness ``add-checkpoint`` call the province makes, and the
node's status for its operators."""

from __future__ import annotations

import base64

import tornado.web

from wxbackend.handlers.base import BaseHandler, NotFoundHandler
from wxbackend.infra.metrics import render
from wxbackend.services.ledger.mirror import Mirror
from wxbackend.services.ledger.witness import Witness, WitnessRefused

MAX_SUBMISSION = 64 * 1024


class AddCheckpointHandler(BaseHandler):
    route = "/witness/add-checkpoint"

    def initialize(self, witness: Witness) -> None:
        self.witness = witness

    async def post(self) -> None:
        self.set_header("Cache-Control", "no-store")
        try:
            lines = await self.witness.add_checkpoint(self.request.body)
        except WitnessRefused as exc:
            self.set_status(exc.status)
            if exc.status == 409:
                self.set_header("Content-Type", "text/x.tlog.size")
                self.finish(f"{exc.size}\n")
            else:
                self.set_header("Content-Type", "text/plain; charset=utf-8")
                self.finish(f"{exc}\n")
            return
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(lines)


class StatusHandler(BaseHandler):
    route = "/node/status"

    def initialize(self, witness: Witness, mirror: Mirror) -> None:
        self.witness = witness
        self.mirror = mirror

    async def get(self) -> None:
        cosigned = await self.witness.state(self.mirror.origin)
        held = await self.mirror.state()
        self.set_header("Cache-Control", "no-store")
        self.write_json({
            "name": self.witness.signer.name, "public_key": self.witness.signer.verifier().vkey(),
            "origin": self.mirror.origin, "subtree": self.mirror.codes,
            "cosigned_size": cosigned["size"] if cosigned else 0,
            "verified_size": held.size, "verified_root": base64.b64encode(held.root).decode(),
            "entries_held": held.entries, "evidence": await self.mirror.evidence_count()})


class HealthHandler(BaseHandler):
    route = "/healthz"

    async def get(self) -> None:
        self.write_json({"status": "ok"})


class MetricsHandler(BaseHandler):
    route = "/metrics"

    async def get(self) -> None:
        body, content_type = render()
        self.set_header("Content-Type", content_type)
        self.finish(body)


def make_node_app(witness: Witness, mirror: Mirror) -> tornado.web.Application:
    return tornado.web.Application(
        [(AddCheckpointHandler.route, AddCheckpointHandler, {"witness": witness}),
         (StatusHandler.route, StatusHandler, {"witness": witness, "mirror": mirror}),
         (HealthHandler.route, HealthHandler), (MetricsHandler.route, MetricsHandler)],
        default_handler_class=NotFoundHandler, compress_response=False, xsrf_cookies=False)
