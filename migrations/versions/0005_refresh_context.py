"""refresh tokens carry their session context (certificate issuer, acting agent)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 01:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('idp_refresh_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('context', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('idp_refresh_tokens', schema=None) as batch_op:
        batch_op.drop_column('context')
