"""Inventory transforms (pure) and the Lambda paging / optional-call paths moto lacks.

moto never pages list_functions and has no GetAccountSettings, provisioned concurrency
or function URL listings (404), so those are served by ``botocore.stub.Stubber`` with
shapes from the Lambda API reference.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.stub import ANY, Stubber
from sqlite_utils import Database

from collectors.aws import SourceResult, Store, Target
from collectors.inventory import get_inventory, load_inventory, transform_function

AWS_CONFIG: dict[str, Any] = {
    "FunctionName": "orders",
    "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders",
    "Runtime": "java21",
    "Role": "arn:aws:iam::123456789012:role/orders",
    "Handler": "Handler::handle",
    "CodeSize": 5_242_880,
    "Timeout": 30,
    "MemorySize": 1024,
    "LastModified": "2019-08-14T22:26:11.234+0000",
    "Version": "$LATEST",
    "PackageType": "Zip",
    "Architectures": ["arm64"],
    "EphemeralStorage": {"Size": 1024},
    "SnapStart": {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"},
    "Layers": [{"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:otel:3", "CodeSize": 10}],
    "LoggingConfig": {"LogFormat": "JSON", "LogGroup": "/custom/orders"},
    "State": "Active",
}


def test_transform_function_reads_every_configuration_field() -> None:
    row = transform_function(AWS_CONFIG)
    assert row["last_modified"] == int(datetime(2019, 8, 14, 22, 26, 11, tzinfo=UTC).timestamp())
    assert (row["architecture"], row["memory_mb"], row["ephemeral_storage_mb"]) == (
        "arm64",
        1024,
        1024,
    )
    assert (row["snap_start"], row["log_group"], row["log_format"]) == (
        "PublishedVersions",
        "/custom/orders",
        "JSON",
    )
    assert json.loads(row["layers_json"]) == ["arn:aws:lambda:us-east-1:123456789012:layer:otel:3"]
    assert transform_function({"FunctionName": "x"})["log_group"] == "/aws/lambda/x"


def test_transform_function_records_lambda_managed_instances() -> None:
    # the FunctionConfiguration shape of the Lambda API reference (moto drops this field)
    provider = "arn:aws:lambda:us-east-1:123456789012:capacity-provider:fleet-a"
    managed = {
        **AWS_CONFIG,
        "CapacityProviderConfig": {
            "LambdaManagedInstancesCapacityProviderConfig": {
                "CapacityProviderArn": provider,
                "PerExecutionEnvironmentMaxConcurrency": 16,
                "ExecutionEnvironmentMemoryGiBPerVCpu": 4.0,
            }
        },
    }
    row = transform_function(managed)
    assert (
        row["capacity_provider_arn"],
        row["memory_gib_per_vcpu"],
        row["max_concurrency_per_environment"],
    ) == (provider, 4.0, 16)
    on_demand = transform_function(AWS_CONFIG)
    assert on_demand["capacity_provider_arn"] is None and on_demand["memory_gib_per_vcpu"] is None


def config(name: str) -> dict[str, Any]:
    return {
        **AWS_CONFIG,
        "FunctionName": name,
        "FunctionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
    }


def test_marker_paging_and_optional_calls(db: Database) -> None:
    client = boto3.client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )
    stubber = Stubber(client)
    stubber.add_response(
        "list_functions",
        {"Functions": [config("a"), config("b")], "NextMarker": "page-2"},
        {"FunctionVersion": "ALL"},
    )
    stubber.add_response(
        "list_functions",
        {"Functions": [config("c")]},
        {"FunctionVersion": "ALL", "Marker": "page-2"},
    )
    for name in "abc":
        stubber.add_response("list_tags", {"Tags": {"app": name}}, {"Resource": ANY})
        stubber.add_response("get_function_concurrency", {}, {"FunctionName": name})
        stubber.add_response("list_aliases", {"Aliases": []}, {"FunctionName": name})
        stubber.add_response(
            "list_provisioned_concurrency_configs",
            {
                "ProvisionedConcurrencyConfigs": [
                    {
                        "FunctionArn": f"{config(name)['FunctionArn']}:live",
                        "AllocatedProvisionedConcurrentExecutions": 3,
                    }
                ]
            }
            if name == "a"
            else {"ProvisionedConcurrencyConfigs": []},
            {"FunctionName": name},
        )
        stubber.add_response(
            "list_function_url_configs",
            {
                "FunctionUrlConfigs": [
                    {
                        "FunctionUrl": "https://abc.lambda-url.us-east-1.on.aws/",
                        "FunctionArn": config(name)["FunctionArn"],
                        "AuthType": "AWS_IAM",
                        "CreationTime": "2024-01-01T00:00:00.000+0000",
                        "LastModifiedTime": "2024-01-01T00:00:00.000+0000",
                    }
                ]
            }
            if name == "b"
            else {"FunctionUrlConfigs": []},
            {"FunctionName": name},
        )
    stubber.add_response("list_event_source_mappings", {"EventSourceMappings": []}, {})
    stubber.add_response(
        "get_account_settings",
        {
            "AccountLimit": {
                "TotalCodeSize": 80_530_636_800,
                "ConcurrentExecutions": 1000,
                "UnreservedConcurrentExecutions": 900,
            },
            "AccountUsage": {"TotalCodeSize": 15_728_640, "FunctionCount": 3},
        },
        {},
    )
    result = SourceResult("123456789012", "us-east-1", "inventory")
    with stubber:
        inventory = get_inventory(client, result)
    stubber.assert_no_pending_responses()
    assert result.errors == []
    target = Target(boto3.Session(), "123456789012", "us-east-1")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert load_inventory(Store(db), target, inventory, now) == 3
    functions = db.conn.execute(
        "SELECT function_name, provisioned_concurrency, tags_json FROM functions ORDER BY 1"
    ).fetchall()
    assert functions == [
        ("a", 3, '{"app": "a"}'),
        ("b", 0, '{"app": "b"}'),
        ("c", 0, '{"app": "c"}'),
    ]
    assert db.conn.execute("SELECT qualifier, url, auth_type FROM function_urls").fetchall() == [
        ("", "https://abc.lambda-url.us-east-1.on.aws/", "AWS_IAM")
    ]
    assert db.conn.execute(
        "SELECT code_storage_bytes, concurrent_executions_limit, function_count"
        " FROM account_settings"
    ).fetchall() == [(15_728_640, 1000, 3)]


def test_operation_not_offered_is_reported_but_denied_is_a_failure() -> None:
    """UnknownOperationException (an API the region does not have) fails nothing and is
    asked once; AccessDeniedException is a failure naming the IAM action. Error shapes as
    the Lambda API reference documents them; botocore's Stubber serves them."""
    client = boto3.client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )
    stubber = Stubber(client)
    stubber.add_response(
        "list_functions", {"Functions": [config("a"), config("b")]}, {"FunctionVersion": "ALL"}
    )
    for name in "ab":
        stubber.add_response("list_tags", {"Tags": {}}, {"Resource": ANY})
        stubber.add_response("get_function_concurrency", {}, {"FunctionName": name})
        stubber.add_response("list_aliases", {"Aliases": []}, {"FunctionName": name})
        stubber.add_response(
            "list_provisioned_concurrency_configs",
            {"ProvisionedConcurrencyConfigs": []},
            {"FunctionName": name},
        )
        if name == "a":  # not offered: never asked again for "b"
            stubber.add_client_error(
                "list_function_url_configs",
                service_error_code="UnknownOperationException",
                service_message="Unknown operation",
                http_status_code=404,
            )
    stubber.add_response("list_event_source_mappings", {"EventSourceMappings": []}, {})
    stubber.add_client_error(
        "get_account_settings",
        service_error_code="AccessDeniedException",
        service_message="not authorized",
        http_status_code=403,
    )
    result = SourceResult("123456789012", "us-east-1", "inventory")
    with stubber:
        inventory = get_inventory(client, result)
    stubber.assert_no_pending_responses()
    assert inventory.listing_complete and len(inventory.functions) == 2
    assert result.status == "partial"
    assert [(e["action"], e["code"]) for e in result.errors] == [
        ("lambda:ListFunctionUrlConfigs", "NotOffered"),
        ("lambda:GetAccountSettings", "AccessDeniedException"),
    ]
    assert [e["action"] for e in result.failures] == ["lambda:GetAccountSettings"]
    assert "missing IAM permission lambda:GetAccountSettings" in result.errors[1]["message"]


def test_not_offered_alone_leaves_the_source_ok() -> None:
    result = SourceResult("123456789012", "us-east-1", "inventory")
    result.not_offered("lambda:GetAccountSettings", "404")
    assert result.status == "ok" and result.failures == []
