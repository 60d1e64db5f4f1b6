"""Batch ids on caption revisions (undo a bulk edit as one) and job reports (bulk upload failures).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("caption_revisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_caption_revisions_batch_id"), ["batch_id"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("report")
    with op.batch_alter_table("caption_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caption_revisions_batch_id"))
        batch_op.drop_column("batch_id")
