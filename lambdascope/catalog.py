"""Fixing the store's functions by hand: find, rename, delete, set the architecture.

Local logs name their function from an envelope's log group, ``--function`` or the folder
they sit in; a wrong guess (``dl``, ``stdin``) must be fixable without re-creating the
store. Each change is one transaction. Functions listed by the AWS inventory take their
names and architecture from AWS, so those changes are refused for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from lambdascope import packing
from lambdascope.store import forget_dirty_hours


class CatalogError(Exception):
    """A change that cannot be made, in one line."""


@dataclass(frozen=True)
class StoredFunction:
    """A function row's identity and whether AWS inventory listed it."""

    id: int
    function_name: str
    account_id: str
    region: str
    from_inventory: bool

    @property
    def label(self) -> str:
        """``name`` or ``name (account, region)`` when those are known."""
        where = ", ".join(part for part in (self.account_id, self.region) if part)
        return f"{self.function_name} ({where})" if where else self.function_name


def find_function(
    db: Database, name: str, account_id: str | None = None, region: str | None = None
) -> StoredFunction:
    """The one stored function with this name (narrowed by account and region when
    given); CatalogError when there is none or several."""
    sql = (
        "SELECT id, function_name, account_id, region, inventory_at IS NOT NULL"
        " FROM functions WHERE function_name = ?"
    )
    params: list[str] = [name]
    if account_id is not None:
        sql += " AND account_id = ?"
        params.append(account_id)
    if region is not None:
        sql += " AND region = ?"
        params.append(region)
    found = [
        StoredFunction(int(r[0]), r[1], r[2], r[3], bool(r[4]))
        for r in db.conn.execute(sql + " ORDER BY account_id, region", params)
    ]
    if not found:
        raise CatalogError(f"no function {name!r} in the store (see `lambdascope summary`)")
    if len(found) > 1:
        where = "; ".join(f.label for f in found)
        raise CatalogError(
            f"{len(found)} functions are named {name!r} ({where}): choose one with"
            " --account and --region"
        )
    return found[0]


def rename_function(db: Database, function: StoredFunction, new_name: str) -> None:
    """Give a function from local logs its right name, with everything stored for it.

    Files ingested under the old name keep their place in the registry of ingested files,
    under the new name. Refused for inventory functions and when the new name is taken
    (delete one of the two first: their invocations may be the same ones).
    """
    if function.from_inventory:
        raise CatalogError(
            f"{function.label} was listed by the AWS inventory: its name comes from AWS"
        )
    if not new_name or new_name == function.function_name:
        raise CatalogError("give a new name different from the old one")
    taken = db.conn.execute(
        "SELECT 1 FROM functions WHERE function_name = ? AND account_id = ? AND region = ?",
        (new_name, function.account_id, function.region),
    ).fetchone()
    if taken:
        raise CatalogError(
            f"{new_name!r} already exists in the store: delete one of the two first"
            " (`lambdascope function delete`), then re-ingest its logs under the kept name"
        )
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET function_name = ? WHERE id = ?", (new_name, function.id)
        )
        db.conn.execute(
            "UPDATE ingested_files SET function_name = ? WHERE function_name = ?",
            (new_name, function.function_name),
        )


@dataclass(frozen=True)
class Deleted:
    """What delete_function removed."""

    invocations: int
    hourly_rows: int
    files_forgotten: int


def delete_function(db: Database, function: StoredFunction) -> Deleted:
    """Delete a function and every fact about it (invocations, hourly and daily facts,
    metrics, versions, aliases, ...), and forget the files ingested under its name so
    they can be ingested again under another. One transaction."""
    conn = db.conn
    fid = function.id
    invocations = conn.execute(
        "SELECT COUNT(*) FROM invocations WHERE function_id = ?", (fid,)
    ).fetchone()[0]
    hourly = conn.execute(
        "SELECT (SELECT COUNT(*) FROM hourly_facts WHERE function_id = ?)"
        " + (SELECT COUNT(*) FROM hourly_metrics WHERE function_id = ?)",
        (fid, fid),
    ).fetchone()[0]
    hourly += packing.base_rows(conn, fid)
    with conn:
        files = conn.execute(
            "DELETE FROM ingested_files WHERE function_name = ?"
            " AND NOT EXISTS (SELECT 1 FROM functions WHERE function_name = ? AND id != ?)",
            (function.function_name, function.function_name, fid),
        ).rowcount
        conn.execute("DELETE FROM functions WHERE id = ?", (fid,))
        # rollup bookkeeping has no foreign key: drop what refers to the deleted id
        conn.execute("DELETE FROM rollup_dirty WHERE function_id = ?", (fid,))
        forget_dirty_hours(db, fid)
    return Deleted(int(invocations), int(hourly), max(files, 0))


def apply_architecture(db: Database, function: StoredFunction, architecture: str) -> str | None:
    """Set the architecture of a function from local logs (it prices its duration);
    returns a note when it changed or why it was not applied, else None."""
    current = db.conn.execute(
        "SELECT architecture FROM functions WHERE id = ?", (function.id,)
    ).fetchone()[0]
    if current == architecture:
        return None
    if function.from_inventory:
        return (
            f"{function.label}: --architecture {architecture} not applied: the AWS inventory"
            f" says {current}"
        )
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET architecture = ? WHERE id = ?", (architecture, function.id)
        )
    if current is None:
        return None
    return f"{function.label}: architecture changed from {current} to {architecture}"
