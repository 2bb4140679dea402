"""Every module whose items the engine runs or whose decisions count in the completion rates.
A new module is one entry here (and its desk)."""

from __future__ import annotations

from wxbackend.services.casework.appeals import APPEAL
from wxbackend.services.casework.modules import MEMBERSHIP_REVIEWS, Module
from wxbackend.services.casework.proposals import PROPOSAL

MODULES: tuple[Module, ...] = (APPEAL, PROPOSAL, MEMBERSHIP_REVIEWS)
