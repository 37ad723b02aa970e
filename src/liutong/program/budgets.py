"""Campaign budgets: what a campaign may still give, in all and to one member.

A quote reads the counters; a commit locks them first (one row for the campaign's total, one
per member), prices with what is left, and adds what it gave — so concurrent commits can
never give more than the budget: the last ones get the part that is left, then nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from liutong.db import insert_or_ignore
from liutong.program.models import CampaignBudgetUse
from liutong.program.rules import Campaign

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

_uses = CampaignBudgetUse.__table__
TOTAL = 0  # the member_id of a campaign's total counter


def budgeted(campaigns: Iterable[Campaign]) -> list[Campaign]:
    return [c for c in campaigns if c.budget_total is not None or c.budget_per_member is not None]


def _counters(campaign: Campaign, member_id: int) -> list[tuple[int, int]]:
    """(member_id, budget) of each counter that bounds the campaign for this member."""
    out = []
    if campaign.budget_total is not None:
        out.append((TOTAL, campaign.budget_total))
    if campaign.budget_per_member is not None:
        out.append((member_id, campaign.budget_per_member))
    return out


def left(tx: Tx, *, tenant_id: int, member_id: int, campaigns: Sequence[Campaign], lock: bool) -> dict[str, int]:
    """What each budgeted campaign may still give this member. With ``lock``, the counters are
    created if need be and locked until the transaction ends (in a fixed order: no deadlock)."""
    campaigns = budgeted(campaigns)
    if not campaigns:
        return {}
    wanted = sorted({(c.code, m) for c in campaigns for m, _ in _counters(c, member_id)})
    if lock:
        bind = tx.session.get_bind()
        for code, m in wanted:
            tx.session.execute(insert_or_ignore(bind, _uses).values(
                tenant_id=tenant_id, campaign_code=code, member_id=m, used=0))
    query = select(_uses.c.campaign_code, _uses.c.member_id, _uses.c.used).where(
        _uses.c.tenant_id == tenant_id, _uses.c.campaign_code.in_({code for code, _ in wanted}),
        _uses.c.member_id.in_({m for _, m in wanted}),
    ).order_by(_uses.c.campaign_code, _uses.c.member_id)
    used = {(row.campaign_code, row.member_id): row.used
            for row in tx.session.execute(query.with_for_update() if lock else query)}
    return {c.code: max(0, min(budget - used.get((c.code, m), 0) for m, budget in _counters(c, member_id)))
            for c in campaigns}


def consume(tx: Tx, *, tenant_id: int, member_id: int, campaigns: Sequence[Campaign],
            given: Mapping[str, int]) -> None:
    """Add what the commit gave to the counters it locked with ``left(lock=True)``."""
    for c in budgeted(campaigns):
        points = given.get(c.code, 0)
        if not points:
            continue
        for m, _ in _counters(c, member_id):
            tx.session.execute(update(_uses).where(
                _uses.c.tenant_id == tenant_id, _uses.c.campaign_code == c.code, _uses.c.member_id == m,
            ).values(used=_uses.c.used + points))
