"""credentials record the key and signature algorithm of their certificate (issue 10)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 20:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: the certificates of existing credentials are not stored, so their
    # algorithm is filled in at their next login (certificates.legal).
    with op.batch_alter_table('certificates_credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('algorithm', sa.String(length=96), nullable=True))


def downgrade():
    with op.batch_alter_table('certificates_credentials', schema=None) as batch_op:
        batch_op.drop_column('algorithm')
