"""`collect --logs-mode athena` over real HTTP against moto's Athena and S3.

moto accepts the query without running it and returns rows preloaded through
``/moto-api/static/athena/query-results`` (the query's meaning is tested on DuckDB in
test_athena_sql.py). Faults moto cannot produce are made on the same HTTP path: a FAILED
or CANCELLED state edited into GetQueryExecution's answer (``after-call``), throttling
answered before the request leaves (``before-send``, so botocore's real retries run), and
throttling beyond the retries with botocore's Stubber.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from click.testing import CliRunner
from sqlite_utils import Database

import collectors.aws
import collectors.common
from collectors import athena
from collectors.aws import CollectOptions, Store, Target, resolve_targets, run_collection
from lambdascope import histcodec
from lambdascope.cli import cli
from lambdascope.db import open_db
from lambdascope.timeutil import hour_floor, to_epoch
from tests.moto_fleet import (
    DEFAULT_ACCOUNT,
    NOW,
    OTHER_ACCOUNT,
    REGIONS,
    ROLE_ARN,
    Fleet,
    function_name,
    small_moto_fleet,
)

__all__ = ["small_moto_fleet"]

TABLE = "lambda_archive.cwl_firehose"
OUTPUT = "s3://bucket/results/"
HOUR = hour_floor(to_epoch(NOW)) - 2 * 3600
FIRST = function_name(DEFAULT_ACCOUNT, REGIONS[0], 0)
SECOND = function_name(OTHER_ACCOUNT, REGIONS[1], 1)


def fact_row(account: str, name: str, hour: int, memory: int, invocations: int) -> list[str]:
    values = {
        "invocations": invocations,
        "errors": 1,
        "timeouts": 1,
        "out_of_memory": 1,
        "cold_starts": 2,
        "duration_ms_sum": 1234.5,
        "duration_ms_max": 900.25,
        "billed_duration_ms_sum": 1300.0,
        "max_memory_used_mb_max": 300,
        "init_duration_ms_sum": 410.0,
        "init_duration_ms_max": 250.0,
        "restore_duration_ms_sum": 0.0,
        "billed_restore_duration_ms_sum": 0.0,
        "duration_hist": json.dumps({"300": invocations - 1, "343": 1}),
        "billed_duration_hist": json.dumps({"301": invocations}),
        "max_memory_used_hist": json.dumps({"280": invocations}),
        "init_duration_hist": json.dumps({"270": 1, "278": 1}),
    }
    return [account, name, str(hour), str(memory), *(str(values[c]) for c in athena.FACT_COLUMNS)]


ROWS = [
    fact_row(DEFAULT_ACCOUNT, FIRST, HOUR, 512, 10),
    fact_row(DEFAULT_ACCOUNT, FIRST, HOUR + 3600, 1024, 4),
    fact_row(OTHER_ACCOUNT, SECOND, HOUR, 128, 7),
    fact_row("333333333333", "not-collected", HOUR, 128, 3),  # an account not collected
]


def preload(fleet: Fleet, rows: list[list[str]]) -> None:
    """The next query's result, as Athena gives it: a header row, then the rows."""
    names = [*athena.KEY_COLUMNS, *athena.FACT_COLUMNS]
    body = {
        "account_id": DEFAULT_ACCOUNT,
        "region": REGIONS[0],
        "results": [
            {
                "rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in [names, *rows]],
                "column_info": [{"Name": n, "Type": "varchar"} for n in names],
            }
        ],
    }
    request = urllib.request.Request(
        f"{fleet.endpoint_url}/moto-api/static/athena/query-results",
        data=json.dumps(body).encode(),
        method="POST",
    )
    urllib.request.urlopen(request).close()


def set_athena_transition(fleet: Fleet, transition: dict[str, Any] | None) -> None:
    path = "set-transition" if transition else "unset-transition"
    body: dict[str, Any] = {"model_name": "athena::execution"}
    if transition:
        body["transition"] = transition
    request = urllib.request.Request(
        f"{fleet.endpoint_url}/moto-api/state-manager/{path}",
        data=json.dumps(body).encode(),
        method="POST",
    )
    urllib.request.urlopen(request).close()


def options(fleet: Fleet, **overrides: Any) -> CollectOptions:
    values: dict[str, Any] = {
        "regions": REGIONS,
        "role_arns": (ROLE_ARN,),
        "since": timedelta(hours=6),
        "endpoint_url": fleet.endpoint_url,
        "poll_interval_s": 0.0,
        "logs_mode": "athena",
        "athena_table": TABLE,
        "athena_output": OUTPUT,
    }
    values.update(overrides)
    return CollectOptions(**values)


def insights_facts(db: Database) -> list[tuple[Any, ...]]:
    """The insights facts, histograms decoded."""
    rows = db.conn.execute(
        "SELECT f.account_id, f.region, f.function_name, hf.hour, hf.memory_mb,"
        " hf.invocations, hf.errors, hf.timeouts, hf.out_of_memory, hf.cold_starts,"
        " hf.duration_ms_sum, hf.duration_ms_max, hf.max_memory_used_mb_max,"
        " hf.duration_hist, hf.init_duration_hist"
        " FROM hourly_facts hf JOIN functions f ON f.id = hf.function_id"
        " WHERE hf.source = 'insights' ORDER BY 1, 2, 3, 4, 5"
    ).fetchall()
    return [(*row[:-2], histcodec.decode(row[-2]), histcodec.decode(row[-1])) for row in rows]


def logs_runs(db: Database) -> list[tuple[Any, ...]]:
    return db.conn.execute(
        "SELECT account_id, region, status, items, bytes_scanned, estimated_cost_usd,"
        " errors_json FROM collection_runs WHERE source = 'logs' ORDER BY id"
    ).fetchall()


def logs_watermark(db: Database) -> int | None:
    row = db.conn.execute("SELECT watermark FROM watermarks WHERE source = 'logs'").fetchone()
    return None if row is None else int(row[0])


@pytest.fixture
def inventory_db(small_moto_fleet: Fleet, tmp_path: Path) -> Database:
    db = open_db(tmp_path / "store.db")
    run_collection(db, options(small_moto_fleet, only=("inventory",)), now=NOW)
    return db


@pytest.fixture
def athena_hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The Athena clients the collector makes, to register hooks on before they are used."""
    made: list[Any] = []
    hooks: list[Any] = []
    original = collectors.common.make_client

    def client(session: Any, service: str, region: str, endpoint_url: str | None) -> Any:
        made_client = original(session, service, region, endpoint_url)
        if service == "athena":
            for event, handler in hooks:
                made_client.meta.events.register(event, handler)
            made.append(made_client)
        return made_client

    monkeypatch.setattr(collectors.common, "make_client", client)
    yield hooks


def test_athena_collect_cli_against_moto_stores_facts_and_records_run(
    small_moto_fleet: Fleet, tmp_path: Path
) -> None:
    fleet = small_moto_fleet
    fleet.client("s3", REGIONS[0]).create_bucket(Bucket="bucket")
    db_path = tmp_path / "store.db"
    args = [
        "--db", str(db_path), "collect", "--region", REGIONS[0], "--region", REGIONS[1],
        "--role-arn", ROLE_ARN, "--since", "6h", "--endpoint-url", fleet.endpoint_url,
        "--logs-mode", "athena", "--athena-table", TABLE, "--athena-output", OUTPUT,
    ]  # fmt: skip
    preload(fleet, ROWS)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    db = open_db(db_path)
    facts = insights_facts(db)
    assert [f[:6] for f in facts] == [
        (DEFAULT_ACCOUNT, REGIONS[0], FIRST, HOUR, 512, 10),
        (DEFAULT_ACCOUNT, REGIONS[0], FIRST, HOUR + 3600, 1024, 4),
        (OTHER_ACCOUNT, REGIONS[1], SECOND, HOUR, 128, 7),
    ]
    assert facts[0][6:] == (
        1,
        1,
        1,
        2,
        1234.5,
        900.25,
        300,
        {"300": 9, "343": 1},
        {"270": 1, "278": 1},
    )
    # one logs run for the one query: the 10 MB minimum charge ($5 per TB)
    runs = logs_runs(db)
    assert len(runs) == 1
    account, region, status, items, scanned, cost, _errors = runs[0]
    assert (account, region, status, items, scanned) == (DEFAULT_ACCOUNT, REGIONS[0], "ok", 3, 0)
    assert cost == pytest.approx(10 * 2**20 / 2**40 * 5, abs=1e-6)  # stored to 6 places
    assert logs_watermark(db) == hour_floor(to_epoch(NOW))
    message = db.conn.execute("SELECT message FROM collection_runs WHERE source = 'logs'")
    assert "4 rows, 2 functions, rows of 1 accounts not collected left out" in message.fetchone()[0]
    # the query Athena was given: the table, the window's partitions, the workgroup
    client = fleet.client("athena", REGIONS[0])
    [execution_id] = client.list_query_executions()["QueryExecutionIds"][-1:]
    execution = client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    window_start = hour_floor(to_epoch(NOW) - 6 * 3600)
    first_dt = athena.partition(window_start - 3600)
    assert f"dt >= '{first_dt}'" in execution["Query"]
    assert '"lambda_archive"."cwl_firehose"' in execution["Query"]
    assert execution["WorkGroup"] == "primary"
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(OUTPUT)

    # a second run of the same window stores the same facts again: nothing changes
    preload(fleet, ROWS)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert insights_facts(db) == facts


def test_athena_bad_flags_give_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--db", str(tmp_path / "s.db"), "collect", "--logs-mode", "athena",
         "--athena-table", "no_dot", "--athena-output", OUTPUT],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--athena-table must be DATABASE.TABLE" in result.output
    result = CliRunner().invoke(
        cli,
        ["--db", str(tmp_path / "s.db"), "collect", "--logs-mode", "athena",
         "--athena-table", TABLE],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--athena-output must be an s3://bucket/prefix/ location" in result.output


def _state(state: str, reason: str = "") -> Any:
    def edit(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "GetQueryExecution":
            parsed["QueryExecution"]["Status"]["State"] = state
            parsed["QueryExecution"]["Status"]["StateChangeReason"] = reason
            parsed["QueryExecution"]["Statistics"]["DataScannedInBytes"] = 123 * 2**20

    return edit


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("FAILED", "HIVE_BAD_DATA: Error parsing field value"),
        ("CANCELLED", "Query cancelled by user"),
    ],
)
def test_athena_failed_or_cancelled_query_writes_nothing(
    small_moto_fleet: Fleet,
    inventory_db: Database,
    athena_hooks: list[Any],
    state: str,
    reason: str,
) -> None:
    athena_hooks.append(("after-call.athena.GetQueryExecution", _state(state, reason)))
    preload(small_moto_fleet, ROWS)
    summary = run_collection(inventory_db, options(small_moto_fleet, only=("logs",)), now=NOW)
    assert summary.exit_code == 2
    assert insights_facts(inventory_db) == []
    assert logs_watermark(inventory_db) is None
    [(_account, _region, status, items, scanned, cost, errors)] = logs_runs(inventory_db)
    assert (status, items, scanned) == ("failed", 0, 123 * 2**20)
    assert cost == pytest.approx(123 / 2**20 * 5, abs=1e-6)  # scanned bytes are billed anyway
    assert json.loads(errors)[0]["code"] == state
    assert reason in json.loads(errors)[0]["message"]


def test_athena_stop_request_cancels_the_running_query(
    small_moto_fleet: Fleet, inventory_db: Database, athena_hooks: list[Any]
) -> None:
    """A stop request (SIGTERM of `serve`) while the query runs: StopQueryExecution, the
    run is 'interrupted', nothing stored, the watermark stays (moto cancels for real)."""
    started: list[str] = []
    athena_hooks.append(("before-call.athena.StartQueryExecution", lambda **_: started.append("x")))
    set_athena_transition(small_moto_fleet, {"progression": "manual", "times": 3})
    try:
        store = Store(inventory_db)
        opts = options(small_moto_fleet, only=("logs",))
        result = athena.collect_run(
            store, resolve_targets(opts), opts, now=NOW, stop=lambda: bool(started)
        )
    finally:
        set_athena_transition(small_moto_fleet, None)
    assert result.status == "interrupted"
    assert insights_facts(inventory_db) == []
    assert logs_watermark(inventory_db) is None
    client = small_moto_fleet.client("athena", REGIONS[0])
    last = client.list_query_executions()["QueryExecutionIds"][-1]
    state = client.get_query_execution(QueryExecutionId=last)["QueryExecution"]["Status"]
    assert state["State"] == "CANCELLED"


def test_athena_throttling_is_retried(
    small_moto_fleet: Fleet, inventory_db: Database, athena_hooks: list[Any]
) -> None:
    throttled: list[str] = []

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        if len(throttled) >= 2:
            return None
        throttled.append(request.url)
        body = b'{"__type":"TooManyRequestsException","message":"Rate exceeded"}'
        return AWSResponse(
            request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body)
        )

    athena_hooks.append(("before-send.athena.StartQueryExecution", throttle))
    preload(small_moto_fleet, ROWS)
    summary = run_collection(inventory_db, options(small_moto_fleet, only=("logs",)), now=NOW)
    assert summary.exit_code == 0, summary.lines()
    assert len(throttled) == 2
    assert len(insights_facts(inventory_db)) == 3


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def test_athena_throttled_beyond_retries_or_while_paging_writes_nothing(
    small_moto_fleet: Fleet, inventory_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Throttled for good (Stubber: botocore's retries are used up): the run fails, nothing
    is written; a result that fails on its second page writes none of the first; a query
    whose polling fails is stopped."""
    stubbers: list[Stubber] = []
    original = collectors.common.make_client

    def stubbed(session: Any, service: str, region: str, endpoint_url: str | None) -> Any:
        client = original(session, service, region, endpoint_url)
        if service == "athena":
            stubber = scripts.pop(0)(client)
            stubber.activate()
            stubbers.append(stubber)
        return client

    def throttled(client: Any) -> Stubber:
        stubber = Stubber(client)
        stubber.add_client_error(
            "start_query_execution", "TooManyRequestsException", "Rate exceeded", 400
        )
        return stubber

    def second_page_fails(client: Any) -> Stubber:
        stubber = Stubber(client)
        stubber.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
        stubber.add_response(
            "get_query_execution",
            {
                "QueryExecution": {
                    "QueryExecutionId": "q-1",
                    "Status": {"State": "SUCCEEDED"},
                    "Statistics": {"DataScannedInBytes": 5 * 2**30},
                }
            },
        )
        names = [*athena.KEY_COLUMNS, *athena.FACT_COLUMNS]
        stubber.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "Rows": [
                        {"Data": [{"VarCharValue": v} for v in row]} for row in [names, ROWS[0]]
                    ],
                    "ResultSetMetadata": {
                        "ColumnInfo": [{"Name": n, "Type": "varchar"} for n in names]
                    },
                },
                "NextToken": "page-2",
            },
        )
        stubber.add_client_error("get_query_results", "ThrottlingException", "Rate exceeded", 400)
        return stubber

    def polling_throttled(client: Any) -> Stubber:
        # polling fails for good: the query is stopped, not left running (and billed)
        stubber = Stubber(client)
        stubber.add_response("start_query_execution", {"QueryExecutionId": "q-2"})
        stubber.add_client_error("get_query_execution", "ThrottlingException", "Rate exceeded", 400)
        stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-2"})
        return stubber

    scripts = [throttled, second_page_fails, polling_throttled]
    monkeypatch.setattr(collectors.common, "make_client", stubbed)
    for expected_code in ("TooManyRequestsException", "ThrottlingException", "ThrottlingException"):
        summary = run_collection(inventory_db, options(small_moto_fleet, only=("logs",)), now=NOW)
        assert summary.exit_code == 2
        assert insights_facts(inventory_db) == []
        assert logs_watermark(inventory_db) is None
        errors = json.loads(logs_runs(inventory_db)[-1][-1])
        assert errors[0]["code"] == expected_code
    for stubber in stubbers:
        stubber.assert_no_pending_responses()


def test_athena_rows_placed_on_functions(tmp_path: Path) -> None:
    """A function the inventory does not list (deleted, history only in the archive) is
    added in its account's one collected region; with two regions its rows are left out."""
    db = open_db(tmp_path / "store.db")
    store = Store(db)
    gone = ("111111111111", "deleted-fn", HOUR, 512)
    known = ("111111111111", "live-fn", HOUR, 512)
    with store.write() as conn:
        from lambdascope.db import function_id

        function_id(conn, "live-fn", "111111111111", "eu-west-1")
        function_id(conn, "live-fn", "111111111111", "us-east-1")
    facts, skipped = athena.transform_rows([fact_row(*k, invocations=5) for k in (gone, known)])
    assert skipped == 0
    one_region = [Target(None, "111111111111", "eu-west-1")]  # type: ignore[arg-type]
    stored, placement = athena.load_facts(store, facts, one_region)
    assert stored == 2
    assert placement.ambiguous == set()
    regions = db.conn.execute(
        "SELECT function_name, region FROM functions ORDER BY 1, 2"
    ).fetchall()
    assert ("deleted-fn", "eu-west-1") in regions
    both = [*one_region, Target(None, "111111111111", "us-east-1")]  # type: ignore[arg-type]
    unknown = ("111111111111", "other-fn", HOUR, 512)
    facts, _ = athena.transform_rows([fact_row(*k, invocations=5) for k in (unknown, known)])
    stored, placement = athena.load_facts(store, facts, both)
    assert stored == 0  # live-fn is in both regions, other-fn in neither
    assert placement.ambiguous == {("111111111111", "other-fn"), ("111111111111", "live-fn")}


def test_athena_next_run_resumes_from_the_watermark(
    small_moto_fleet: Fleet, inventory_db: Database
) -> None:
    """Without --since the next query starts 2 h before the watermark (late logs), and its
    partitions one hour before that."""
    preload(small_moto_fleet, ROWS)
    first = run_collection(inventory_db, options(small_moto_fleet, only=("logs",)), now=NOW)
    assert first.exit_code == 0
    mark = logs_watermark(inventory_db)
    assert mark == hour_floor(to_epoch(NOW))
    later = NOW + timedelta(hours=5)
    resumed = options(small_moto_fleet, only=("logs",), since=None)
    assert run_collection(inventory_db, resumed, now=later).exit_code == 0
    client = small_moto_fleet.client("athena", REGIONS[0])
    last = client.list_query_executions()["QueryExecutionIds"][-1]
    query = client.get_query_execution(QueryExecutionId=last)["QueryExecution"]["Query"]
    assert f"dt >= '{athena.partition(mark - 3 * 3600)}'" in query
    assert f"ts >= {mark - 2 * 3600} AND ts < {hour_floor(to_epoch(later)) + 3600}" in query
    assert logs_watermark(inventory_db) == hour_floor(to_epoch(later))
