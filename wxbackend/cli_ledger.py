"""``wxbackend ledger …`` and ``wxbackend node``: the base-data ledger's commands."""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import logging
import signal
import sys
from pathlib import Path

from wxbackend.config import Settings

log = logging.getLogger("wxbackend")


def cmd_keygen(settings: Settings | None, args: argparse.Namespace) -> int:
    """A new key pair: the province's log key, or a node's cosigning key."""
    from wxbackend.services.ledger.notes import COSIGNATURE_V1, ED25519, NoteError, Signer

    try:
        signer = Signer.generate(args.name, COSIGNATURE_V1 if args.cosigner else ED25519)
    except NoteError as exc:
        print(f"wxbackend: {exc}", file=sys.stderr)
        return 2
    print(f"signing key (secret, for the config): {signer.skey()}")
    print(f"verifier key (public, give it to the others): {signer.verifier().vkey()}")
    return 0


def _read(path: str) -> bytes:
    return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()


def cmd_verify(settings: Settings | None, args: argparse.Namespace) -> int:
    """Check an entry and its receipt offline, with the public keys only."""
    from wxbackend.services.ledger.notes import NoteError, Verifier
    from wxbackend.services.ledger.verify import VerifyError, verify_receipt

    try:
        log_key = Verifier.parse(args.log_key)
        witnesses = [Verifier.parse(k) for k in args.witness_key or []]
        entry = _read(args.entry)
        if args.entry_base64:
            entry = base64.b64decode(entry.strip(), validate=True)
        result = verify_receipt(entry, _read(args.receipt), log_key=log_key, witnesses=witnesses,
                                quorum=args.quorum)
    except (NoteError, VerifyError, OSError, ValueError) as exc:
        print(f"未通过 / FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"通过 / OK: {result.summary()}")
    return 0


def cmd_integrate(settings: Settings, args: argparse.Namespace) -> int:
    """Append everything queued now and sign the checkpoint (the worker does this continuously)."""
    from wxbackend.cli import with_runtime
    from wxbackend.config import ConfigError

    async def job(rt) -> object:
        if not rt.ledger.enabled:
            raise ConfigError("[ledger] signing_key 未配置，账本未启用（可用 wxbackend ledger keygen 生成）")
        return await rt.ledger.integrate_all()

    signed = with_runtime(settings, job)
    if signed is None:
        print("nothing queued")
    else:
        print(f"checkpoint size {signed.size} root {base64.b64encode(signed.root).decode()}")
    return 0


async def _serve_node(settings: Settings, dsn: str, port: int) -> None:
    from wxbackend.handlers.ledger.node import MAX_SUBMISSION, make_node_app
    from wxbackend.node import open_node

    async with open_node(settings, dsn) as node:
        server = make_node_app(node.witness, node.mirror).listen(
            port, settings.server.address, max_body_size=MAX_SUBMISSION)
        gc.collect()
        gc.freeze()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(node.run(stop))
        log.info("ledger node %s serving on %s:%d", node.witness.signer.name, settings.server.address, port)
        await stop.wait()
        log.info("stopping")
        server.stop()
        await task


def cmd_node(settings: Settings, args: argparse.Namespace) -> int:
    """Run a city node: its own (embedded by default) PostgreSQL, migrated, then the witness and
    the mirror until SIGTERM."""
    from wxbackend.cli import _migrate, run_async
    from wxbackend.infra.embedded import EmbeddedServers
    from wxbackend.node import node_keys

    node_keys(settings)
    port = args.port or settings.node.port
    if settings.embedded_database:
        with EmbeddedServers(settings.data_dir, want_postgres=True, want_redis=False) as servers:
            run_async(_migrate(servers.dsn))
            run_async(_serve_node(settings, servers.dsn, port))
    else:
        dsn = settings.database.dsn.reveal()
        run_async(_migrate(dsn))
        run_async(_serve_node(settings, dsn, port))
    log.info("stopped")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    ledger = sub.add_parser("ledger", help="the base-data ledger").add_subparsers(
        dest="ledger_command", required=True)
    keygen = ledger.add_parser("keygen", help="a new key pair (the province's, or --cosigner for a node)")
    keygen.add_argument("--name", required=True, help="the key's name, e.g. chengdu.node.sc")
    keygen.add_argument("--cosigner", action="store_true", help="a node's cosignature key (type 0x04)")
    keygen.set_defaults(func=cmd_keygen, no_settings=True)
    verify = ledger.add_parser("verify", help="check an entry and its receipt offline; exit 1 if it fails")
    verify.add_argument("--entry", required=True, help="the entry's bytes (a file, or - for stdin)")
    verify.add_argument("--entry-base64", action="store_true", help="the entry file holds base64")
    verify.add_argument("--receipt", required=True, help="the tlog-proof receipt (a file, or -)")
    verify.add_argument("--log-key", required=True, help="the province's verifier key")
    verify.add_argument("--witness-key", action="append", help="a node's verifier key (repeatable)")
    verify.add_argument("--quorum", type=int, default=1, help="cosignatures required (default 1)")
    verify.set_defaults(func=cmd_verify, no_settings=True)
    ledger.add_parser("integrate", help="append what is queued and sign a checkpoint now")\
        .set_defaults(func=cmd_integrate)
    node = sub.add_parser("node", help="run a city node (witness and mirror) from [node]")
    node.add_argument("--port", type=int, default=0)
    node.set_defaults(func=cmd_node)
