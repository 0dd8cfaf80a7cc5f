"""lambdascope: observability and memory right-sizing for fleets of AWS Lambda functions."""

import sys

__version__ = "0.1.0"


def _sqlite_utils_without_pandas() -> None:
    """Import sqlite-utils without pandas.

    sqlite-utils imports pandas, when it is installed, only to map ``pandas.Timestamp``
    to a column type when it creates tables from rows; lambdascope creates its tables
    with SQL. Without this, every command (and every ingest reading process) pays about
    0.15 s and 30 MB for it. pandas stays importable: the dashboard imports it itself.
    """
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # makes "import pandas" fail
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]


_sqlite_utils_without_pandas()
