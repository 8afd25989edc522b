"""Collections and "not interested" marks in the store: the same contract on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papersift.errors import PaperNotFound, QueryError
from papersift.models import Paper
from papersift.store import Store
from papersift.store.accounts import Accounts
from papersift.store.library import CollectionNameTaken, CollectionNotFound, Library, clean_name


def _papers(store: Store, *ids: str) -> None:
    with store.write() as w:
        w.insert(Paper(id=pid, title=f"Paper {pid}", source="jsonl", announced=date(2026, 1, 5)) for pid in ids)


@pytest.fixture
def lib(store: Store) -> Library:
    _papers(store, "2601.00001", "2601.00002", "2601.00003")
    return Library(store)


def _users(store: Store) -> tuple[int, int]:
    accounts = Accounts(store)
    return accounts.create_user("ada", "x").id, accounts.create_user("bob", "x").id


def test_collections_crud_and_revision(store: Store, lib: Library) -> None:
    ada, _ = _users(store)
    assert lib.revision(ada) == 0
    c = lib.create(ada, "  Diffusion   models ", public=False)
    assert (c.name, c.public, c.papers, c.owner) == ("Diffusion models", False, 0, "ada")
    assert lib.save(ada, c.id, "2601.00002") is True
    assert lib.save(ada, c.id, "2601.00002") is False  # idempotent
    assert lib.save(ada, c.id, "2601.00001") is True
    assert lib.paper_ids(c.id) == ["2601.00001", "2601.00002"]  # newest saved first
    rev = lib.revision(ada)
    assert rev == 3  # create + two saves; the repeated save changed nothing
    renamed = lib.update(ada, c.id, "Diffusion", public=True)
    assert (renamed.name, renamed.public, renamed.papers) == ("Diffusion", True, 2)
    assert lib.save(ada, c.id, "2601.00002", saved=False) is True
    assert lib.saved_ids(ada) == ["2601.00001"]
    assert lib.revision(ada) == rev + 2
    lib.delete(ada, c.id)
    assert lib.collections_of(ada, ada) == []
    assert store.get("2601.00001").id == "2601.00001"  # deleting a collection keeps its papers


def test_private_collections_exist_only_for_their_owner(store: Store, lib: Library) -> None:
    ada, bob = _users(store)
    private = lib.create(ada, "Reading")
    public = lib.create(ada, "Shared", public=True)
    assert [c.name for c in lib.collections_of(ada, ada)] == ["Reading", "Shared"]
    assert [c.name for c in lib.collections_of(ada, bob)] == ["Shared"]
    assert [c.name for c in lib.collections_of(ada, None)] == ["Shared"]
    assert lib.get(public.id, None).name == "Shared"
    for viewer in (bob, None):
        with pytest.raises(CollectionNotFound):
            lib.get(private.id, viewer)
    # nobody else may change or fill it, and the refusal is the same "no such collection"
    with pytest.raises(CollectionNotFound):
        lib.save(bob, private.id, "2601.00001")
    with pytest.raises(CollectionNotFound):
        lib.update(bob, public.id, "Mine now", None)
    with pytest.raises(CollectionNotFound):
        lib.delete(bob, public.id)
    assert lib.revision(bob) == 0 and lib.paper_ids(private.id) == []


def test_names_unique_per_user_and_unknown_papers_refused(store: Store, lib: Library) -> None:
    ada, bob = _users(store)
    mine = lib.create(ada, "Agents")
    with pytest.raises(CollectionNameTaken):
        lib.create(ada, "AGENTS")
    assert lib.create(bob, "agents").name == "agents"  # another reader may use the same name
    with pytest.raises(PaperNotFound):
        lib.save(ada, mine.id, "2601.99999")
    with pytest.raises(PaperNotFound):
        lib.dismiss(ada, "no such paper")
    assert lib.paper_ids(mine.id) == [] and lib.dismissed_ids(ada) == []


def test_not_interested_marks_and_saving_clears_them(store: Store, lib: Library) -> None:
    ada, _ = _users(store)
    assert lib.dismiss(ada, "2601.00003") is True
    assert lib.dismiss(ada, "2601.00003") is False
    assert lib.dismissed_ids(ada) == ["2601.00003"]
    c = lib.create(ada, "Later")
    lib.save(ada, c.id, "2601.00003")
    assert lib.dismissed_ids(ada) == []  # saving it means the reader is interested after all


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=130))
def test_any_name_is_stored_cleaned_or_refused_clearly(name: str) -> None:
    try:
        cleaned = clean_name(name)
    except QueryError as exc:
        assert "collection name" in str(exc)
        return
    assert 1 <= len(cleaned) <= 100 and cleaned == cleaned.strip() and "  " not in cleaned
