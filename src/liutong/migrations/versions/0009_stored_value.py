"""stored value: recharges, lots, payments, refunds, cash-outs; bonus liability accounts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 14:12:45.682591

Every legal entity gets an ``sv_bonus_issued`` account beside its ``sv_issued``, so that the
ledger carries principal and bonus outstanding per issuer apart (new entities get it when
they are created).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sv_cash_outs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('program_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('principal', sa.BigInteger(), nullable=False),
    sa.Column('bonus_forfeited', sa.BigInteger(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=96), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('principal > 0 AND bonus_forfeited >= 0', name=op.f('ck_sv_cash_outs_amounts')),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_sv_cash_outs_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['program_version_id'], ['program_versions.id'], name=op.f('fk_sv_cash_outs_program_version_id_program_versions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sv_cash_outs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sv_cash_outs'))
    )
    with op.batch_alter_table('sv_cash_outs', schema=None) as batch_op:
        batch_op.create_index('ix_sv_cash_outs_member', ['tenant_id', 'member_id', 'occurred_at'], unique=False)

    op.create_table('sv_payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_ref', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('principal', sa.BigInteger(), nullable=False),
    sa.Column('bonus', sa.BigInteger(), nullable=False),
    sa.Column('spending_order', sa.String(length=16), nullable=False),
    sa.Column('third_party', sa.Boolean(), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount > 0 AND principal >= 0 AND bonus >= 0 AND principal + bonus = amount', name=op.f('ck_sv_payments_parts')),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_sv_payments_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_sv_payments_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_version_id'], ['program_versions.id'], name=op.f('fk_sv_payments_program_version_id_program_versions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sv_payments_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sv_payments'))
    )
    with op.batch_alter_table('sv_payments', schema=None) as batch_op:
        batch_op.create_index('ix_sv_payments_member', ['tenant_id', 'member_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_sv_payments_merchant', ['tenant_id', 'merchant_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_sv_payments_order', ['tenant_id', 'order_ref'], unique=False)

    op.create_table('sv_recharges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('issuer_entity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('program_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('bonus', sa.BigInteger(), nullable=False),
    sa.Column('bonus_expires_at', sa.DateTime(), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount > 0 AND bonus >= 0', name=op.f('ck_sv_recharges_amounts')),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_sv_recharges_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['issuer_entity_id'], ['legal_entities.id'], name=op.f('fk_sv_recharges_issuer_entity_id_legal_entities')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_sv_recharges_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_version_id'], ['program_versions.id'], name=op.f('fk_sv_recharges_program_version_id_program_versions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sv_recharges_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sv_recharges')),
    sa.UniqueConstraint('tenant_id', 'channel', 'reference', name=op.f('uq_sv_recharges_tenant_id_channel_reference'))
    )
    with op.batch_alter_table('sv_recharges', schema=None) as batch_op:
        batch_op.create_index('ix_sv_recharges_member', ['tenant_id', 'member_id', 'occurred_at'], unique=False)

    op.create_table('sv_lots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('issuer_entity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recharge_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('principal', sa.BigInteger(), nullable=False),
    sa.Column('principal_remaining', sa.BigInteger(), nullable=False),
    sa.Column('bonus', sa.BigInteger(), nullable=False),
    sa.Column('bonus_remaining', sa.BigInteger(), nullable=False),
    sa.Column('bonus_expires_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('bonus_remaining >= 0 AND bonus_remaining <= bonus', name=op.f('ck_sv_lots_bonus_in_range')),
    sa.CheckConstraint('principal_remaining >= 0 AND principal_remaining <= principal', name=op.f('ck_sv_lots_principal_in_range')),
    sa.ForeignKeyConstraint(['issuer_entity_id'], ['legal_entities.id'], name=op.f('fk_sv_lots_issuer_entity_id_legal_entities')),
    sa.ForeignKeyConstraint(['recharge_id'], ['sv_recharges.id'], name=op.f('fk_sv_lots_recharge_id_sv_recharges')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sv_lots_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sv_lots')),
    sa.UniqueConstraint('recharge_id', name=op.f('uq_sv_lots_recharge_id'))
    )
    with op.batch_alter_table('sv_lots', schema=None) as batch_op:
        batch_op.create_index('ix_sv_lots_bonus_due', ['tenant_id', 'bonus_expires_at'], unique=False)
        batch_op.create_index('ix_sv_lots_member', ['tenant_id', 'member_id', 'id'], unique=False)

    op.create_table('sv_refunds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('refund_ref', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('principal', sa.BigInteger(), nullable=False),
    sa.Column('bonus', sa.BigInteger(), nullable=False),
    sa.Column('bonus_forfeited', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount > 0 AND principal + bonus + bonus_forfeited = amount', name=op.f('ck_sv_refunds_parts')),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_sv_refunds_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['payment_id'], ['sv_payments.id'], name=op.f('fk_sv_refunds_payment_id_sv_payments')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sv_refunds_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sv_refunds'))
    )
    with op.batch_alter_table('sv_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sv_refunds_payment_id'), ['payment_id'], unique=False)

    op.create_table('sv_lot_movements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('payment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('principal', sa.BigInteger(), nullable=False),
    sa.Column('bonus', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('principal <> 0 OR bonus <> 0', name=op.f('ck_sv_lot_movements_nonzero')),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_sv_lot_movements_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['lot_id'], ['sv_lots.id'], name=op.f('fk_sv_lot_movements_lot_id_sv_lots')),
    sa.ForeignKeyConstraint(['payment_id'], ['sv_payments.id'], name=op.f('fk_sv_lot_movements_payment_id_sv_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sv_lot_movements'))
    )
    with op.batch_alter_table('sv_lot_movements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sv_lot_movements_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sv_lot_movements_lot_id'), ['lot_id'], unique=False)
        batch_op.create_index('ix_sv_lot_movements_payment', ['payment_id', 'lot_id'], unique=False)

    _open_bonus_accounts()


def _open_bonus_accounts() -> None:
    bind = op.get_bind()
    entities = sa.table("legal_entities", sa.column("id"), sa.column("tenant_id"))
    accounts = sa.table(
        "ledger_accounts", sa.column("tenant_id"), sa.column("owner_type"), sa.column("owner_id"), sa.column("kind"),
        sa.column("asset"), sa.column("balance"), sa.column("tracks_balance"), sa.column("min_balance"),
        sa.column("created_at"),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {"tenant_id": tenant_id, "owner_type": "entity", "owner_id": entity_id, "kind": "sv_bonus_issued",
         "asset": "CNY", "balance": 0, "tracks_balance": False, "min_balance": None, "created_at": now}
        for entity_id, tenant_id in bind.execute(sa.select(entities.c.id, entities.c.tenant_id)).all()
    ]
    if rows:
        op.bulk_insert(accounts, rows)


def downgrade() -> None:
    op.execute("DELETE FROM ledger_accounts WHERE kind = 'sv_bonus_issued'")
    with op.batch_alter_table('sv_lot_movements', schema=None) as batch_op:
        batch_op.drop_index('ix_sv_lot_movements_payment')
        batch_op.drop_index(batch_op.f('ix_sv_lot_movements_lot_id'))
        batch_op.drop_index(batch_op.f('ix_sv_lot_movements_entry_id'))

    op.drop_table('sv_lot_movements')
    with op.batch_alter_table('sv_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sv_refunds_payment_id'))

    op.drop_table('sv_refunds')
    with op.batch_alter_table('sv_lots', schema=None) as batch_op:
        batch_op.drop_index('ix_sv_lots_member')
        batch_op.drop_index('ix_sv_lots_bonus_due')

    op.drop_table('sv_lots')
    with op.batch_alter_table('sv_recharges', schema=None) as batch_op:
        batch_op.drop_index('ix_sv_recharges_member')

    op.drop_table('sv_recharges')
    with op.batch_alter_table('sv_payments', schema=None) as batch_op:
        batch_op.drop_index('ix_sv_payments_order')
        batch_op.drop_index('ix_sv_payments_merchant')
        batch_op.drop_index('ix_sv_payments_member')

    op.drop_table('sv_payments')
    with op.batch_alter_table('sv_cash_outs', schema=None) as batch_op:
        batch_op.drop_index('ix_sv_cash_outs_member')

    op.drop_table('sv_cash_outs')
