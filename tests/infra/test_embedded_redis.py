"""The embedded Redis keeps its data across a restart (append-only file under data_dir): what
it remembers for replay protection (platform API nonces) must not vanish with a restart."""

from __future__ import annotations

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
