"""Bulk SQL for the demo province (:mod:`wxbackend.sandbox.province`): a few thousand rows a
table in one statement each, every timestamp given by the caller (the history is back-dated,
and the database's own now() would make two generations differ). Personal data arrives sealed."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg


async def insert_counties(conn: asyncpg.Connection, rows: list[tuple[str, str, str]],
                          at: datetime) -> dict[str, int]:
    """County unions ``(division code, name, city division code)`` under their city unions;
    ``{division code: org id}``. Counties that exist already are kept."""
    await conn.execute(
        """INSERT INTO orgs (parent_id, code, name, short_name, kind, division_code, path,
                             created_at, updated_at)
           SELECT c.id, 'SC-' || r.code, r.name || '总工会', r.name, 'county', r.code, '0', $4, $4
           FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY r(code, name, city, n)
           JOIN orgs c ON c.code = 'SC-' || r.city AND c.kind = 'city'
           ORDER BY r.n
           ON CONFLICT (code) DO NOTHING""",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], at)
    await conn.execute(
        """UPDATE orgs o SET path = (p.path::text || '.' || o.id)::ltree FROM orgs p
           WHERE o.kind = 'county' AND p.id = o.parent_id AND o.path = '0'""")
    found = await conn.fetch("SELECT division_code, id FROM orgs WHERE kind = 'county'")
    return {r["division_code"]: r["id"] for r in found}


async def insert_grassroots(conn: asyncpg.Connection, rows: list[tuple]) -> list[int]:
    """Grassroots unions ``(parent id, name, credit code, employer, region code, via platform,
    founded at)``, in order; their ids."""
    cols = list(zip(*rows, strict=True))
    ids = await conn.fetch(
        """INSERT INTO orgs (parent_id, code, name, kind, credit_code, employer_name, region_code,
                             founded_via_platform, path, created_at, updated_at)
           SELECT r.parent, 'SC-G-' || r.credit, r.name, 'grassroots', r.credit, r.employer,
                  r.region, r.via, '0', r.at, r.at
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[],
                       $7::timestamptz[]) WITH ORDINALITY r(parent, name, credit, employer, region,
                                                            via, at, n)
           ORDER BY r.n
           RETURNING id, credit_code""", *cols)
    await conn.execute(
        """UPDATE orgs o SET path = (p.path::text || '.' || o.id)::ltree FROM orgs p
           WHERE o.kind = 'grassroots' AND p.id = o.parent_id AND o.path = '0'""")
    by_code = {r["credit_code"]: r["id"] for r in ids}
    return [by_code[r[2]] for r in rows]


async def insert_accounts(conn: asyncpg.Connection, rows: list[tuple]) -> list[int]:
    """Platform accounts ``(nickname, phone_enc, phone_bidx, privacy version, region code, home
    org id, created at, registered at or None)``: the phone verified by SMS and the privacy
    notice accepted when created; their ids in order."""
    cols = list(zip(*rows, strict=True))
    made = await conn.fetch(
        """INSERT INTO accounts (nickname, phone_enc, phone_bidx, phone_verified_at, phone_source,
                                 privacy_version, privacy_accepted_at, region_code, home_org_id,
                                 registered_at, created_at, updated_at)
           SELECT r.nick, r.enc, r.bidx, r.at, 'sms', r.privacy, r.at, r.region, r.home, r.registered,
                  r.at, coalesce(r.registered, r.at)
           FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::text[], $5::text[], $6::bigint[],
                       $7::timestamptz[], $8::timestamptz[])
                WITH ORDINALITY r(nick, enc, bidx, privacy, region, home, at, registered, n)
           ORDER BY r.n
           RETURNING id, phone_bidx""", *cols)
    by_phone = {r["phone_bidx"]: r["id"] for r in made}
    return [by_phone[r[2]] for r in rows]


async def insert_identities(conn: asyncpg.Connection,
                            rows: list[tuple[int, str, str, str, datetime]]) -> None:
    """Identities ``(account id, kind, issuer, subject, first seen at)``: the Official Account
    openid (issuer: the appid) and the unionid (issuer ``open``), as sign-in stores them."""
    cols = list(zip(*rows, strict=True))
    await conn.execute(
        """INSERT INTO account_identities (account_id, kind, issuer, subject, created_at, last_seen_at)
           SELECT r.account, r.kind, r.issuer, r.subject, r.at, r.at
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                WITH ORDINALITY r(account, kind, issuer, subject, at, n)
           ORDER BY r.n""", *cols)


async def insert_members(conn: asyncpg.Connection, rows: list[tuple]) -> list[int]:
    """Member records (columns below, in order); their ids."""
    cols = list(zip(*rows, strict=True))
    made = await conn.fetch(
        """INSERT INTO members (org_id, member_no, name, id_number_enc, id_number_bidx, phone_enc,
                                phone_bidx, gender, birth_date, ethnicity, education, political_status,
                                household_type, employer, source, joined_on, account_id,
                                certified_at, created_at, updated_at)
           SELECT r.org, r.no, r.name, r.id_enc, r.id_bidx, r.ph_enc, r.ph_bidx, r.gender, r.born,
                  r.eth, r.edu, r.pol, r.household, r.employer, r.source, r.joined, r.account,
                  r.certified, r.created, coalesce(r.certified, r.created)
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[],
                       $7::bytea[], $8::smallint[], $9::date[], $10::text[], $11::text[], $12::text[],
                       $13::text[], $14::text[], $15::text[], $16::date[], $17::bigint[],
                       $18::timestamptz[], $19::timestamptz[])
                WITH ORDINALITY r(org, no, name, id_enc, id_bidx, ph_enc, ph_bidx, gender, born, eth,
                                  edu, pol, household, employer, source, joined, account, certified,
                                  created, n)
           ORDER BY r.n
           RETURNING id, member_no""", *cols)
    by_no = {r["member_no"]: r["id"] for r in made}
    return [by_no[r[1]] for r in rows]


async def log_changes(conn: asyncpg.Connection,
                      rows: list[tuple[str, str, str, dict, str, datetime]]) -> None:
    """Base-data change log entries ``(entity, entity id, action, data, actor, at)``, in order
    (the ledger queues them as production's changes)."""
    cols = list(zip(*rows, strict=True))
    await conn.execute(
        """INSERT INTO base_data_changes (entity, entity_id, action, data, actor, created_at)
           SELECT r.entity, r.id, r.action, r.data, r.actor, r.at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[],
                       $6::timestamptz[]) WITH ORDINALITY r(entity, id, action, data, actor, at, n)
           ORDER BY r.n""", *cols)


async def insert_offerings(conn: asyncpg.Connection, rows: list[tuple]) -> list[int]:
    """Past activities and services ``(kind, form, org id, title, summary, place, starts, ends,
    opens, closes, stock, created by, published at, status)``, first come, open to anyone;
    their ids in order."""
    cols = list(zip(*rows, strict=True))
    made = await conn.fetch(
        """INSERT INTO offerings (kind, form, org_id, org_path, title, summary, place, starts_at,
                                  ends_at, opens_at, closes_at, mode, stock, audience, status,
                                  created_by, created_at, updated_at, published_at)
           SELECT r.kind, r.form, r.org, o.path, r.title, r.summary, r.place, r.starts, r.ends,
                  r.opens, r.closes, 'first_come', r.stock, '{}', r.status, r.author,
                  r.published, r.closes, r.published
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                       $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[],
                       $11::int[], $12::bigint[], $13::timestamptz[], $14::text[])
                WITH ORDINALITY r(kind, form, org, title, summary, place, starts, ends, opens, closes,
                                  stock, author, published, status, n)
           JOIN orgs o ON o.id = r.org
           ORDER BY r.n
           RETURNING id""", *cols)
    return [r["id"] for r in made]


async def insert_claims(conn: asyncpg.Connection, rows: list[tuple[int, int, str, datetime, datetime | None,
                                                                   str | None]]) -> None:
    """Places taken ``(offering id, account id, status, taken at, used at, used by)``; the
    offerings' ``taken`` counts follow."""
    cols = list(zip(*rows, strict=True))
    await conn.execute(
        """INSERT INTO offering_claims (offering_id, account_id, status, china_day, ticket, used_at,
                                        used_by, created_at, updated_at)
           SELECT r.offering, r.account, r.status, (r.at AT TIME ZONE 'Asia/Shanghai')::date,
                  gen_random_uuid(), r.used, r.by, r.at, coalesce(r.used, r.at)
           FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                       $6::text[]) WITH ORDINALITY r(offering, account, status, at, used, by, n)
           ORDER BY r.n""", *cols)
    await conn.execute(
        """UPDATE offerings o SET taken = c.n FROM (
               SELECT offering_id, count(*) AS n FROM offering_claims
               WHERE status IN ('held', 'confirmed', 'used') GROUP BY offering_id) c
           WHERE o.id = c.offering_id AND o.id = ANY($1::bigint[])""", sorted({r[0] for r in rows}))


async def channels_of(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT c.id, c.org_id, c.org_path::text AS org_path, c.slug, o.kind, o.division_code
           FROM channels c JOIN orgs o ON o.id = c.org_id ORDER BY c.id""")


async def insert_article(conn: asyncpg.Connection, *, channel_id: int, author_id: int, fields: dict,
                         published_at: datetime, etag_of, search_terms: list[str],
                         search_text: str) -> int:
    """A published article with its first revision (``etag_of(article id)`` names it)."""
    article_id = await conn.fetchval(
        """INSERT INTO articles (channel_id, org_path, created_by, stage, working, live_revision,
                                 first_published_at, published_at, search_terms, search_text,
                                 created_at, updated_at)
           SELECT c.id, c.org_path, $2, 'live', $3, 1, $4, $4, $5, $6, $4, $4
           FROM channels c WHERE c.id = $1
           RETURNING id""", channel_id, author_id, fields, published_at, search_terms, search_text)
    await conn.execute(
        """INSERT INTO article_revisions (article_id, number, title, author, summary, cover_id, body,
                                          attachments, etag, published_by, published_at)
           VALUES ($1, 1, $2, $3, $4, NULL, $5, '[]', $6, $7, $8)""",
        article_id, fields["title"], fields["author"], fields["summary"], fields["body"],
        etag_of(article_id), author_id, published_at)
    return article_id


async def insert_channel_visits(conn: asyncpg.Connection, rows: list[tuple[int, date, int, int]]) -> None:
    """Channels' page views and visitors ``(channel id, day, views, visitors)``."""
    cols = list(zip(*rows, strict=True))
    await conn.execute(
        """INSERT INTO channel_visits (channel_id, day, views, visitors)
           SELECT * FROM unnest($1::bigint[], $2::date[], $3::bigint[], $4::bigint[])
           ON CONFLICT (channel_id, day) DO UPDATE SET views = excluded.views,
                                                       visitors = excluded.visitors""", *cols)


async def city_ids(conn: asyncpg.Connection) -> dict[str, int]:
    """The city unions' ids by their division code."""
    return {r["division_code"]: r["id"] for r in await conn.fetch(
        "SELECT division_code, id FROM orgs WHERE kind = 'city'")}
