"""``lambdascope function rename|delete``: fix a function's name or remove it, with its facts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from lambdascope.catalog import CatalogError, StoredFunction, find_function
from lambdascope.cli import db_path_of
from lambdascope.db import open_db


def _key_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--region", default=None, help="Region of the function, when several share its name."
    )(func)
    return click.option(
        "--account",
        "account_id",
        default=None,
        help="Account id of the function, when several share its name.",
    )(func)


def _find(ctx: click.Context, name: str, account_id: str | None, region: str | None) -> Any:
    db = open_db(db_path_of(ctx))
    try:
        return db, find_function(db, name, account_id, region)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def function() -> None:
    """Fix the functions in the store: rename one named after its folder, delete one.

    Example: lambdascope function rename dl orders-api
    """


@function.command()
@click.argument("old_name")
@click.argument("new_name")
@_key_options
@click.pass_context
def rename(
    ctx: click.Context, old_name: str, new_name: str, account_id: str | None, region: str | None
) -> None:
    """Rename OLD_NAME to NEW_NAME with everything stored for it (local-log functions;
    the AWS inventory names the others).

    Example: lambdascope function rename stdin checkout-api
    """
    from lambdascope.catalog import rename_function

    db, found = _find(ctx, old_name, account_id, region)
    try:
        rename_function(db, found, new_name)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"renamed {found.label} to {new_name}")


@function.command()
@click.argument("name")
@_key_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(
    ctx: click.Context, name: str, account_id: str | None, region: str | None, yes: bool
) -> None:
    """Delete NAME and every fact stored about it (invocations, hourly and daily facts,
    metrics, versions, aliases); its log files can then be ingested again under another
    name.

    Example: lambdascope function delete dl --yes
    """
    from lambdascope.catalog import delete_function

    db, found = _find(ctx, name, account_id, region)
    if not yes:
        if not sys.stdin.isatty():
            raise click.ClickException(
                f"deleting {found.label} cannot be undone: add --yes to confirm"
            )
        click.confirm(f"Delete {found.label} and every fact stored about it?", abort=True)
    deleted = delete_function(db, found)
    click.echo(
        f"deleted {found.label}: {deleted.invocations:,} raw invocations,"
        f" {deleted.hourly_rows:,} hourly rows; {deleted.files_forgotten:,} ingested files"
        " forgotten (ingest them again to store them under another name)"
        + _inventory_note(found)
    )


def _inventory_note(found: StoredFunction) -> str:
    if not found.from_inventory:
        return ""
    return "; it was listed by the AWS inventory, so the next `collect` lists it again"
