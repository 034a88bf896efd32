"""audit retention: chain anchors (pruned prefixes), deletes allowed only up to an anchor,
indexes for investigations by actor and for the alert queries

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 02:40:16.570502

"""
from alembic import op
import sqlalchemy as sa
import common.db

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_PG_APPEND_ONLY = """
    CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {allow}
        RAISE EXCEPTION 'audit_events is append-only';
    END $$"""
# Retention (issue 6): only a prefix of a chain already covered by its anchor (a signed
# checkpoint, see common.audit.prune_trail) may go; every other delete is still refused.
_PG_ALLOW_ANCHORED = """IF TG_OP = 'DELETE' AND EXISTS (
            SELECT 1 FROM audit_chain_anchors a WHERE a.chain = OLD.chain AND OLD.seq <= a.seq) THEN
            RETURN OLD;
        END IF;"""
_SQLITE_NO_DELETE = """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events{when}
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"""
_SQLITE_WHEN_NOT_ANCHORED = """
    WHEN NOT EXISTS (SELECT 1 FROM audit_chain_anchors a WHERE a.chain = OLD.chain AND OLD.seq <= a.seq)"""


def upgrade():
    op.create_table('audit_chain_anchors',
    sa.Column('chain', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('checkpoint_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('jws', sa.Text(), nullable=False),
    sa.Column('pruned_at', common.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['audit_checkpoints.id'], name=op.f('fk_audit_chain_anchors_checkpoint_id_audit_checkpoints')),
    sa.PrimaryKeyConstraint('chain', name=op.f('pk_audit_chain_anchors'))
    )
    # Plain (not batch) index creation: a SQLite table copy would drop the triggers.
    op.create_index('ix_audit_events_action_at', 'audit_events', ['action', 'at'], unique=False)
    op.create_index('ix_audit_events_actor', 'audit_events', ['actor'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY.format(allow=_PG_ALLOW_ANCHORED))
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
        op.execute(_SQLITE_NO_DELETE.format(when=_SQLITE_WHEN_NOT_ANCHORED))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY.format(allow=""))
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
        op.execute(_SQLITE_NO_DELETE.format(when=""))
    op.drop_index('ix_audit_events_actor', table_name='audit_events')
    op.drop_index('ix_audit_events_action_at', table_name='audit_events')
    op.drop_table('audit_chain_anchors')
