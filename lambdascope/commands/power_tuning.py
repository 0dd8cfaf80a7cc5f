"""``lambdascope power-tuning [input] FUNCTION`` and ``lambdascope power-tuning import FILE``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lambdascope.cli import db_path_of
from lambdascope.commands.report import power_tuning as input_command
from lambdascope.db import StoreError, open_db
from lambdascope.timeutil import to_epoch, utcnow


class _DefaultToInput(click.Group):
    """``power-tuning FUNCTION ...`` keeps meaning ``power-tuning input FUNCTION ...``."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands:
            return "input", self.commands["input"], args
        return super().resolve_command(ctx, args)


@click.group(
    name="power-tuning",
    cls=_DefaultToInput,
    context_settings={"ignore_unknown_options": True},
)
def power_tuning() -> None:
    """AWS Lambda Power Tuning: the input around a recommendation, and importing results.

    Example: lambdascope power-tuning checkout-api > input.json
    """


power_tuning.add_command(input_command, name="input")


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{path} is not UTF-8 text") from None


@power_tuning.command(name="import")
@click.argument("file", metavar="FILE|-")
@click.option(
    "--function",
    "function_ref",
    default=None,
    help="The tuned function's name or ARN [default: lambdaARN of the execution input].",
)
@click.option(
    "--input",
    "input_file",
    default=None,
    help="The execution's input JSON (e.g. what `power-tuning FUNCTION` printed).",
)
@click.pass_context
def import_results(
    ctx: click.Context, file: str, function_ref: str | None, input_file: str | None
) -> None:
    """Store a Power Tuning execution's results as measured durations for its function.

    FILE is the state machine's output, or `aws stepfunctions describe-execution` JSON
    (its input names the function). Memory recommendations then project durations from
    the measured sizes before the model. Importing the same run again changes nothing.

    Example: lambdascope power-tuning import output.json --input input.json
    """
    from lambdascope.evidence import power_tuning as pt

    text = _read(file)
    execution_input = _read(input_file) if input_file else None
    try:
        run = pt.parse_run(text, execution_input=execution_input)
        target = pt.parse_function_ref(function_ref) if function_ref else None
        db = open_db(db_path_of(ctx))
        stored = pt.store_run(db, run, target, now=to_epoch(utcnow()))
    except pt.PowerTuningError as exc:
        raise click.ClickException(str(exc)) from None
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    name = stored.function.function_name
    sizes = ", ".join(str(p.memory_mb) for p in run.points)
    if not stored.created:
        click.echo(f"already imported: Power Tuning run for {name} ({sizes} MB)")
        return
    how = f" ({run.strategy})" if run.strategy else ""
    click.echo(
        f"imported Power Tuning run for {name}: {len(run.points)} sizes ({sizes} MB),"
        f" picked {run.chosen_memory_mb} MB{how}"
    )
