"""Connection settings checked at start: `transmute check`, `transmute api` and `transmute worker` stop with one
line per problem (naming the setting, what was found, what to do) and no traceback.

Real servers: this machine's RabbitMQ and PostgreSQL (a vhost and a database that do not exist provoke the
errors) and a moto S3 server (plain HTTP, so TRANSMUTE_S3_SECURE=true meets the wrong protocol).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from tests.support.cluster import cluster_env
from tests.support.net import free_port
from tests.support.servers import TRANSMUTE

MISSING = f"transmute_missing_{uuid.uuid4().hex[:8]}"
"""A name no vhost, database or bucket has."""


def run(command: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([str(TRANSMUTE), *command], env=env, capture_output=True, text=True, timeout=timeout)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("transmute: error: ")]


def env_of(tmp_path: Path, rabbitmq_vhost: str, database: str, s3_server: str, bucket: str,
           **settings: str) -> dict[str, str]:
    return {**cluster_env(tmp_path, database, rabbitmq_vhost, s3_server, bucket), **settings}


def make_bucket(s3_server: str) -> str:
    from minio import Minio

    bucket = f"transmute-{uuid.uuid4().hex[:10]}"
    Minio(s3_server, access_key="testing", secret_key="testing", secure=False).make_bucket(bucket)
    return bucket


def test_check_names_a_missing_vhost_a_missing_database_and_an_s3_endpoint_without_tls_one_line_each(
        tmp_path, rabbitmq_vhost, database, s3_server):
    env = env_of(tmp_path, rabbitmq_vhost.rsplit("/", 1)[0] + f"/{MISSING}", database.rsplit("/", 1)[0] +
                 f"/{MISSING}", s3_server, make_bucket(s3_server), TRANSMUTE_S3_SECURE="true")
    result = run(["check"], env)
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 3, result.stderr
    broker, db, storage = lines
    assert broker.startswith("transmute: error: TRANSMUTE_BROKER_URL") and f"{MISSING!r} does not exist" in broker
    assert "rabbitmqctl add_vhost" in broker
    assert db.startswith("transmute: error: TRANSMUTE_DATABASE_URL") and f"{MISSING!r} does not exist" in db
    assert "createdb" in db
    assert storage.startswith("transmute: error: TRANSMUTE_S3_ENDPOINT") and "answered plain HTTP" in storage
    assert "set TRANSMUTE_S3_SECURE=false or use https" in storage


def test_check_completes_a_postgresql_url_without_a_driver_and_passes_when_everything_answers(
        tmp_path, rabbitmq_vhost, database, s3_server):
    env = env_of(tmp_path, rabbitmq_vhost, database.replace("postgresql+asyncpg://", "postgresql://"), s3_server,
                 make_bucket(s3_server))
    result = run(["check"], env)
    assert result.returncode == 0, result.stderr
    assert "answer" in result.stdout and result.stderr == ""


def test_check_names_a_database_driver_transmute_does_not_speak(tmp_path, rabbitmq_vhost, database, s3_server):
    env = env_of(tmp_path, rabbitmq_vhost, database.replace("+asyncpg", "+psycopg"), s3_server,
                 make_bucket(s3_server))
    result = run(["check"], env)
    assert result.returncode == 1
    assert error_lines(result) == [
        "transmute: error: TRANSMUTE_DATABASE_URL names the driver 'psycopg'; transmute speaks to PostgreSQL "
        "through asyncpg: use postgresql+asyncpg:// (or postgresql://)."]


def test_a_worker_does_not_start_on_a_missing_bucket_unless_told_to_create_it(
        tmp_path, rabbitmq_vhost, database, s3_server):
    env = env_of(tmp_path, rabbitmq_vhost, database, s3_server, MISSING.replace("_", "-"))
    result = run(["worker"], env)
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("transmute: error: TRANSMUTE_S3_BUCKET"), result.stderr
    assert "does not exist" in lines[0] and "TRANSMUTE_S3_CREATE_BUCKET=true" in lines[0]

    created = run(["check", "--worker"], {**env, "TRANSMUTE_S3_CREATE_BUCKET": "true"})
    assert created.returncode == 0, created.stderr


def test_the_gateway_does_not_start_on_a_vhost_that_does_not_exist(tmp_path, rabbitmq_vhost, database, s3_server):
    env = env_of(tmp_path, rabbitmq_vhost.rsplit("/", 1)[0] + f"/{MISSING}", database, s3_server,
                 make_bucket(s3_server))
    result = run(["api", "--port", "1"], env)
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("transmute: error: TRANSMUTE_BROKER_URL"), result.stderr
    assert "does not exist" in lines[0]


def test_check_names_a_redis_url_that_is_no_url_and_only_warns_when_redis_does_not_answer(
        tmp_path, rabbitmq_vhost, database, s3_server):
    bucket = make_bucket(s3_server)
    malformed = env_of(tmp_path, rabbitmq_vhost, database, s3_server, bucket, TRANSMUTE_REDIS_URL="127.0.0.1:6379")
    result = run(["check"], malformed)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert line.startswith("transmute: error: TRANSMUTE_REDIS_URL must be a redis://") and "unset it" in line

    # Redis is optional: one that does not answer is named, and the start goes on without it.
    away = env_of(tmp_path, rabbitmq_vhost, database, s3_server, bucket,
                  TRANSMUTE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    result = run(["check"], away)
    assert result.returncode == 0, result.stderr
    assert error_lines(result) == []
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("transmute: warning: ")]
    assert "TRANSMUTE_REDIS_URL" in warning and "per process" in warning

    answering = env_of(tmp_path, rabbitmq_vhost, database, s3_server, bucket,
                       TRANSMUTE_REDIS_URL="redis://127.0.0.1:6379/0")
    result = run(["check"], answering)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_check_names_the_s3_key_that_is_missing_when_only_one_of_the_two_is_set(
        tmp_path, rabbitmq_vhost, database, s3_server):
    env = env_of(tmp_path, rabbitmq_vhost, database, s3_server, make_bucket(s3_server), TRANSMUTE_S3_SECRET_KEY="")
    result = run(["check", "--worker"], env)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert line.startswith("transmute: error: TRANSMUTE_S3_SECRET_KEY is not set"), line
    assert "TRANSMUTE_S3_ACCESS_KEY" in line and "TRANSMUTE_S3_ENDPOINT" not in line


def test_check_quotes_a_broker_url_without_a_scheme_as_it_was_given(tmp_path, rabbitmq_vhost, database, s3_server):
    env = env_of(tmp_path, "127.0.0.1:5672", database, s3_server, make_bucket(s3_server))
    result = run(["check", "--worker"], env)
    assert result.returncode == 1
    assert error_lines(result) == [
        "transmute: error: TRANSMUTE_BROKER_URL must be an amqp:// or amqps:// URL; got '127.0.0.1:5672'."]


WITHOUT_DISTRIBUTED_CLIENTS = """
import sys
for name in ("pika", "asyncpg", "minio"):
    sys.modules[name] = None  # importing it fails, as in an install without the distributed extra
from transmute.cli import main
main(["check"])
"""


def test_check_without_the_distributed_clients_says_how_to_install_them_one_line_per_setting(
        tmp_path, rabbitmq_vhost, database, s3_server):
    env = env_of(tmp_path, rabbitmq_vhost, database, s3_server, make_bucket(s3_server))
    result = subprocess.run([sys.executable, "-c", WITHOUT_DISTRIBUTED_CLIENTS], env=env, capture_output=True,
                            text=True, timeout=90)
    assert result.returncode == 1
    lines = error_lines(result)
    assert [line.split(":")[2].strip() for line in lines] == [
        "TRANSMUTE_BROKER_URL", "TRANSMUTE_DATABASE_URL", "TRANSMUTE_S3_ENDPOINT"], result.stderr
    for line, client in zip(lines, ("pika", "asyncpg", "minio"), strict=True):
        assert client in line and "./scripts/setup.sh --distributed" in line and "transmute[distributed]" in line


def test_an_https_endpoint_is_reached_over_tls_even_with_s3_secure_false(tmp_path, rabbitmq_vhost, database, s3_server):
    # The scheme the operator wrote wins, as an http:// endpoint turns TLS off: keys are never sent in clear to a
    # URL written as https://. The moto server speaks plain HTTP, so the check names that.
    env = env_of(tmp_path, rabbitmq_vhost, database, s3_server, make_bucket(s3_server),
                 TRANSMUTE_S3_ENDPOINT=f"https://{s3_server}", TRANSMUTE_S3_SECURE="false")
    result = run(["check", "--worker"], env)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert line.startswith(f"transmute: error: TRANSMUTE_S3_ENDPOINT (https://{s3_server}) answered plain HTTP")
    assert f"write it as http://{s3_server}" in line
