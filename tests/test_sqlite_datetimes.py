"""db/models.UTCDateTime on SQLite, which stores datetimes as naive text: every one comes back aware and in UTC, by the
shortcut that reads the text (models._sqlite_utc) as by SQLAlchemy's own reading then process_result_value."""

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text

from tailorset.db.models import UTCDateTime

EXAMPLES = [
    datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds: stored as .000000
    datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),  # stored as UTC
]


def test_stored_datetimes_come_back_aware_and_utc():
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": n, "at": when} for n, when in enumerate(EXAMPLES)])
        connection.execute(insert(table), [{"id": 10, "at": None}])
        # Text written by hand: without microseconds, with a T, with an offset of its own (kept, as SQLAlchemy does).
        connection.execute(text("INSERT INTO t VALUES (11, '2026-01-02 03:04:05'), (12, '2026-01-02T03:04:05')"))
        connection.execute(text("INSERT INTO t VALUES (13, '2026-01-02 05:04:05+02:00')"))
        read = dict(connection.execute(select(table.c.id, table.c.at)).all())
    assert [read[n] for n in range(len(EXAMPLES))] == EXAMPLES
    assert all(read[n].tzinfo is UTC for n in range(len(EXAMPLES)))
    assert read[10] is None
    assert read[11] == read[12] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC) and read[11].tzinfo is UTC
    assert read[13] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC) and read[13].utcoffset() == timedelta(hours=2)
