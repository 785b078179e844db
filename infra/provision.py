"""Create the hot table, the archive metadata table and the bucket on the emulator, from the
definitions in template.yaml (the deployed stack's own), under the names given."""
import argparse

import boto3
import yaml


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: intrinsic tags (!Ref, !Sub, ...) are kept as plain values."""


CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def table_args(props, name):
    args = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode") if k in props}
    if "GlobalSecondaryIndexes" in props:
        # As the template says them, Projection included: KEYS_ONLY, or INCLUDE with its
        # NonKeyAttributes (the same shape in CloudFormation and CreateTable). moto then keeps
        # only those attributes in the index's entries, as DynamoDB does.
        args["GlobalSecondaryIndexes"] = [
            {k: g[k] for k in ("IndexName", "KeySchema", "Projection")} for g in props["GlobalSecondaryIndexes"]
        ]
    if "StreamSpecification" in props:
        args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    args["TableName"] = name
    return args


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--archive-table", required=True)
    ap.add_argument("--bucket", required=True)
    a = ap.parse_args()
    with open(a.template) as f:
        resources = yaml.load(f, Loader=CfnLoader)["Resources"]
    ddb = boto3.client("dynamodb", endpoint_url=a.endpoint)
    # Paginated: the test suite leaves one table pair per test on a long-running emulator.
    existing = set()
    for page in ddb.get_paginator("list_tables").paginate():
        existing.update(page["TableNames"])
    for logical, name in (("HotTable", a.table), ("ArchiveTable", a.archive_table)):
        props = resources[logical]["Properties"]
        if name not in existing:
            ddb.create_table(**table_args(props, name))
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        print(f"table {name} ready")
    s3 = boto3.client("s3", endpoint_url=a.endpoint)
    if a.bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=a.bucket)
    print(f"bucket {a.bucket} ready")


if __name__ == "__main__":
    main()
