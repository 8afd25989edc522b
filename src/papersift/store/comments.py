"""Discussion on papers: comments, one level of replies, edits, deletions and an admin's hide flag.

The store keeps the Markdown a reader wrote, never HTML: rendering and sanitising happen when a comment
is shown (`papersift.web.markdown`), so a tightened sanitiser applies to every stored comment at once.

A reply to a reply attaches to the top-level comment, so `parent_id` is always NULL or a top-level id.
Deleting a comment that has replies keeps it as a "[deleted]" placeholder (its text is erased) so the
thread still reads; deleting one without replies removes the row, and the last reply of a deleted
comment takes the placeholder with it. Counts are computed from the rows (like votes), never kept in a
column, and include only comments a reader can see: not deleted, not hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, MetaData, Table, delete, func, insert, select, update

from papersift.errors import PaperNotFound, PapersiftError, QueryError
from papersift.store.engine import as_utc, storable
from papersift.store.papers import Store

MAX_CHARS = 5000  # about a page of text: a discussion comment, not a review
_CHUNK = 900


class CommentNotFound(PapersiftError):
    """No such comment (or it was deleted, or it is hidden from this reader)."""

    def __init__(self, comment_id: int) -> None:
        super().__init__(f"there is no comment {comment_id}; it may have been deleted")
        self.comment_id = comment_id


class NotYourComment(PapersiftError):
    """Only a comment's author may edit or delete it."""


@dataclass(slots=True, frozen=True)
class Comment:
    id: int
    paper_id: str
    user_id: int | None
    username: str | None  # None when the author's account is gone
    parent_id: int | None
    body: str  # Markdown; '' for a deleted comment, or a hidden one shown to a reader as a placeholder
    created_at: datetime
    edited_at: datetime | None = None
    deleted: bool = False
    hidden: bool = False


@dataclass(slots=True)
class Thread:
    """A top-level comment and its replies, oldest first."""

    comment: Comment
    replies: list[Comment] = field(default_factory=list)


def check_body(text: str) -> str:
    """The comment as stored: newlines unified, trailing blanks cut; QueryError with a reader's message when
    it is empty, too long or holds characters no store can keep."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    if not body.strip():
        raise QueryError("the comment is empty: write something first")
    if len(body) > MAX_CHARS:
        raise QueryError(f"a comment can be at most {MAX_CHARS:,} characters long; this one has {len(body):,}")
    if not storable(body):
        raise QueryError("the comment holds a NUL character or a broken Unicode surrogate; remove it")
    return body


class Comments:
    """Comments over an open Store; construct once per process."""

    def __init__(self, store: Store) -> None:
        self.store = store
        md = MetaData()
        md.reflect(store.engine, only=["comments", "users"])
        self.comments: Table = md.tables["comments"]
        self.users: Table = md.tables["users"]

    # -- reads ---------------------------------------------------------------------------------------

    def _select(self) -> Any:
        c, u = self.comments, self.users
        return select(c, u.c.username).select_from(c.outerjoin(u, u.c.id == c.c.user_id))

    @staticmethod
    def _row(row: Any) -> Comment:
        return Comment(
            id=int(row.id),
            paper_id=row.paper_id,
            user_id=row.user_id,
            username=row.username,
            parent_id=row.parent_id,
            body=row.body,
            created_at=as_utc(row.created_at) or datetime.now(UTC),
            edited_at=as_utc(row.edited_at),
            deleted=row.deleted_at is not None,
            hidden=bool(row.hidden),
        )

    def get(self, comment_id: int, conn: Connection | None = None) -> Comment:
        if conn is None:
            with self.store.engine.connect() as own:
                return self.get(comment_id, own)
        row = conn.execute(self._select().where(self.comments.c.id == comment_id)).first()
        if row is None:
            raise CommentNotFound(comment_id)
        return self._row(row)

    def threads(self, paper_id: str, moderator: bool = False) -> list[Thread]:
        """The paper's discussion as `moderator` (an admin: hidden comments in full) or a reader sees it.

        For a reader, hidden comments are left out; a hidden or deleted top-level comment with replies to
        show stays as a placeholder with its text erased, so the replies keep their context."""
        if not storable(paper_id):
            return []
        with self.store.engine.connect() as conn:
            rows = conn.execute(self._select().where(self.comments.c.paper_id == paper_id).order_by(self.comments.c.id))
            comments = [self._row(row) for row in rows]
        replies: dict[int, list[Comment]] = {}
        for comment in comments:
            if comment.parent_id is not None and (moderator or not comment.hidden):
                replies.setdefault(comment.parent_id, []).append(comment)
        out = []
        for comment in comments:
            if comment.parent_id is not None:
                continue
            shown = replies.get(comment.id, [])
            removed = comment.deleted or (comment.hidden and not moderator)
            if removed and not shown:
                continue
            if comment.hidden and not moderator:
                comment = replace(comment, body="")
            out.append(Thread(comment, shown))
        return out

    def counts(self, paper_ids: Sequence[str]) -> dict[str, int]:
        """Comments a reader can see, per paper; papers without any are absent."""
        c = self.comments
        ids = [i for i in paper_ids if storable(i)]
        out: dict[str, int] = {}
        with self.store.engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = list(ids[start : start + _CHUNK])
                query = (
                    select(c.c.paper_id, func.count())
                    .where(c.c.paper_id.in_(chunk), c.c.deleted_at.is_(None), c.c.hidden.is_(False))
                    .group_by(c.c.paper_id)
                )
                out.update({pid: int(n) for pid, n in conn.execute(query)})
        return out

    # -- writes --------------------------------------------------------------------------------------

    def add(self, paper_id: str, user_id: int, text: str, reply_to: int | None = None) -> Comment:
        """A new comment, or a reply (to a reply: attached to its top-level comment). Only on a paper that
        readers can see, and only in reply to a comment that is there (not deleted, not hidden)."""
        body = check_body(text)
        c, p = self.comments, self.store.papers
        if not storable(paper_id):
            raise PaperNotFound(paper_id)
        with self.store.write() as w:
            if w.conn.execute(select(p.c.id).where(p.c.id == paper_id, p.c.hidden.is_(False))).first() is None:
                raise PaperNotFound(paper_id)
            parent_id = None
            if reply_to is not None:
                target = self.get(reply_to, w.conn)
                if target.paper_id != paper_id or target.deleted or target.hidden:
                    raise CommentNotFound(reply_to)
                parent_id = target.parent_id if target.parent_id is not None else target.id
            row = {"paper_id": paper_id, "user_id": user_id, "parent_id": parent_id, "body": body}
            inserted = w.conn.execute(insert(c).values(created_at=datetime.now(UTC), hidden=False, **row))
            assert inserted.inserted_primary_key is not None
            new_id = int(inserted.inserted_primary_key[0])
            self._changed(w.conn)
            return self.get(new_id, w.conn)

    def edit(self, comment_id: int, user_id: int, text: str) -> Comment:
        """Replace the text of one's own comment (a hidden one stays hidden)."""
        body = check_body(text)
        c = self.comments
        with self.store.write() as w:
            self._own(comment_id, user_id, w.conn)
            w.conn.execute(update(c).where(c.c.id == comment_id).values(body=body, edited_at=datetime.now(UTC)))
            return self.get(comment_id, w.conn)

    def delete(self, comment_id: int, user_id: int) -> None:
        """Delete one's own comment: erased to a placeholder while it has replies, else removed (with a
        deleted parent that this was the last reply of)."""
        c = self.comments
        with self.store.write() as w:
            comment = self._own(comment_id, user_id, w.conn)
            if self._replies(comment_id, w.conn):
                w.conn.execute(update(c).where(c.c.id == comment_id).values(body="", deleted_at=datetime.now(UTC)))
            else:
                w.conn.execute(delete(c).where(c.c.id == comment_id))
                parent = comment.parent_id
                if parent is not None and not self._replies(parent, w.conn):
                    w.conn.execute(delete(c).where(c.c.id == parent, c.c.deleted_at.is_not(None)))
            self._changed(w.conn)

    def set_hidden(self, comment_id: int, hidden: bool) -> Comment:
        """An admin hides (or shows again) a comment; its text is kept, so unhiding restores it."""
        c = self.comments
        with self.store.write() as w:
            comment = self.get(comment_id, w.conn)
            if comment.deleted:
                raise CommentNotFound(comment_id)
            if comment.hidden != hidden:
                w.conn.execute(update(c).where(c.c.id == comment_id).values(hidden=hidden))
                self._changed(w.conn)
            return self.get(comment_id, w.conn)

    def _own(self, comment_id: int, user_id: int, conn: Connection) -> Comment:
        comment = self.get(comment_id, conn)
        if comment.deleted:
            raise CommentNotFound(comment_id)
        if comment.user_id != user_id:
            raise NotYourComment("only its author can edit or delete a comment")
        return comment

    def _replies(self, comment_id: int, conn: Connection) -> int:
        c = self.comments
        return int(conn.execute(select(func.count()).where(c.c.parent_id == comment_id)).scalar_one())

    def _changed(self, conn: Connection) -> None:
        """Raise the comment counter: cached listing pages showing counts are rebuilt."""
        meta = self.store.meta
        conn.execute(update(meta).where(meta.c.key == "comments_rev").values(value=meta.c.value + 1))
