"""Messages and sending: one message per destination and check, through apprise.

apprise turns a URL into a sender (``slack://``, ``msteams://``, ``mailto://``,
``sns://``, ``json://host:port/path``, ...); see https://github.com/caronc/apprise/wiki.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import quote, urlencode

from lambdascope.alerts.model import RULE_TITLES
from lambdascope.alerts.state import Pending
from lambdascope.timeutil import iso

# At most this many alerts are written out in one message; the rest are counted.
MAX_ITEMS = 25

# (url, title, body, severity) -> None when delivered, else the error text
Sender = Callable[[str, str, str, str], str | None]


class DestinationError(Exception):
    """A notification URL that apprise does not understand (one clear line)."""


def function_link(dashboard_url: str | None, item: Pending) -> str | None:
    """The dashboard page of the alert's function (None without a dashboard URL)."""
    if not dashboard_url or not item.function_name:
        return None
    query = {k: v for k, v in (("account", item.account_id), ("region", item.region)) if v}
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{dashboard_url.rstrip('/')}/functions/{quote(item.function_name)}{suffix}"


def _subject(item: Pending) -> str:
    if not item.function_name:
        return RULE_TITLES.get(item.rule, item.rule)
    where = " ".join(p for p in (item.account_id, item.region) if p)
    return f"{RULE_TITLES.get(item.rule, item.rule)}: {item.function_name}" + (
        f" ({where})" if where else ""
    )


def severity_of(items: Sequence[Pending]) -> str:
    """The message's type: failure for a critical alert, warning, info, or success when
    the message only announces resolutions."""
    opened = [i for i in items if i.kind == "open"]
    if not opened:
        return "success"
    if any(i.severity == "critical" for i in opened):
        return "failure"
    if any(i.severity == "warning" for i in opened):
        return "warning"
    return "info"


def message(items: Sequence[Pending], dashboard_url: str | None) -> tuple[str, str]:
    """Title and plain-text body announcing ``items`` (new first, then resolved)."""
    opened = [i for i in items if i.kind == "open"]
    resolved = [i for i in items if i.kind == "resolved"]
    if len(items) == 1:
        only = items[0]
        title = f"lambdascope: {_subject(only)}" + (" resolved" if only.kind == "resolved" else "")
    else:
        parts = []
        if opened:
            parts.append(f"{len(opened)} new alert{'s' * (len(opened) != 1)}")
        if resolved:
            parts.append(f"{len(resolved)} resolved")
        title = "lambdascope: " + ", ".join(parts)
    lines: list[str] = []
    for item in [*opened, *resolved][:MAX_ITEMS]:
        if item.kind == "resolved":
            lines.append(f"[RESOLVED] {_subject(item)}")
            lines.append(
                f"  was: {item.summary} (opened {iso(item.first_seen)},"
                f" resolved {iso(item.resolved_at)})"
            )
        else:
            state = f" (resolved {iso(item.resolved_at)})" if item.resolved_at else ""
            lines.append(f"[{item.severity.upper()}] {_subject(item)}{state}")
            lines.append(f"  {item.summary}")
            if item.body:
                lines.extend(f"  {line}" for line in item.body.splitlines())
        link = function_link(dashboard_url, item)
        if link:
            lines.append(f"  {link}")
    rest = len(items) - MAX_ITEMS
    if rest > 0:
        lines.append(f"... and {rest} more")
    if dashboard_url:
        lines.append(f"All alerts: {dashboard_url.rstrip('/')}/alerts")
    return title, "\n".join(lines)


def check_url(url: str) -> str:
    """The redacted form of a notification URL; DestinationError when apprise cannot
    use it."""
    import apprise

    service = apprise.Apprise.instantiate(url)
    if not service:
        raise DestinationError(f"not a notification URL apprise understands: {redact(url)}")
    return str(service.url(privacy=True))  # type: ignore[no-untyped-call]


def redact(url: str) -> str:
    """The URL without anything after its scheme and host (for error messages)."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/")[0].split("?")[0].split("@")[-1]
    return f"{scheme}://{host}/..." if sep else "<not a URL>"


def send_apprise(
    url: str, title: str, body: str, severity: str, timeout_s: float = 30
) -> str | None:
    """Send through apprise; None when the destination accepted it, else the error."""
    import apprise

    errors: list[str] = []

    def log(entry: object, service: object) -> None:
        text = str(getattr(entry, "message", entry))
        if str(getattr(entry, "level", "")).upper() in ("WARNING", "ERROR", "CRITICAL"):
            errors.append(text)  # warnings and errors explain a failure

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return f"not a notification URL apprise understands: {redact(url)}"
    types = {
        "failure": apprise.NotifyType.FAILURE,
        "warning": apprise.NotifyType.WARNING,
        "success": apprise.NotifyType.SUCCESS,
    }
    try:
        ok = notifier.notify(
            body=body,
            title=title,
            notify_type=types.get(severity, apprise.NotifyType.INFO),
            body_format=apprise.NotifyFormat.TEXT,
            timeout=timeout_s,
            log_callback=log,
        )
    except Exception as exc:  # a sender's own failure is this destination's failure
        return f"{type(exc).__name__}: {exc}"
    if ok:
        return None
    return errors[-1] if errors else "the destination did not accept the notification"
