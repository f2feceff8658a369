"""The DynamoDB gateway: the few calls the DynamoDB ledger and its lease need.

Only `controller.aws` imports boto3, so the ledger (`controller.state.dynamodb`)
speaks to its table through this narrow door, in plain Python values rather
than DynamoDB's typed JSON. Items hold strings, integers and booleans only
(the ledger serialises records as JSON strings itself), which keeps the
conversion exact: no floats, no Decimals, no sets.

What the ledger relies on, and why it is here:

* **Conditional writes answer True/False.** A failed condition is the
  expected outcome of losing a race (a stale run version, a lease someone
  else renewed), not an error, so `put_item` and `delete_item` return False
  for `ConditionalCheckFailedException` and raise our error kinds for
  everything else (`controller.aws.errors`).
* **Reads are strongly consistent** (`ConsistentRead`), except on a global
  secondary index, which DynamoDB only reads eventually consistently.
* **Queries are paginated here**, one page (at most 1 MB) at a time, so a
  caller can stop early (the newest N events) or read everything (a view).
* **`create_table_if_missing`** creates the table on first use
  (PAY_PER_REQUEST) and waits until it is ACTIVE; a table created by someone
  else meanwhile is fine. Every call goes through `AwsSession`, so it is counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from controller.aws.errors import (
    AwsTerminalError,
    AwsTransientError,
    call,
    classify,
    classify_botocore,
    error_code,
)
from controller.aws.session import AwsSession

#: What an item attribute may hold here (None: the attribute is left out).
ItemValue = str | int | bool
Item = dict[str, ItemValue]

_CONDITION_FAILED = "ConditionalCheckFailedException"
#: How long `create_table_if_missing` waits for ACTIVE: 2 s x 60.
_WAITER_CONFIG: WaiterConfigTypeDef = {"Delay": 2, "MaxAttempts": 60}

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WaiterConfigTypeDef


@dataclass(frozen=True)
class Condition:
    """A ConditionExpression with its placeholders' names and values."""

    expression: str
    names: Mapping[str, str]
    values: Mapping[str, ItemValue]


@dataclass(frozen=True)
class SecondaryIndex:
    """A global secondary index (hash and range keys are strings, all attributes projected)."""

    name: str
    hash_key: str
    range_key: str


def _to_attr(value: ItemValue) -> dict[str, Any]:
    """Encode one value as DynamoDB's typed JSON."""
    if isinstance(value, bool):  # before int: bool is an int
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": value}


def _from_attr(attr: Mapping[str, Any]) -> ItemValue:
    """Decode one typed value written by `_to_attr`; anything else is a TerminalError."""
    if "S" in attr:
        return str(attr["S"])
    if "N" in attr:
        number = Decimal(attr["N"])
        if number == number.to_integral_value():
            return int(number)
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    raise ValueError(f"unexpected DynamoDB attribute value {attr!r} (the ledger writes S, N, BOOL)")


def _to_item(item: Mapping[str, ItemValue]) -> dict[str, Any]:
    """Encode an item."""
    return {name: _to_attr(value) for name, value in item.items()}


def _from_item(raw: Mapping[str, Any]) -> Item:
    """Decode an item."""
    return {name: _from_attr(attr) for name, attr in raw.items()}


def _condition_args(condition: Condition | None) -> dict[str, Any]:
    """The request parameters of a condition (none without one)."""
    if condition is None:
        return {}
    args: dict[str, Any] = {"ConditionExpression": condition.expression}
    if condition.names:
        args["ExpressionAttributeNames"] = dict(condition.names)
    if condition.values:
        args["ExpressionAttributeValues"] = _to_item(condition.values)
    return args


class DynamoDbGateway:
    """Typed, counted DynamoDB calls on one table's items."""

    def __init__(self, session: AwsSession) -> None:
        self._session = session

    @property
    def _dynamodb(self) -> DynamoDBClient:
        return self._session.dynamodb()

    def put_item(
        self, table: str, item: Mapping[str, ItemValue], condition: Condition | None = None
    ) -> bool:
        """Write `item` whole; False (nothing written) when `condition` does not hold."""
        request = {"TableName": table, "Item": _to_item(item), **_condition_args(condition)}
        return self._conditional("PutItem", lambda: self._dynamodb.put_item(**request))

    def delete_item(
        self, table: str, key: Mapping[str, str], condition: Condition | None = None
    ) -> bool:
        """Delete one item (absent is fine); False when `condition` does not hold."""
        request = {"TableName": table, "Key": _to_item(key), **_condition_args(condition)}
        return self._conditional("DeleteItem", lambda: self._dynamodb.delete_item(**request))

    def get_item(self, table: str, key: Mapping[str, str]) -> Item | None:
        """One item by its primary key, read strongly consistently; None if absent."""
        answer = call(
            "GetItem",
            lambda: self._dynamodb.get_item(
                TableName=table, Key=_to_item(key), ConsistentRead=True
            ),
        )
        raw = answer.get("Item")
        return None if raw is None else _from_item(raw)

    def query_pages(
        self,
        table: str,
        key_name: str,
        key_value: str,
        *,
        index: str | None = None,
        newest_first: bool = False,
        page_size: int | None = None,
    ) -> Iterator[list[Item]]:
        """The items of one partition, a page at a time, in sort-key order (or reversed).

        Reads of the table are strongly consistent; reads of an index cannot be.
        """
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": key_name},
            "ExpressionAttributeValues": {":k": {"S": key_value}},
            "ScanIndexForward": not newest_first,
        }
        if index is None:
            request["ConsistentRead"] = True
        else:
            request["IndexName"] = index
        if page_size is not None:
            request["Limit"] = page_size
        while True:
            answer = call("Query", lambda: self._dynamodb.query(**request))
            yield [_from_item(raw) for raw in answer.get("Items", [])]
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def table_exists(self, table: str) -> bool:
        """True when `table` exists (one DescribeTable; creates nothing)."""
        return self._describe(table) is not None

    def create_table_if_missing(
        self,
        table: str,
        hash_key: str,
        range_key: str,
        indexes: Sequence[SecondaryIndex] = (),
    ) -> bool:
        """Create the table (PAY_PER_REQUEST) unless it exists, and wait until ACTIVE.

        Returns True if this call created it. An existing table lacking one of
        `indexes` is a TerminalError naming it: the ledger cannot work without it.
        """
        described = self._describe(table)
        created = False
        if described is None:
            created = self._create(table, hash_key, range_key, indexes)
        if described is None or described.get("TableStatus") != "ACTIVE":
            self._wait_until_active(table)
            described = self._describe(table) or {}
        present = {gsi["IndexName"] for gsi in described.get("GlobalSecondaryIndexes", [])}
        missing = [i.name for i in indexes if i.name not in present]
        if missing:
            raise AwsTerminalError(
                "MissingIndex",
                f"table {table} has no global secondary index {', '.join(missing)}"
                " (see README.md, the DynamoDB ledger)",
                "DescribeTable",
            )
        return created

    # -- inside -------------------------------------------------------------------

    def _conditional(self, operation: str, send: Any) -> bool:
        """Send a conditional write; False when its condition failed."""
        try:
            send()
        except ClientError as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return False
            raise classify(exc, operation) from exc
        except BotoCoreError as exc:
            raise classify_botocore(exc, operation) from exc
        return True

    def _describe(self, table: str) -> dict[str, Any] | None:
        """DescribeTable's `Table`, or None when there is no such table."""
        try:
            answer = self._dynamodb.describe_table(TableName=table)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise classify(exc, "DescribeTable") from exc
        except BotoCoreError as exc:
            raise classify_botocore(exc, "DescribeTable") from exc
        return dict(answer["Table"])

    def _create(
        self, table: str, hash_key: str, range_key: str, indexes: Sequence[SecondaryIndex]
    ) -> bool:
        """CreateTable; False if another process created it first."""
        names = {hash_key, range_key} | {k for i in indexes for k in (i.hash_key, i.range_key)}
        request: dict[str, Any] = {
            "TableName": table,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": "S"} for name in sorted(names)
            ],
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": range_key, "KeyType": "RANGE"},
            ],
        }
        if indexes:
            request["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.hash_key, "KeyType": "HASH"},
                        {"AttributeName": index.range_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in indexes
            ]
        try:
            self._dynamodb.create_table(**request)
        except ClientError as exc:
            if error_code(exc) == "ResourceInUseException":
                return False  # a replica started at the same time won the race
            raise classify(exc, "CreateTable") from exc
        except BotoCoreError as exc:
            raise classify_botocore(exc, "CreateTable") from exc
        return True

    def _wait_until_active(self, table: str) -> None:
        """Poll DescribeTable until the table is ACTIVE (a TransientError if it never is)."""
        waiter = self._dynamodb.get_waiter("table_exists")
        try:
            waiter.wait(TableName=table, WaiterConfig=_WAITER_CONFIG)
        except WaiterError as exc:
            raise AwsTransientError(
                "WaiterError", f"table {table} did not become ACTIVE: {exc}", "DescribeTable"
            ) from exc
