"""A partial index on live images, for keyset pages and counts that stay fast as datasets grow.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index("ix_images_dataset_id_id")
        batch_op.create_index(
            "ix_images_live_dataset_id_id", ["dataset_id", "id"], sqlite_where=LIVE, postgresql_where=LIVE
        )


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index("ix_images_live_dataset_id_id")
        batch_op.create_index("ix_images_dataset_id_id", ["dataset_id", "id"], unique=False)
