"""Migration 9: the tables of curation (see `papersift.store.curation`), kept apart so migrations can import it."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Connection, DateTime, Float, ForeignKey, Integer, MetaData, String, Table


def m009_curation(conn: Connection) -> None:
    """Admin picks (a training signal and shown first) and the model's per-paper score, pick flag and reason."""
    md = MetaData()
    md.reflect(conn, only=["papers", "users"])  # the tables the foreign keys point at
    Table(
        "curation_picks",
        md,
        Column("paper_id", String(128), ForeignKey("papers.id"), primary_key=True),
        Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
        Column("picked_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "curation_scores",
        md,
        Column("paper_id", String(128), ForeignKey("papers.id"), primary_key=True),
        Column("score", Float, nullable=False),
        Column("day_pct", Float, nullable=False),  # rank within its listing day, 0 (last) .. 1 (first)
        Column("pick", Boolean, nullable=False),
        Column("reason", String(200), nullable=False),
        Column("model", String(40), nullable=False),
    )
    md.create_all(conn, tables=[md.tables["curation_picks"], md.tables["curation_scores"]])
