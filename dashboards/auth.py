"""HTTP basic auth in front of every route of the dashboard: pages, assets and callbacks.

The check runs before anything reads the request (Dash's callback dispatch parses the
body), so an unauthenticated request is answered 401 whatever it carries, malformed
bodies and headers included. Credentials are compared in constant time.
"""

from __future__ import annotations

import hmac

import flask

REALM = "lambdascope"


def _same(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode("utf-8"), expected.encode("utf-8"))


def is_authorized(request: flask.Request, user: str, password: str) -> bool:
    """True when the request carries these basic-auth credentials (werkzeug parses the
    header; a missing or malformed one is ``None``)."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return False
    # both compared, always: the time taken says nothing about which one was wrong
    return _same(auth.username, user) & _same(auth.password, password)


def login_required() -> flask.Response:
    """The 401 answer that makes a browser ask for a user name and password."""
    return flask.Response(
        "Login required\n",
        status=401,
        mimetype="text/plain",
        headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
    )


def require_basic_auth(server: flask.Flask, user: str, password: str) -> None:
    """Answer 401 to every request of ``server`` without these credentials."""

    def guard() -> flask.Response | None:
        if is_authorized(flask.request, user, password):
            return None
        return login_required()

    # first of the app-wide hooks, so no other hook sees an unauthenticated request
    server.before_request_funcs.setdefault(None, []).insert(0, guard)


__all__ = ["is_authorized", "login_required", "require_basic_auth"]
