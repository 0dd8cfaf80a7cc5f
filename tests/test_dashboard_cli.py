"""`lambdascope dashboard` and `serve`: refuse unsafe or broken setups with one clear line,
answer 401 to anything unauthenticated, and run on waitress (real processes, real HTTP)."""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dash
import pytest
from click.testing import CliRunner

from lambdascope.cli import cli
from lambdascope.commands.dashboard import is_loopback, make_app, parse_auth, server_settings


def test_public_host_without_auth_is_refused(db_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "dashboard", "--host", "0.0.0.0"], env={"LAMBDASCOPE_AUTH": ""}
    )
    assert result.exit_code == 2
    assert "--auth USER:PASSWORD" in result.output
    assert "Traceback" not in result.output


def test_malformed_auth_is_refused(db_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "dashboard", "--host", "0.0.0.0", "--auth", "nopassword"]
    )
    assert result.exit_code == 2
    assert "expected USER:PASSWORD" in result.output


def test_missing_database_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.db"), "dashboard"])
    assert result.exit_code != 0
    assert "no database at" in str(result.exception) or "no database at" in result.output


def test_loopback_detection_and_auth_parsing() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")
    assert parse_auth("admin:s3:cret") == ("admin", "s3:cret")


def test_basic_auth_guards_every_page(db_path: Path) -> None:
    client = make_app(db_path, ("admin", "s3cret")).server.test_client()
    assert client.get("/functions").status_code == 401
    token = base64.b64encode(b"admin:s3cret").decode()
    assert client.get("/functions", headers={"Authorization": f"Basic {token}"}).status_code == 200
    wrong = base64.b64encode(b"admin:nope").decode()
    assert client.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401


CREDENTIALS = ("admin", "correct-horse-battery")


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"garbage", "application/json"),
        (b"{}", "application/json"),
        (b"[]", "application/json"),
        (b'{"output": "x"}', "application/json"),
        (b'{"output": ["not", "hashable"], "inputs": 3}', "application/json"),
        (b"output=x", "application/x-www-form-urlencoded"),
    ],
)
def test_unauthenticated_malformed_callback_posts_get_401(
    db_path: Path, body: bytes, content_type: str
) -> None:
    client = make_app(db_path, CREDENTIALS).server.test_client()
    for headers in (
        {},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        _basic("admin", "wrong"),
        _basic("someone", CREDENTIALS[1]),
    ):
        answer = client.post(
            "/_dash-update-component", data=body, content_type=content_type, headers=headers
        )
        assert answer.status_code == 401, (body, headers)
        assert answer.headers["WWW-Authenticate"].startswith('Basic realm="lambdascope"')
        assert b"Traceback" not in answer.data


def test_the_right_credentials_reach_pages_and_callbacks(db_path: Path) -> None:
    client = make_app(db_path, CREDENTIALS).server.test_client()
    assert client.get("/", headers=_basic(*CREDENTIALS)).status_code == 200
    assert client.get("/_dash-layout", headers=_basic(*CREDENTIALS)).status_code == 200
    # a non-ASCII password is compared as UTF-8, not rejected with an error
    client = make_app(db_path, ("admin", "pässwörd-lång-nog")).server.test_client()
    assert client.get("/", headers=_basic("admin", "pässwörd-lång-nog")).status_code == 200
    assert client.get("/", headers=_basic("admin", "passwort")).status_code == 401


def test_short_passwords_plain_http_and_open_hosts_are_warned_about() -> None:
    _, warnings = server_settings("127.0.0.1", 8050, auth="admin:" + "x" * 12)
    assert warnings == []
    _, warnings = server_settings("127.0.0.1", 8050, auth="admin:hunter2")
    assert warnings == [
        "warning: the --auth password has 7 characters; basic auth has no lockout,"
        " so use 12 or more"
    ]
    _, warnings = server_settings("0.0.0.0", 8050, auth="admin:" + "x" * 20)
    assert len(warnings) == 1 and "plain HTTP" in warnings[0] and "TLS" in warnings[0]
    _, warnings = server_settings("::", 8050, no_auth=True, debug=True)
    assert [w.split(":")[0] for w in warnings] == ["warning", "warning"]
    assert "without a password" in warnings[0] and "tracebacks" in warnings[1]


def test_the_dashboard_prints_its_warnings_before_refusing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--db", str(tmp_path / "none.db"), "dashboard", "--host", "10.1.2.3"],
        env={"LAMBDASCOPE_AUTH": "admin:short"},
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        "warning: the --auth password has 5 characters; basic auth has no lockout,"
        " so use 12 or more",
        "warning: basic auth on 10.1.2.3 is plain HTTP: the password and the pages cross"
        " the network unencrypted; put a TLS reverse proxy in front (docs/deploy.md)"
        " and bind 127.0.0.1",
    ]
    assert result.stderr.splitlines()[-1].startswith("Error: no database at")


def test_serve_has_the_dashboard_auth_options(tmp_path: Path) -> None:
    """What `serve --host 0.0.0.0` asks for exists on `serve`, also as $LAMBDASCOPE_AUTH;
    the address is checked before anything starts."""
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database\n")
    base = ["--db", str(not_sqlite), "serve", "--job", "prune", "--host", "0.0.0.0"]
    refused = CliRunner().invoke(cli, base, env={"LAMBDASCOPE_AUTH": ""})
    assert refused.exit_code == 2
    assert "give --auth USER:PASSWORD (or $LAMBDASCOPE_AUTH), or --no-auth" in refused.output
    help_text = CliRunner().invoke(cli, ["serve", "--help"]).output
    for option in ("--auth", "--no-auth", "LAMBDASCOPE_AUTH", "--threads"):
        assert option in help_text
    # accepted each way: they get past the address check to the store (not SQLite here)
    for args, env in (
        (["--auth", "admin:" + "y" * 16], {}),
        ([], {"LAMBDASCOPE_AUTH": "admin:" + "y" * 16}),
        (["--no-auth"], {"LAMBDASCOPE_AUTH": ""}),
    ):
        result = CliRunner().invoke(cli, [*base, *args], env=env)
        assert result.exit_code == 1, result.output
        assert "cannot open database" in result.stderr and "Traceback" not in result.output
    assert not_sqlite.read_text() == "not a database\n"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_store_the_dashboard_cannot_show_is_refused_with_one_line(
    tmp_path: Path, db_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    foreign = tmp_path / "other-app.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    empty = tmp_path / "empty.db"
    empty.touch()
    older = tmp_path / "older.db"
    older.write_bytes(db_path.read_bytes())
    conn = sqlite3.connect(older)
    conn.execute(
        "DELETE FROM _sqlite_migrations WHERE id = (SELECT max(id) FROM _sqlite_migrations)"
    )
    conn.commit()
    conn.close()
    # the key words of each refusal (the store's own checks may word the first three)
    cases = {
        text: "not a database",
        foreign: "is not a lambdascope store",
        empty: "lambdascope",
        older: "was written by an older lambdascope (1 schema changes pending)",
    }
    for path, expected in cases.items():
        before = _sha(path)
        result = CliRunner().invoke(cli, ["--db", str(path), "dashboard", "--port", "0"])
        assert result.exit_code == 1, (path, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (path, lines)
        assert expected in lines[0] and str(path) in lines[0], (path, lines)
        assert _sha(path) == before  # read, never written


def test_a_store_that_breaks_while_serving_shows_the_error_on_the_page(
    db_path: Path, tmp_path: Path
) -> None:
    app = make_app(db_path)
    app.server.test_client().get("/")  # the pages register on the first request
    layout = dash.page_registry["dashboards.pages.overview"]["layout"]
    with app.server.test_request_context("/"):
        assert "store-error" not in str(layout())
        db_path.write_text("replaced by something else\n")
        for suffix in ("-wal", "-shm"):
            db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
        page = layout()
    assert page.id == "store-error"
    assert str(db_path) in str(page) and "file is not a database" in str(page)


class _Running:
    """A lambdascope command in its own process; its stderr is read line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lambdascope.cli", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.proc.stderr is not None
        stderr = self.proc.stderr
        threading.Thread(target=lambda: [self.lines.put(x) for x in stderr], daemon=True).start()

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} in {self.seen}") from None
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code


@pytest.fixture
def running() -> Iterator[list[_Running]]:
    started: list[_Running] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_dashboard_runs_on_waitress_not_the_development_server(
    db_path: Path, running: list[_Running]
) -> None:
    server = _Running(["--db", str(db_path), "dashboard", "--port", "0", "--threads", "1"])
    running.append(server)
    url = server.wait_for(r"lambdascope dashboard on (http://127\.0\.0\.1:\d+/) ").group(1)
    status, headers = _get(url)
    assert status == 200 and headers["Server"] == "waitress"
    # a burst on one thread queues: answered in turn, without a log line per request
    answers: list[int] = []
    burst = [
        threading.Thread(target=lambda: answers.append(_get(url + "_dash-layout")[0]))
        for _ in range(12)
    ]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join()
    assert answers == [200] * 12
    assert server.stop() == 0
    log = "".join(server.seen)
    assert "development server" not in log and "Traceback" not in log
    assert "Task queue depth" not in log


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_urls_are_printed_in_brackets(db_path: Path, running: list[_Running]) -> None:
    server = _Running(["--db", str(db_path), "dashboard", "--host", "::1", "--port", "0"])
    running.append(server)
    url = server.wait_for(r"lambdascope dashboard on (\S+) ").group(1)
    assert re.fullmatch(r"http://\[::1\]:\d+/", url)
    assert _get(url)[0] == 200
    assert server.stop() == 0


def test_a_taken_port_is_one_line(db_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["--db", str(db_path), "dashboard", "--port", str(port)])
    assert result.exit_code == 1
    expected = f"Error: cannot listen on 127.0.0.1 port {port}: Address already in use\n"
    assert result.stderr == expected
    # nothing left running in the process (worker threads start only once bound)
    assert [t.name for t in threading.enumerate() if t.name.startswith("waitress")] == []


def test_serve_with_auth_answers_401_then_200_over_http(
    db_path: Path, running: list[_Running]
) -> None:
    args = ["--db", str(db_path), "serve", "--job", "prune", "--port", "0"]
    server = _Running(args, env={"LAMBDASCOPE_AUTH": ":".join(CREDENTIALS)})
    running.append(server)
    url = server.wait_for(r"lambdascope dashboard on (http://127\.0\.0\.1:\d+/) ").group(1)
    assert _get(url)[0] == 401
    request = urllib.request.Request(
        url + "_dash-update-component",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("an unauthenticated callback was answered")
    except urllib.error.HTTPError as error:
        assert error.code == 401
    status, headers = _get(url, _basic(*CREDENTIALS))
    assert status == 200 and headers["Server"] == "waitress"
    assert server.stop() == 0
    log = "".join(server.seen)
    assert "serve stopped" in log and "Traceback" not in log
