"""Failures of what the site depends on answer with a status that says whose fault it is, never 500."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from papersift.settings import Settings
from papersift.web import create_app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket closes


def test_subscribing_while_the_smtp_server_is_down_is_502_and_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERSIFT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PAPERSIFT_SMTP_PORT", str(_closed_port()))
    monkeypatch.setenv("PAPERSIFT_SMTP_SECURITY", "none")
    monkeypatch.setenv("PAPERSIFT_SMTP_FROM", "papersift <papers@example.org>")
    settings = Settings(home=tmp_path / "home")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        csrf = client.get("/api/me").json()["csrf_token"]
        body = {"email": "reader@example.org", "kind": "trending"}
        r = client.post("/api/subscriptions", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 502, r.text
        assert r.json()["error"]["code"] == "mail_unavailable"
        site = client.app.state.site  # type: ignore[attr-defined]
        from sqlalchemy import text

        with site.store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM subscriptions")).scalar_one() == 0
