from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from liutong import __version__

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    database: str
    schema_revision: str | None


@router.get("/health", response_model=Health)
def health(request: Request) -> Health:
    runtime = request.app.state.runtime
    with runtime.transaction() as tx:
        revision = tx.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return Health(status="ok", version=__version__, database=runtime.engine.dialect.name, schema_revision=revision)
