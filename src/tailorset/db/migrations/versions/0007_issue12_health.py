"""Each image's measurements for the dataset health report, and its caption's lint.

Revision ID: 0007_issue12
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_issue12"
down_revision = "0006"
branch_labels = None
depends_on = None

MEASUREMENTS = (
    ("phash", sa.BigInteger()),
    ("sharpness", sa.Float()),
    ("brightness", sa.Float()),
    ("dark_fraction", sa.Float()),
    ("bright_fraction", sa.Float()),
    ("transparent", sa.Boolean()),
    ("turned", sa.Boolean()),
    ("measured_at", sa.DateTime(timezone=True)),
    ("lint_tokens", sa.Integer()),
    ("lint_issues", sa.Integer()),
    ("lint_terms", sa.Text()),
)


def upgrade() -> None:
    # Images already stored are measured, and their captions linted, by a background job (services/health.py).
    with op.batch_alter_table("images", schema=None) as batch_op:
        for name, kind in MEASUREMENTS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        for name, _ in reversed(MEASUREMENTS):
            batch_op.drop_column(name)
