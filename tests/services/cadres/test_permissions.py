"""The subtree and grant rules, as properties over random union trees and grants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wxbackend.services.cadres.permissions import CATALOGUE, DUTY_LIMITS, Actor, grantable
from wxbackend.services.errors import Forbidden

PERMS = sorted(CATALOGUE)


@st.composite
def trees(draw) -> dict[int, str]:
    """A random union tree: node id → ltree path of ids from the root."""
    n = draw(st.integers(min_value=1, max_value=40))
    paths = {1: "1"}
    for node in range(2, n + 1):
        parent = draw(st.integers(min_value=1, max_value=node - 1))
        paths[node] = f"{paths[parent]}.{node}"
    return paths


def actor(org: int, path: str, perms, role: str = "super_admin", duty: str = "system") -> Actor:
    return Actor(id=org, username=f"u{org}", org_id=org, org_path=path, role=role, duty=duty,
                 permissions=frozenset(perms))


def ancestors(paths: dict[int, str], node: int) -> set[int]:
    return {int(p) for p in paths[node].split(".")}


@settings(max_examples=200, deadline=None)
@given(trees(), st.data())
def test_a_cadre_reaches_exactly_its_subtree(paths, data) -> None:
    me = data.draw(st.sampled_from(sorted(paths)))
    a = actor(me, paths[me], [])
    for node, path in paths.items():
        inside = me in ancestors(paths, node)
        assert a.covers(path) is inside
        if not inside:
            with pytest.raises(Forbidden):
                a.require_within(path)


@settings(max_examples=300, deadline=None)
@given(st.sets(st.sampled_from(PERMS)), st.sets(st.sampled_from(PERMS)),
       st.sampled_from(sorted(DUTY_LIMITS)), st.sampled_from(["super_admin", "cadre"]))
def test_no_one_grants_what_it_does_not_hold(held, wanted, duty, role) -> None:
    grantor = actor(1, "1", held, role=role)
    try:
        given_perms = grantable(grantor, set(wanted), duty)
    except Forbidden:
        assert not wanted <= held or not wanted <= DUTY_LIMITS[duty]
        return
    assert given_perms <= held
    assert given_perms <= DUTY_LIMITS[duty]


@settings(max_examples=100, deadline=None)
@given(st.sets(st.sampled_from(PERMS)), st.sampled_from(sorted(DUTY_LIMITS)))
def test_the_platform_office_grants_within_duty_limits(wanted, duty) -> None:
    office = actor(1, "1", [], role="operator")
    if wanted <= DUTY_LIMITS[duty]:
        assert grantable(office, set(wanted), duty) == wanted
    else:
        with pytest.raises(Forbidden):
            grantable(office, set(wanted), duty)


def test_separation_of_duties() -> None:
    assert DUTY_LIMITS["audit"] == {"audit.read"}
    assert "audit.read" not in DUTY_LIMITS["system"]
    assert "account.manage" not in DUTY_LIMITS["audit"] | DUTY_LIMITS["business"]
    with pytest.raises(Forbidden) as info:
        grantable(actor(1, "1", [], role="operator"), {"audit.read", "account.manage"}, "audit")
    assert info.value.code == "duty_conflict"


def test_unknown_permissions_are_refused() -> None:
    with pytest.raises(Forbidden) as info:
        grantable(actor(1, "1", PERMS, role="operator"), {"root"}, "system")
    assert info.value.code == "permission_unknown"
