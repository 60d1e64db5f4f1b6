"""Every query the service runs, and the schema. Nothing outside this package imports SQLAlchemy
(tests/test_layout.py): services hold a `Session` only to pass it back to these functions."""

from sqlalchemy.ext.asyncio import AsyncSession as Session

__all__ = ["Session"]
