"""``lambdascope parse``: print what lambdascope understands of log files, as JSON Lines."""

from __future__ import annotations

import json
import os
import sys

import click


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--function",
    "function_name",
    default=None,
    help="Function name for files without a /aws/lambda/<name> envelope"
    " [default: as ingest names them, the file's directory name].",
)
def parse(paths: tuple[str, ...], function_name: str | None) -> None:
    """Print one JSON object per platform event found in PATHS (files, directories,
    .gz, or - for stdin): REPORT, INIT_REPORT and timeouts, with exactly the keys kind,
    function_name, timestamp, request_id, duration_ms, billed_duration_ms,
    memory_size_mb, max_memory_used_mb, init_duration_ms, restore_duration_ms,
    billed_restore_duration_ms, status, error_type. Nothing is written to the store.

    Example: lambdascope parse tests/data/logs/text/report_variants.log
    """
    from collectors.local import default_function_name, discover, iter_batches
    from lambdascope.logparse import TRUNCATED_GZIP, event_to_json
    from lambdascope.validate import function_name_warning

    warning = function_name_warning(function_name)
    if warning is not None:
        click.echo(warning, err=True)

    failed = False
    for path, error in discover(paths):
        if error is not None:
            click.echo(f"Error: cannot read {path}: {error}", err=True)
            failed = True
            continue
        try:
            raw = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            click.echo(f"Error: cannot read {path}: {exc.strerror or exc}", err=True)
            failed = True
            continue
        try:
            # the name ingest would store for events outside a /aws/lambda/<name> envelope
            default = default_function_name(path, function_name)
            for batch, _source in iter_batches(raw, default_function=default):
                for event in batch.events:
                    if event.kind != "out_of_memory":
                        click.echo(json.dumps(event_to_json(event)))
                if batch.skipped.get(TRUNCATED_GZIP):
                    click.echo(
                        f"warning: {path} is a truncated gzip file: the events before the"
                        " cut are shown",
                        err=True,
                    )
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes
            sys.exit(0)
        except OSError as exc:
            click.echo(f"Error: cannot read {path}: {exc.strerror or exc}", err=True)
            failed = True
        finally:
            if path != "-":
                raw.close()
    if failed:
        sys.exit(1)
