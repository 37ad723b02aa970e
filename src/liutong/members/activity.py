"""A member's activity per local day: what tier promotion and the period review measure.

Checkout writes a purchase here when it commits and nets a refund out of the day of the order
it refunds; venue events that are not purchases (a gate entry, a hotel check-in) call
``record`` with ``visit=True``. Every write is one upsert that adds to the day's row, so
concurrent purchases of one member all land (no read-then-write, no lost update).

Days are local to the tenant's time zone (``Tx.tz``): a purchase at 23:30 in Sanya counts on
that day, not on the UTC one. A day with a purchase or a venue entry is one visit, however
many purchases and entries it had.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from liutong.members.models import ActivityDay
from liutong.program.tiers import Activity

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

_ADD = """
    ON CONFLICT (tenant_id, member_id, day) DO UPDATE SET
        spend_fen = member_activity_days.spend_fen + excluded.spend_fen,
        points_earned = member_activity_days.points_earned + excluded.points_earned,
        purchases = member_activity_days.purchases + excluded.purchases,
        visited = CASE WHEN excluded.visited = 1 THEN 1 ELSE member_activity_days.visited END
"""

_RECORD = (
    "INSERT INTO member_activity_days (tenant_id, member_id, day, spend_fen, points_earned, purchases, visited) "
    "VALUES (:t, :m, :d, :s, :p, :n, :v)" + _ADD
)


def local_day(tx: Tx, at: datetime) -> date:
    return at.astimezone(tx.tz).date()


def record(tx: Tx, *, tenant_id: int, member_id: int, at: datetime, spend_fen: int = 0, points_earned: int = 0,
           purchases: int = 0, visit: bool = False) -> None:
    """Add to the member's activity on the local day of ``at``.

    Amounts are signed: a refund passes negative ``spend_fen`` and ``points_earned`` with the
    time of the order it refunds. ``visit`` marks the day as visited (it cannot be unmarked:
    a refunded purchase was still a visit).
    """
    sql = tx.sql()
    day = local_day(tx, at)
    sql.run(_RECORD, {"t": tenant_id, "m": member_id, "d": day if sql.postgres else day.isoformat(),
                      "s": spend_fen, "p": points_earned, "n": purchases, "v": 1 if visit else 0})


def over_windows(tx: Tx, *, tenant_id: int, member_id: int, until: date, windows: Iterable[int],
                 growth: int) -> dict[int, Activity]:
    """The member's activity over each window of N local days ending before ``until``.

    ``growth`` is the member's growth balance (a ledger account, not windowed).
    """
    windows = set(windows)
    since = until - timedelta(days=max(windows))
    c = ActivityDay.__table__.c
    rows = tx.session.execute(
        select(c.day, c.spend_fen, c.points_earned, c.visited)
        .where(c.tenant_id == tenant_id, c.member_id == member_id, c.day >= since, c.day < until)
    ).all()
    out = {}
    for days in windows:
        start = until - timedelta(days=days)
        inside = [r for r in rows if r.day >= start]
        out[days] = Activity(spend_fen=sum(r.spend_fen for r in inside), visits=sum(r.visited for r in inside),
                             growth=growth, points_earned=sum(r.points_earned for r in inside))
    return out


def move(tx: Tx, *, tenant_id: int, source_id: int, target_id: int) -> None:
    """Fold one member's activity into another's (a merge): the target's days add up both."""
    sql = tx.sql()
    sql.run(
        "INSERT INTO member_activity_days (tenant_id, member_id, day, spend_fen, points_earned, purchases, visited) "
        "SELECT tenant_id, :target, day, spend_fen, points_earned, purchases, visited FROM member_activity_days "
        "WHERE tenant_id = :t AND member_id = :source" + _ADD,
        {"t": tenant_id, "source": source_id, "target": target_id},
    )
    sql.run("DELETE FROM member_activity_days WHERE tenant_id = :t AND member_id = :source",
            {"t": tenant_id, "source": source_id})
