"""client first_party flag; the admin scope only for first-party clients (issue 17)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:30:00

"""
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import common.db

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('idp_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_party', sa.Boolean(), server_default=sa.text('false'), nullable=False))

    # Security (issue 17): before this revision any client could be registered with the
    # ``admin`` scope. No existing client is first-party, so the scope is taken from every
    # one of them (a superadmin re-registers real administration tools with the flag), and
    # refresh tokens carrying it are revoked: the admin API gets no refresh tokens.
    conn = op.get_bind()
    clients = sa.table('idp_clients', sa.column('id', sa.BigInteger), sa.column('scopes', sa.JSON))
    for row in conn.execute(sa.select(clients.c.id, clients.c.scopes)):
        scopes = row.scopes if isinstance(row.scopes, list) else json.loads(row.scopes or '[]')
        if 'admin' in scopes:
            conn.execute(clients.update().where(clients.c.id == row.id)
                         .values(scopes=[s for s in scopes if s != 'admin']))
    refresh = sa.table('idp_refresh_tokens', sa.column('scope', sa.Text),
                       sa.column('revoked_at', common.db.UTCDateTime()))
    padded = sa.literal(' ', sa.Text) + refresh.c.scope + sa.literal(' ', sa.Text)
    conn.execute(refresh.update()
                 .where(refresh.c.revoked_at.is_(None), padded.like('% admin %'))
                 .values(revoked_at=datetime.now(UTC)))


def downgrade():
    with op.batch_alter_table('idp_clients', schema=None) as batch_op:
        batch_op.drop_column('first_party')
