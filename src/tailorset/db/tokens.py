"""The queries behind `tailorset token create/list/revoke`: synchronous, run by the CLI on its own engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from tailorset.db.engine import migrate, sync_url
from tailorset.db.models import ApiToken, Organization, utcnow
from tailorset.db.repository import hash_token


@contextmanager
def session(database_url: str) -> Iterator[Session]:
    """A session on the migrated database, for one command."""
    migrate(database_url)
    engine = create_engine(sync_url(database_url))
    try:
        with Session(engine) as opened:
            yield opened
    finally:
        engine.dispose()


@dataclass(frozen=True)
class TokenRow:
    prefix: str
    organization: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


def add_token(session: Session, org_name: str, token: str, name: str | None, rate_limit: str | None) -> bool:
    """Store a new token's hash for `org_name`, creating the organization if missing (True then); with
    `rate_limit`, the organization's limit is set to it."""
    with session.begin():
        org = session.execute(select(Organization).where(Organization.name == org_name)).scalar_one_or_none()
        created = org is None
        if created:
            org = Organization(name=org_name)
            session.add(org)
            session.flush()
        if rate_limit:
            org.rate_limit = rate_limit
        session.add(ApiToken(organization_id=org.id, token_hash=hash_token(token), token_prefix=token[:10], name=name))
    return created


def list_tokens(session: Session, org_name: str | None = None) -> list[TokenRow]:
    query = select(ApiToken, Organization.name).join(Organization).order_by(ApiToken.id)
    if org_name:
        query = query.where(Organization.name == org_name)
    return [
        TokenRow(token.token_prefix, org, token.name, token.created_at, token.revoked_at)
        for token, org in session.execute(query).all()
    ]


def revoke_token(session: Session, token_or_prefix: str) -> int:
    """Revoke the live token given whole or by its prefix; how many live tokens matched (revoked only when 1)."""
    live = ApiToken.revoked_at.is_(None)
    with session.begin():
        matching = (ApiToken.token_hash == hash_token(token_or_prefix)) | (ApiToken.token_prefix == token_or_prefix)
        matches = session.execute(select(ApiToken.id).where(live, matching)).scalars().all()
        if len(matches) == 1:
            session.execute(update(ApiToken).where(ApiToken.id == matches[0]).values(revoked_at=utcnow()))
    return len(matches)
