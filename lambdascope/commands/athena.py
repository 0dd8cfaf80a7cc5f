"""``lambdascope athena-table``: the Athena table over a Firehose archive of Lambda logs."""

from __future__ import annotations

import click


@click.command("athena-table")
@click.option(
    "--location",
    required=True,
    help="s3://bucket/prefix/ under which Firehose writes YYYY/MM/DD/HH/ objects.",
)
@click.option(
    "--table",
    default="lambda_archive.cwl_firehose",
    show_default=True,
    help="DATABASE.TABLE to create.",
)
@click.option(
    "--since",
    "start",
    default="2020/01/01/00",
    show_default=True,
    help="First hour of the partition projection (YYYY/MM/DD/HH).",
)
def athena_table(location: str, table: str, start: str) -> None:
    """Print the CREATE EXTERNAL TABLE statement for a Firehose archive in S3.

    JSON SerDe, gzip'd objects, partition projection on the date/hour path (no crawler,
    no MSCK REPAIR). Run it once in Athena (the console, or `aws athena
    start-query-execution`), then collect with `--logs-mode athena`.

    Example: lambdascope athena-table --location s3://org-logs/lambda/
    """
    import re

    from collectors.athena import AthenaSetupError, athena_table_ddl

    if not re.fullmatch(r"\d{4}/\d{2}/\d{2}/\d{2}", start):
        raise click.BadParameter(f"not a YYYY/MM/DD/HH hour: {start!r}", param_hint="--since")
    try:
        click.echo(athena_table_ddl(location, table, start))
    except AthenaSetupError as exc:
        raise click.UsageError(str(exc)) from None
