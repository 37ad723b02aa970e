from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from liutong.organisation.models import VenueFormat
from liutong.program.rules import Code, ProgramDocument


class ProgramVersionOut(BaseModel):
    id: int
    version: int
    note: str
    created_by: str
    created_at: datetime
    document: ProgramDocument


class ProgramVersionSummary(BaseModel):
    id: int
    version: int
    note: str
    created_by: str
    created_at: datetime


class ProgramPublish(BaseModel):
    document: ProgramDocument
    note: str = Field(min_length=1, max_length=200)


class PreviewLine(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    category: Code
    amount: int = Field(ge=0, le=10**10, description="实付金额（分） / amount paid, fen")
    merchant: Code
    venue: Code
    format: VenueFormat


class EarnPreviewRequest(BaseModel):
    """A sample purchase to price under the current program, or under a draft."""

    lines: list[PreviewLine] = Field(min_length=1, max_length=200)
    tier_code: Code | None = None
    at: datetime = Field(description="购买时间（含时区）/ purchase time, with its offset")
    draft: ProgramDocument | None = None


class EarnPartOut(BaseModel):
    rule: str
    label: str
    points: int


class EarnPreview(BaseModel):
    program_version: int | None
    points: int
    growth: int
    explanation: str
    parts: list[EarnPartOut]
    excluded_lines: list[int]
