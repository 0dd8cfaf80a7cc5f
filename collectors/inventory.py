"""Lambda inventory: functions, versions, aliases, concurrency, tags, ESMs, URLs, settings.

get_* pages the Lambda API; transform_* turns API shapes into store rows (pure); load_*
upserts them in one transaction. A function is marked deleted only after a listing of its
account/region that completed without error; it is un-deleted when it reappears. Likewise
only a call that completed replaces what is stored: a throttled or denied ListAliases,
GetFunctionConcurrency, ListTags, ... leaves the stored rows as they were (the part is
recorded as partial).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from collectors.common import (
    CallCounter,
    SourceResult,
    Store,
    Target,
    iam_action,
    is_not_offered,
    record_failure,
)
from lambdascope.db import function_id
from lambdascope.timeutil import parse_timestamp, to_epoch

LATEST = "$LATEST"


@dataclass
class FunctionDetails:
    """Per-function extras fetched with one call each; None = not known (the call failed
    or was not made), so what is stored stays."""

    tags: dict[str, str] | None = None
    reserved_concurrency: int | None = None  # None and known: nothing reserved
    reserved_concurrency_known: bool = False
    provisioned_concurrency: int | None = None
    aliases: list[dict[str, Any]] | None = None
    urls: list[dict[str, Any]] | None = None


@dataclass
class Inventory:
    """What one account/region listing returned."""

    functions: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    details: dict[str, FunctionDetails] = field(default_factory=dict)
    event_source_mappings: list[dict[str, Any]] | None = None  # None: the listing failed
    account_settings: dict[str, Any] | None = None
    listing_complete: bool = False


def epoch_of(text: str | None) -> int | None:
    """AWS ``2019-08-14T22:26:11.234+0000`` or moto's 9-digit fractions -> epoch seconds."""
    if not text:
        return None
    try:
        return to_epoch(parse_timestamp(text))
    except ValueError:
        return None


def transform_function(config: dict[str, Any]) -> dict[str, Any]:
    """A ListFunctions FunctionConfiguration -> functions table columns (pure)."""
    architectures = config.get("Architectures") or ["x86_64"]
    snap_start = (config.get("SnapStart") or {}).get("ApplyOn")
    layers = [layer.get("Arn") for layer in config.get("Layers") or []]
    logging = config.get("LoggingConfig") or {}
    name = config["FunctionName"]
    # Lambda Managed Instances: runs on a capacity provider's EC2 instances
    managed = (config.get("CapacityProviderConfig") or {}).get(
        "LambdaManagedInstancesCapacityProviderConfig"
    ) or {}
    return {
        "function_arn": config.get("FunctionArn"),
        "runtime": config.get("Runtime"),
        "architecture": architectures[0],
        "memory_mb": config.get("MemorySize"),
        "timeout_s": config.get("Timeout"),
        "ephemeral_storage_mb": (config.get("EphemeralStorage") or {}).get("Size", 512),
        "code_size_bytes": config.get("CodeSize"),
        "package_type": config.get("PackageType", "Zip"),
        "handler": config.get("Handler"),
        "description": config.get("Description") or None,
        "role_arn": config.get("Role"),
        "last_modified": epoch_of(config.get("LastModified")),
        "state": config.get("State"),
        "last_update_status": config.get("LastUpdateStatus"),
        "snap_start": snap_start,
        "layers_json": json.dumps(layers),
        "log_group": logging.get("LogGroup") or f"/aws/lambda/{name}",
        "log_format": logging.get("LogFormat") or "Text",
        "capacity_provider_arn": managed.get("CapacityProviderArn"),
        "memory_gib_per_vcpu": managed.get("ExecutionEnvironmentMemoryGiBPerVCpu"),
        "max_concurrency_per_environment": managed.get("PerExecutionEnvironmentMaxConcurrency"),
    }


def transform_version(config: dict[str, Any]) -> dict[str, Any]:
    """A published version's configuration -> function_versions columns (pure)."""
    return {
        "version": config["Version"],
        "code_size_bytes": config.get("CodeSize"),
        "last_modified": epoch_of(config.get("LastModified")),
        "runtime": config.get("Runtime"),
        "memory_mb": config.get("MemorySize"),
        "description": config.get("Description") or None,
    }


def transform_alias(alias: dict[str, Any]) -> dict[str, Any]:
    """An alias -> function_aliases columns; routing weights as JSON (pure)."""
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    return {
        "alias_name": alias["Name"],
        "function_version": alias["FunctionVersion"],
        "routing_json": json.dumps(weights, sort_keys=True) if weights else None,
        "description": alias.get("Description") or None,
    }


def function_name_of_arn(arn: str) -> str:
    """``arn:aws:lambda:r:a:function:name[:qualifier]`` -> name."""
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 else arn


class _Caller:
    """Calls one optional operation; stops calling it after it is denied or not offered.

    Denied (or any other error) is a recorded failure; an endpoint that does not offer the
    operation at all is recorded as such and fails nothing (see SourceResult.not_offered).
    """

    def __init__(self, client: Any, result: SourceResult) -> None:
        self.client = client
        self.result = result
        self.disabled: set[str] = set()

    def __call__(self, operation: str, method: str, **kwargs: Any) -> Any:
        if operation in self.disabled:
            return None
        try:
            if self.client.can_paginate(method):
                pages = self.client.get_paginator(method).paginate(**kwargs)
                return list(pages)
            return getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "ResourceNotFoundException":
                return None  # deleted between listing and this call
            if is_not_offered(exc):
                self.result.not_offered(iam_action(self.client, operation), code or "404")
            else:
                record_failure(self.result, self.client, operation, exc)
            self.disabled.add(operation)
            return None


def get_inventory(client: Any, result: SourceResult) -> Inventory:
    """Every function, version and extra of one account/region (paginators everywhere)."""
    inventory = Inventory()
    try:
        for page in client.get_paginator("list_functions").paginate(FunctionVersion="ALL"):
            for config in page.get("Functions", []):
                version = config.get("Version", LATEST)
                if version == LATEST:
                    inventory.functions.append(config)
                else:
                    inventory.versions.setdefault(config["FunctionName"], []).append(config)
        inventory.listing_complete = True
    except ClientError as exc:
        record_failure(result, client, "ListFunctions", exc)
        return inventory
    call = _Caller(client, result)
    for config in inventory.functions:
        name, arn = config["FunctionName"], config["FunctionArn"]
        details = FunctionDetails()
        tags = call("ListTags", "list_tags", Resource=arn)
        if tags is not None:
            details.tags = dict(tags.get("Tags", {}))
        concurrency = call("GetFunctionConcurrency", "get_function_concurrency", FunctionName=name)
        if concurrency is not None:
            details.reserved_concurrency = concurrency.get("ReservedConcurrentExecutions")
            details.reserved_concurrency_known = True
        aliases = call("ListAliases", "list_aliases", FunctionName=name)
        if aliases is not None:
            details.aliases = [a for page in aliases for a in page.get("Aliases", [])]
        provisioned = call(
            "ListProvisionedConcurrencyConfigs",
            "list_provisioned_concurrency_configs",
            FunctionName=name,
        )
        if provisioned is not None:
            details.provisioned_concurrency = sum(
                c.get("AllocatedProvisionedConcurrentExecutions", 0)
                for page in provisioned
                for c in page.get("ProvisionedConcurrencyConfigs", [])
            )
        urls = call("ListFunctionUrlConfigs", "list_function_url_configs", FunctionName=name)
        if urls is not None:
            details.urls = [u for page in urls for u in page.get("FunctionUrlConfigs", [])]
        inventory.details[name] = details
    mappings = call("ListEventSourceMappings", "list_event_source_mappings")
    if mappings is not None:
        inventory.event_source_mappings = [
            m for page in mappings for m in page.get("EventSourceMappings", [])
        ]
    inventory.account_settings = call("GetAccountSettings", "get_account_settings")
    return inventory


def _upsert(db: Any, table: str, keys: dict[str, Any], values: dict[str, Any]) -> None:
    columns = {**keys, **values}
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    updates = (
        ", ".join(f"{c} = excluded.{c}" for c in values)
        or f"{next(iter(keys))} = {next(iter(keys))}"
    )
    db.conn.execute(
        f"INSERT INTO {table} ({names}) VALUES ({marks})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
        tuple(columns.values()),
    )


def _replace_aliases(db: Any, fid: int, listed: list[dict[str, Any]]) -> None:
    """A completed ListAliases replaces the function's stored aliases."""
    aliases = [transform_alias(a) for a in listed]
    names = [a["alias_name"] for a in aliases]
    for alias in aliases:
        key = {"function_id": fid, "alias_name": alias.pop("alias_name")}
        _upsert(db, "function_aliases", key, alias)
    marks = ",".join("?" for _ in names) or "''"
    db.conn.execute(
        f"DELETE FROM function_aliases WHERE function_id = ? AND alias_name NOT IN ({marks})",
        (fid, *names),
    )


def _replace_urls(db: Any, fid: int, listed: list[dict[str, Any]]) -> None:
    """A completed ListFunctionUrlConfigs replaces the function's stored URLs."""
    qualifiers = []
    for url in listed:
        arn = url.get("FunctionArn", "")
        qualifier = arn.split(":")[7] if arn.count(":") > 6 else ""
        qualifiers.append(qualifier)
        _upsert(
            db,
            "function_urls",
            {"function_id": fid, "qualifier": qualifier},
            {"url": url["FunctionUrl"], "auth_type": url.get("AuthType")},
        )
    db.conn.execute(
        "DELETE FROM function_urls WHERE function_id = ?"
        " AND qualifier NOT IN (SELECT value FROM json_each(?))",
        (fid, json.dumps(qualifiers)),
    )


def load_inventory(store: Store, target: Target, inventory: Inventory, now: datetime) -> int:
    """Upsert the inventory in one transaction; returns the number of functions stored."""
    now_s = to_epoch(now)
    account, region = target.account_id, target.region
    with store.write() as db:
        ids: dict[str, int] = {}
        for config in inventory.functions:
            name = config["FunctionName"]
            row = transform_function(config)
            fid = function_id(db, name, account, region, seen_at=now_s)
            ids[name] = fid
            details = inventory.details.get(name, FunctionDetails())
            row["inventory_at"] = now_s
            row["deleted_at"] = None
            if details.tags is not None:
                row["tags_json"] = json.dumps(details.tags, sort_keys=True)
            if details.reserved_concurrency_known:
                row["reserved_concurrency"] = details.reserved_concurrency
            if details.provisioned_concurrency is not None:
                row["provisioned_concurrency"] = details.provisioned_concurrency
            sets = ", ".join(f"{c} = ?" for c in row)
            db.conn.execute(f"UPDATE functions SET {sets} WHERE id = ?", (*row.values(), fid))
            seen_versions = []
            for version in inventory.versions.get(name, []):
                vrow = transform_version(version)
                seen_versions.append(vrow["version"])
                vkey = {"function_id": fid, "version": vrow.pop("version")}
                _upsert(db, "function_versions", vkey, {**vrow, "deleted_at": None})
            if inventory.listing_complete:
                marks = ",".join("?" for _ in seen_versions) or "''"
                db.conn.execute(
                    "UPDATE function_versions SET deleted_at = ? WHERE function_id = ?"
                    f" AND deleted_at IS NULL AND version NOT IN ({marks})",
                    (now_s, fid, *seen_versions),
                )
            if details.aliases is not None:
                _replace_aliases(db, fid, details.aliases)
            if details.urls is not None:
                _replace_urls(db, fid, details.urls)
        for mapping in inventory.event_source_mappings or []:
            name = function_name_of_arn(mapping.get("FunctionArn", ""))
            fid = ids.get(name) or function_id(db, name, account, region)
            modified = mapping.get("LastModified")
            _upsert(
                db,
                "event_source_mappings",
                {"uuid": mapping["UUID"]},
                {
                    "function_id": fid,
                    "event_source_arn": mapping.get("EventSourceArn"),
                    "state": mapping.get("State"),
                    "batch_size": mapping.get("BatchSize"),
                    "last_modified": to_epoch(modified)
                    if isinstance(modified, datetime)
                    else epoch_of(modified),
                },
            )
        if inventory.event_source_mappings is not None:
            listed = [m["UUID"] for m in inventory.event_source_mappings]
            marks = ",".join("?" for _ in listed) or "''"
            db.conn.execute(
                "DELETE FROM event_source_mappings WHERE function_id IN (SELECT id FROM"
                " functions WHERE account_id = ? AND region = ?)"
                f" AND uuid NOT IN ({marks})",
                (account, region, *listed),
            )
        settings = inventory.account_settings
        if settings is not None:
            limit = settings.get("AccountLimit", {})
            usage = settings.get("AccountUsage", {})
            _upsert(
                db,
                "account_settings",
                {"account_id": account, "region": region},
                {
                    "code_storage_bytes": usage.get("TotalCodeSize"),
                    "code_storage_limit_bytes": limit.get("TotalCodeSize"),
                    "concurrent_executions_limit": limit.get("ConcurrentExecutions"),
                    "unreserved_concurrent_executions": limit.get("UnreservedConcurrentExecutions"),
                    "function_count": usage.get("FunctionCount"),
                    "updated_at": now_s,
                },
            )
        if inventory.listing_complete:
            listed = list(ids)
            marks = ",".join("?" for _ in listed) or "''"
            db.conn.execute(
                "UPDATE functions SET deleted_at = ? WHERE account_id = ? AND region = ?"
                " AND deleted_at IS NULL AND inventory_at IS NOT NULL"
                f" AND function_name NOT IN ({marks})",
                (now_s, account, region, *listed),
            )
    return len(ids)


def collect(
    store: Store, target: Target, result: SourceResult, counter: CallCounter, *, now: datetime
) -> None:
    """Inventory of one account/region into the store."""
    client = target.client("lambda", counter)
    inventory = get_inventory(client, result)
    if not inventory.listing_complete:
        result.status = "failed"
        result.message = "function listing failed; nothing marked deleted"
        return
    result.items = load_inventory(store, target, inventory, now)
    result.message = f"{result.items} functions"
    if result.failures:
        result.message += "; what could not be listed keeps its stored values"
