"""tier review: activity rollup, paid upgrades, period reviews

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 09:00:00

The activity rollup is filled from the orders and refunds already recorded, so members keep
their progress towards a tier: each order counts on its local day (the tenant's time zone),
net of what was refunded of it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('member_activity_days',
    sa.Column('tenant_id', sa.BigInteger(), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('spend_fen', sa.BigInteger(), nullable=False),
    sa.Column('points_earned', sa.BigInteger(), nullable=False),
    sa.Column('purchases', sa.Integer(), nullable=False),
    sa.Column('visited', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'member_id', 'day', name=op.f('pk_member_activity_days'),
                            postgresql_include=['spend_fen', 'points_earned', 'visited'])
    )
    op.create_table('tier_reviews',
    sa.Column('id', BigId, nullable=False),
    sa.Column('tenant_id', BigId, nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('as_of', sa.DateTime(), nullable=False),
    sa.Column('program_version_id', BigId, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('cursor', sa.BigInteger(), nullable=False),
    sa.Column('reviewed', sa.BigInteger(), nullable=False),
    sa.Column('demoted', sa.BigInteger(), nullable=False),
    sa.Column('overrides_cleared', sa.BigInteger(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['program_version_id'], ['program_versions.id'], name=op.f('fk_tier_reviews_program_version_id_program_versions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tier_reviews_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tier_reviews')),
    sa.UniqueConstraint('tenant_id', 'period', name=op.f('uq_tier_reviews_tenant_id_period'))
    )
    op.create_table('member_tier_purchases',
    sa.Column('id', BigId, nullable=False),
    sa.Column('tenant_id', BigId, nullable=False),
    sa.Column('member_id', BigId, nullable=False),
    sa.Column('tier_code', sa.String(length=32), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('price_fen', sa.BigInteger(), nullable=False),
    sa.Column('payment_channel', sa.String(length=32), nullable=False),
    sa.Column('payment_ref', sa.String(length=64), nullable=False),
    sa.Column('program_version_id', BigId, nullable=False),
    sa.Column('created_by', sa.String(length=96), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_tier_purchases_member_id_members')),
    sa.ForeignKeyConstraint(['program_version_id'], ['program_versions.id'], name=op.f('fk_member_tier_purchases_program_version_id_program_versions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_member_tier_purchases_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_tier_purchases')),
    sa.UniqueConstraint('tenant_id', 'payment_channel', 'payment_ref', name=op.f('uq_member_tier_purchases_tenant_id_payment_channel_payment_ref'))
    )
    with op.batch_alter_table('member_tier_purchases', schema=None) as batch_op:
        batch_op.create_index('ix_member_tier_purchases_member', ['tenant_id', 'member_id', 'ends_at'], unique=False)

    with op.batch_alter_table('member_tier_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cause', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('review_id', BigId, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_member_tier_history_review_id_tier_reviews'), 'tier_reviews', ['review_id'], ['id'])
        batch_op.create_unique_constraint(batch_op.f('uq_member_tier_history_review_id_member_id'), ['review_id', 'member_id'])
        batch_op.create_index('ix_member_tier_history_tenant_at', ['tenant_id', 'at'], unique=False)

    op.execute("UPDATE member_tier_history SET cause = 'promotion'")
    _backfill_activity(op.get_bind())


def _backfill_activity(bind) -> None:
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("""
            INSERT INTO member_activity_days (tenant_id, member_id, day, spend_fen, points_earned, purchases, visited)
            SELECT o.tenant_id, o.member_id,
                   (o.occurred_at AT TIME ZONE 'UTC' AT TIME ZONE t.timezone)::date,
                   SUM(o.paid - COALESCE(r.paid_back, 0)), SUM(o.points_earned - COALESCE(r.points_clawed, 0)),
                   COUNT(*), 1
            FROM orders o
            JOIN tenants t ON t.id = o.tenant_id
            LEFT JOIN (SELECT order_id, SUM(paid_back + stored_value_back) AS paid_back, SUM(points_clawed) AS points_clawed
                       FROM refunds GROUP BY order_id) r ON r.order_id = o.id
            WHERE o.member_id IS NOT NULL
            GROUP BY 1, 2, 3
        """))
        return
    # SQLite has no time zones: the few orders of an embedded installation are read here.
    zones = {tid: ZoneInfo(tz or "Asia/Shanghai") for tid, tz in bind.execute(sa.text("SELECT id, timezone FROM tenants"))}
    days: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    rows = bind.execute(sa.text("""
        SELECT o.tenant_id, o.member_id, o.occurred_at, o.paid - COALESCE(r.paid_back, 0),
               o.points_earned - COALESCE(r.points_clawed, 0)
        FROM orders o
        LEFT JOIN (SELECT order_id, SUM(paid_back + stored_value_back) AS paid_back, SUM(points_clawed) AS points_clawed
                   FROM refunds GROUP BY order_id) r ON r.order_id = o.id
        WHERE o.member_id IS NOT NULL
    """))
    for tenant_id, member_id, occurred_at, spend, points in rows:
        if isinstance(occurred_at, str):
            occurred_at = sa.DateTime().result_processor(bind.dialect, None)(occurred_at)
        day = occurred_at.replace(tzinfo=UTC).astimezone(zones[tenant_id]).date()
        total = days[(tenant_id, member_id, day)]
        total[0] += spend
        total[1] += points
        total[2] += 1
    if days:
        table = sa.table('member_activity_days', *(sa.column(c) for c in (
            'tenant_id', 'member_id', 'day', 'spend_fen', 'points_earned', 'purchases', 'visited')))
        op.bulk_insert(table, [
            {"tenant_id": t, "member_id": m, "day": d, "spend_fen": s, "points_earned": p, "purchases": n, "visited": 1}
            for (t, m, d), (s, p, n) in days.items()
        ])


def downgrade() -> None:
    with op.batch_alter_table('member_tier_history', schema=None) as batch_op:
        batch_op.drop_index('ix_member_tier_history_tenant_at')
        batch_op.drop_constraint(batch_op.f('uq_member_tier_history_review_id_member_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_member_tier_history_review_id_tier_reviews'), type_='foreignkey')
        batch_op.drop_column('review_id')
        batch_op.drop_column('cause')

    with op.batch_alter_table('member_tier_purchases', schema=None) as batch_op:
        batch_op.drop_index('ix_member_tier_purchases_member')

    op.drop_table('member_tier_purchases')
    op.drop_table('tier_reviews')
    op.drop_table('member_activity_days')
