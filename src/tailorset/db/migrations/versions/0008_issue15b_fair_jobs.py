"""Fair job scheduling: when each organization was last served, and a job's report as rows.

A bulk upload's report was one JSON column, parsed and written whole after every batch: a ZIP of
10,000 refused files spent most of its time re-serialising it. Each entry is a row now.

Revision ID: 0008_issue15b
Revises: 0007_issue12
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008_issue15b"
down_revision = "0007_issue12"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jobs_served_at", sa.DateTime(timezone=True), nullable=True))
    entries = op.create_table(
        "job_report_entries",
        sa.Column("id", Id, nullable=False),
        sa.Column("job_id", Id, nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("error", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_report_entries_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_report_entries")),
    )
    op.create_index(op.f("ix_job_report_entries_job_id"), "job_report_entries", ["job_id"], unique=False)
    connection = op.get_bind()
    reports = connection.execute(sa.text("SELECT id, report FROM jobs WHERE report IS NOT NULL AND report != '[]'"))
    for job_id, report in reports.all():
        rows = [{"job_id": job_id, **entry} for entry in json.loads(report)]
        if rows:
            op.bulk_insert(entries, rows)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("report")


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report", sa.Text(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT job_id, filename, error, message FROM job_report_entries ORDER BY id")
    ).all()
    reports: dict[int, list] = {}
    for job_id, filename, error, message in rows:
        reports.setdefault(job_id, []).append({"filename": filename, "error": error, "message": message})
    for job_id, report in reports.items():
        connection.execute(
            sa.text("UPDATE jobs SET report = :report WHERE id = :id"), {"report": json.dumps(report), "id": job_id}
        )
    op.drop_index(op.f("ix_job_report_entries_job_id"), table_name="job_report_entries")
    op.drop_table("job_report_entries")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("jobs_served_at")
