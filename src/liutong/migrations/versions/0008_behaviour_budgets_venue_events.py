"""behaviour awards, campaign budgets, venue events, refund policy amounts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 14:05:53.730447
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_budget_uses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_code', sa.String(length=32), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('used', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_campaign_budget_uses_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_budget_uses')),
    sa.UniqueConstraint('tenant_id', 'campaign_code', 'member_id', name=op.f('uq_campaign_budget_uses_tenant_id_campaign_code_member_id'))
    )
    op.create_table('behaviour_awards',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('rule_code', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('period_key', sa.String(length=16), nullable=False),
    sa.Column('local_day', sa.Date(), nullable=False),
    sa.Column('streak', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('growth', sa.BigInteger(), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=True),
    sa.Column('earn_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('growth_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('program_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('awarded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['program_version_id'], ['program_versions.id'], name=op.f('fk_behaviour_awards_program_version_id_program_versions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_behaviour_awards_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_behaviour_awards'))
    )
    with op.batch_alter_table('behaviour_awards', schema=None) as batch_op:
        batch_op.create_index('ix_behaviour_awards_member_rule', ['tenant_id', 'member_id', 'rule_code', 'period_key'], unique=False)

    op.create_table('hotel_stays',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stay_no', sa.String(length=64), nullable=False),
    sa.Column('venue_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('room', sa.String(length=16), nullable=True),
    sa.Column('checked_in_at', sa.DateTime(), nullable=False),
    sa.Column('checked_out_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_hotel_stays_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['venue_id'], ['venues.id'], name=op.f('fk_hotel_stays_venue_id_venues')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hotel_stays')),
    sa.UniqueConstraint('tenant_id', 'stay_no', name=op.f('uq_hotel_stays_tenant_id_stay_no'))
    )
    with op.batch_alter_table('hotel_stays', schema=None) as batch_op:
        batch_op.create_index('ix_hotel_stays_member_open', ['tenant_id', 'member_id', 'venue_id', 'checked_out_at'], unique=False)

    op.create_table('venue_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_no', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('terminal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('venue_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_venue_events_order_id_orders')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_venue_events_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['terminal_id'], ['terminals.id'], name=op.f('fk_venue_events_terminal_id_terminals')),
    sa.ForeignKeyConstraint(['venue_id'], ['venues.id'], name=op.f('fk_venue_events_venue_id_venues')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_venue_events')),
    sa.UniqueConstraint('tenant_id', 'event_no', name=op.f('uq_venue_events_tenant_id_event_no'))
    )
    with op.batch_alter_table('venue_events', schema=None) as batch_op:
        batch_op.create_index('ix_venue_events_member', ['tenant_id', 'member_id', 'occurred_at'], unique=False)


    op.create_table('member_lists',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_member_lists_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_lists')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_member_lists_tenant_id_code'))
    )
    op.create_table('member_list_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('list_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('added_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['member_lists.id'], name=op.f('fk_member_list_entries_list_id_member_lists')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_list_entries_member_id_members')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_member_list_entries_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_list_entries')),
    sa.UniqueConstraint('tenant_id', 'member_id', 'list_id', name=op.f('uq_member_list_entries_tenant_id_member_id_list_id'))
    )
    with op.batch_alter_table('member_list_entries', schema=None) as batch_op:
        batch_op.create_index('ix_member_list_entries_list', ['list_id', 'member_id'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stored_value', sa.BigInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stored_value', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('refunded_stored_value', sa.BigInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stored_value_back', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('points_unrecovered', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('deducted', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('member_list_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_member_list_entries_list')
    op.drop_table('member_list_entries')
    op.drop_table('member_lists')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('deducted')
        batch_op.drop_column('points_unrecovered')
        batch_op.drop_column('stored_value_back')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_column('refunded_stored_value')
        batch_op.drop_column('stored_value')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('stored_value')

    with op.batch_alter_table('venue_events', schema=None) as batch_op:
        batch_op.drop_index('ix_venue_events_member')

    op.drop_table('venue_events')
    with op.batch_alter_table('hotel_stays', schema=None) as batch_op:
        batch_op.drop_index('ix_hotel_stays_member_open')

    op.drop_table('hotel_stays')
    with op.batch_alter_table('behaviour_awards', schema=None) as batch_op:
        batch_op.drop_index('ix_behaviour_awards_member_rule')

    op.drop_table('behaviour_awards')
    op.drop_table('campaign_budget_uses')
