"""The captioner's confidence in each automatic caption, and each image's review state.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caption_confidence", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("caption_signals", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("review_state", sa.String(length=20), server_default="unreviewed", nullable=False)
        )
        batch_op.add_column(sa.Column("review_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("caption_revisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caption_confidence", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("caption_signals", sa.Text(), nullable=True))
    # A caption a person wrote counts as reviewed (domain/review.py).
    op.execute("UPDATE images SET review_state = 'approved', reviewed_at = updated_at WHERE caption_source = 'manual'")


def downgrade() -> None:
    with op.batch_alter_table("caption_revisions", schema=None) as batch_op:
        batch_op.drop_column("caption_signals")
        batch_op.drop_column("caption_confidence")
    with op.batch_alter_table("images", schema=None) as batch_op:
        for column in ("reviewed_at", "review_note", "review_state", "caption_signals", "caption_confidence"):
            batch_op.drop_column(column)
