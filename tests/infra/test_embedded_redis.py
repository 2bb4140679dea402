"""The embedded Redis keeps its data across a restart (append-only file under data_dir): what
it remembers for replay protection (platform API nonces) must not vanish with a restart."""

from __future__ import annotations

import time

import redis

from wxbackend.infra.embedded import EmbeddedServers


def test_a_key_survives_a_restart(tmp_path) -> None:
    with EmbeddedServers(tmp_path, want_postgres=False) as servers:
        client = redis.Redis.from_url(servers.redis_url)
        client.set("platform:nonce:app:n1", 1, ex=900)
        client.close()
    assert any((tmp_path / "redis").rglob("*.aof")), "the append-only file is under data_dir"
    with EmbeddedServers(tmp_path, want_postgres=False) as servers:
        client = redis.Redis.from_url(servers.redis_url)
        assert client.get("platform:nonce:app:n1") == b"1"
        assert 0 < client.ttl("platform:nonce:app:n1") <= 900
        client.close()


def test_it_is_ready_only_once_its_data_is_loaded(tmp_path) -> None:
    """Redis accepts connections while it loads its file and answers ``LOADING`` meanwhile: the
    first command after a start with a large data set must not meet that."""
    with EmbeddedServers(tmp_path, want_postgres=False) as servers:
        client = redis.Redis.from_url(servers.redis_url)
        client.execute_command("DEBUG", "POPULATE", 1_500_000, "bulk", 64)
        client.bgrewriteaof()
        while client.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.05)
        client.close()
    with EmbeddedServers(tmp_path, want_postgres=False) as servers:
        client = redis.Redis.from_url(servers.redis_url)
        assert client.dbsize() == 1_500_000  # raised BusyLoadingError when ready meant "port open"
        client.close()
