"""Data flows end to end on real workers: CSV → ION → Parquet → S3 and PostgreSQL → CSV → S3 (a local S3
server, a PostgreSQL database of the tests' own), read back from the bucket; credentials come from secret(). Runs in both suites: in-process workers locally, worker processes on
Redis and PostgreSQL under `make test-services`."""
from __future__ import annotations

import io
import textwrap
import uuid
from typing import Iterator

import pytest

from flows_app.services import create_execution, deploy_flow, wait_for
from tests.plugins.test_s3 import boto, s3_server


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


FLOW = """\
id: sales_to_s3
namespace: {ns}
inputs:
  - id: bucket
    type: STRING
tasks:
  - id: csv
    type: io.kestra.plugin.core.storage.Write
    extension: .csv
    content: |
      id,product,price,sold_on
      1,Widget,12.50,2024-01-31
      2,"Gadget, large",99.00,2024-02-01
  - id: ion
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{{{ outputs.csv.uri }}}}"
  - id: parquet
    type: io.kestra.plugin.serdes.parquet.IonToParquet
    from: "{{{{ outputs.ion.uri }}}}"
    schema: |
      {{"type": "record", "name": "Sale", "fields": [
        {{"name": "id", "type": "long"}},
        {{"name": "product", "type": "string"}},
        {{"name": "price", "type": {{"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}}}},
        {{"name": "sold_on", "type": {{"type": "int", "logicalType": "date"}}}}
      ]}}
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
    endpointOverride: {endpoint}
    region: us-east-1
    accessKeyId: "{{{{ secret('S3_ACCESS_KEY') }}}}"
    secretKeyId: "{{{{ secret('S3_SECRET_KEY') }}}}"
    bucket: "{{{{ inputs.bucket }}}}"
    from: "{{{{ outputs.parquet.uri }}}}"
    key: "sales/{{{{ execution.id }}}}.parquet"
  - id: list
    type: io.kestra.plugin.aws.s3.List
    endpointOverride: {endpoint}
    region: us-east-1
    accessKeyId: "{{{{ secret('S3_ACCESS_KEY') }}}}"
    secretKeyId: "{{{{ secret('S3_SECRET_KEY') }}}}"
    bucket: "{{{{ inputs.bucket }}}}"
    prefix: sales/
"""


def test_csv_to_parquet_to_s3(runtime, transactional_db, endpoint: str) -> None:
    import pyarrow.parquet as pq

    from secrets_app.store import set_secret

    ns = f"company.s3{uuid.uuid4().hex[:8]}"
    bucket = "sales-" + uuid.uuid4().hex[:8]
    boto(endpoint).create_bucket(Bucket=bucket)
    set_secret(ns, "S3_ACCESS_KEY", "test")
    set_secret(ns, "S3_SECRET_KEY", "test")
    deploy_flow(textwrap.dedent(FLOW.format(ns=ns, endpoint=endpoint)))
    execution = wait_for(create_execution(ns, "sales_to_s3", {"bucket": bucket}).id, timeout=120)
    assert execution.state.current == "SUCCESS", [(r.task_id, r.state.current) for r in execution.task_runs]
    outputs = {run.task_id: run.outputs for run in execution.task_runs}
    key = f"sales/{execution.id}.parquet"
    assert outputs["upload"]["key"] == key
    assert [o["key"] for o in outputs["list"]["objects"]] == [key]
    body = boto(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    rows = pq.read_table(io.BytesIO(body)).to_pylist()
    assert [(r["id"], r["product"], str(r["price"]), r["sold_on"].isoformat()) for r in rows] == [
        (1, "Widget", "12.50", "2024-01-31"), (2, "Gadget, large", "99.00", "2024-02-01")]


SQL_FLOW = """\
id: sql_to_s3
namespace: {ns}
tasks:
  - id: query
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: jdbc:postgresql://127.0.0.1:5432/{db}
    username: "{{{{ secret('PG_USER') }}}}"
    sql: SELECT id, product, price, sold_on FROM {table} ORDER BY id
    fetchType: STORE
  - id: csv
    type: io.kestra.plugin.serdes.csv.IonToCsv
    from: "{{{{ outputs.query.uri }}}}"
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
    endpointOverride: {endpoint}
    region: us-east-1
    accessKeyId: "{{{{ secret('S3_ACCESS_KEY') }}}}"
    secretKeyId: "{{{{ secret('S3_SECRET_KEY') }}}}"
    bucket: {bucket}
    from: "{{{{ outputs.csv.uri }}}}"
    key: exports/sales.csv
"""


def test_sql_to_csv_to_s3(runtime, transactional_db, endpoint: str) -> None:
    import psycopg

    from secrets_app.store import set_secret

    db = "celestra_plugins_b_data"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
            admin.execute(f"CREATE DATABASE {db}")
    table = "sales_" + uuid.uuid4().hex[:8]
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={db}", autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int, product text, price numeric(10, 2), sold_on date)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 'Widget', 12.50, '2024-01-31'), "
                     f"(2, 'Gadget, large', 99.00, '2024-02-01')")
    try:
        ns = f"company.sql{uuid.uuid4().hex[:8]}"
        bucket = "exports-" + uuid.uuid4().hex[:8]
        boto(endpoint).create_bucket(Bucket=bucket)
        for key, value in (("PG_USER", "postgres"), ("S3_ACCESS_KEY", "test"), ("S3_SECRET_KEY", "test")):
            set_secret(ns, key, value)
        deploy_flow(SQL_FLOW.format(ns=ns, db=db, table=table, endpoint=endpoint, bucket=bucket))
        execution = wait_for(create_execution(ns, "sql_to_s3", {}).id, timeout=120)
        assert execution.state.current == "SUCCESS", [(r.task_id, r.state.current) for r in execution.task_runs]
        body = boto(endpoint).get_object(Bucket=bucket, Key="exports/sales.csv")["Body"].read().decode()
        assert body == 'id,product,price,sold_on\n1,Widget,12.50,2024-01-31\n2,"Gadget, large",99.00,2024-02-01\n'
    finally:
        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={db}", autocommit=True) as conn:
            conn.execute(f"DROP TABLE {table}")
