"""Checking the connection settings before a distributed process starts: `transmute check`, and the first thing
`transmute api` and `transmute worker` do.

Each check connects once, with a short timeout, and turns what went wrong into one line that names the setting,
what was found and what to do, e.g. "TRANSMUTE_S3_ENDPOINT answered plain HTTP: set TRANSMUTE_S3_SECURE=false or
use https". Never a traceback: an error no check knows still becomes one line naming the setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import click

from transmute.settings import (
    BrokerConfig,
    ConfigError,
    DatabaseConfig,
    LiveConfig,
    SecurityConfig,
    Settings,
    StorageConfig,
)

TIMEOUT = 5.0
"""Seconds each connection may take."""

BROKER_URL = BrokerConfig.env_name("url")
DATABASE_URL = DatabaseConfig.env_name("url")
S3_ENDPOINT = StorageConfig.env_name("s3_endpoint")
S3_SECURE = StorageConfig.env_name("s3_secure")
S3_BUCKET = StorageConfig.env_name("s3_bucket")
S3_CREATE_BUCKET = StorageConfig.env_name("s3_create_bucket")
REDIS_URL = LiveConfig.env_name("redis_url")
S3_KEYS = f"{StorageConfig.env_name('s3_access_key')} and {StorageConfig.env_name('s3_secret_key')}"

Check = Callable[[Settings], str | None]
"""One dependency's check: None when it works, else the one line that says what is wrong and what to do."""


@contextlib.contextmanager
def quiet_clients() -> Iterator[None]:
    """The clients' own log lines (pika's connection errors, urllib3's retries) say nothing the check's line
    does not: keep them out while checking."""
    loggers = [logging.getLogger(name) for name in ("pika", "urllib3", "asyncio")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def where(url: str) -> str:
    """host:port of a URL, without its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}{f':{parts.port}' if parts.port else ''}"


# ------------------------------------------------------------------------------------------------ broker


def check_broker(settings: Settings) -> str | None:
    """Can we log in to RabbitMQ's virtual host?"""
    import pika
    import pika.exceptions

    from transmute.services.broker import amqp_url

    url = settings.broker.url
    if urlsplit(url).scheme not in ("amqp", "amqps"):
        # Only the scheme of a URL (its password stays unsaid); a value that is no URL at all, as it was given.
        got = f"{url.partition('://')[0]}://" if "://" in url else repr(url)
        return f"{BROKER_URL} must be an amqp:// or amqps:// URL; got {got}."
    vhost = unquote(urlsplit(url).path[1:]) or "/"
    try:
        parameters = pika.URLParameters(amqp_url(settings.broker))
    except Exception as exc:
        return f"{BROKER_URL} is not a usable URL ({exc}): use amqp://user:password@host:5672/vhost."
    parameters.connection_attempts, parameters.retry_delay = 1, 0
    parameters.socket_timeout = parameters.blocked_connection_timeout = TIMEOUT
    parameters.stack_timeout = TIMEOUT
    try:
        pika.BlockingConnection(parameters).close()
    except pika.exceptions.ProbableAccessDeniedError as exc:
        if "not found" in str(exc):
            return (f"{BROKER_URL}: the virtual host {vhost!r} does not exist on {where(url)}: create it "
                    f"(rabbitmqctl add_vhost {vhost}; rabbitmqctl set_permissions -p {vhost} USER '.*' '.*' '.*') "
                    "or fix the URL.")
        return (f"{BROKER_URL}: the user may not use the virtual host {vhost!r} on {where(url)}: grant it "
                f"(rabbitmqctl set_permissions -p {vhost} USER '.*' '.*' '.*') or fix the URL.")
    except pika.exceptions.ProbableAuthenticationError:
        return f"{BROKER_URL}: RabbitMQ at {where(url)} refused the user name or password: fix them in the URL."
    except pika.exceptions.AMQPConnectionError as exc:
        return f"{BROKER_URL}: could not connect to {where(url)} ({reason(exc)}): start RabbitMQ or fix the URL."
    except Exception as exc:
        return f"{BROKER_URL}: could not connect to {where(url)} ({reason(exc)}): fix the URL."
    return None


def reason(exc: BaseException) -> str:
    """The words of the error underneath: pika and urllib3 wrap a refused connection two or three levels deep."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        inner = [getattr(seen, "reason", None), getattr(seen, "exception", None), seen.__cause__,
                 seen.args[0] if seen.args else None]
        seen = next((item for item in inner if isinstance(item, BaseException)), None)
    return str(exc) or type(exc).__name__


# ------------------------------------------------------------------------------------------------ database


def check_database(settings: Settings) -> str | None:
    """Can we log in to the task store's database?"""
    from sqlalchemy.engine import make_url

    url = settings.database.url
    try:
        parsed = make_url(url)
    except Exception:
        return f"{DATABASE_URL} is not a database URL: use postgresql+asyncpg://user:password@host:5432/name."
    if parsed.get_backend_name() == "postgresql":
        return _check_postgres(parsed)
    try:
        asyncio.run(_ping(url))
    except Exception as exc:
        return f"{DATABASE_URL}: could not open the database ({reason(exc)}): fix the URL."
    return None


async def _ping(url: str) -> None:
    from transmute.store import open_store

    store = open_store(url, pool_size=1)
    try:
        await asyncio.wait_for(store.ping(), TIMEOUT)
    finally:
        await store.close()


def _check_postgres(url: Any) -> str | None:
    import asyncpg

    driver = url.get_driver_name()
    if driver != "asyncpg":
        return (f"{DATABASE_URL} names the driver {driver!r}; transmute speaks to PostgreSQL through asyncpg: "
                "use postgresql+asyncpg:// (or postgresql://).")
    name, host = url.database or url.username or "", f"{url.host or 'localhost'}:{url.port or 5432}"

    async def connect() -> None:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn, timeout=TIMEOUT)
        await connection.close()

    try:
        asyncio.run(connect())
    except asyncpg.InvalidCatalogNameError:
        return (f"{DATABASE_URL}: the database {name!r} does not exist on {host}: create it "
                f"(createdb -h {url.host or 'localhost'} {name}) or fix the URL.")
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        return f"{DATABASE_URL}: PostgreSQL at {host} refused the login ({exc}): fix the user or password."
    except (OSError, TimeoutError) as exc:
        return f"{DATABASE_URL}: could not connect to {host} ({reason(exc)}): start PostgreSQL or fix the URL."
    except Exception as exc:
        return f"{DATABASE_URL}: could not use the database at {host} ({reason(exc)}): fix the URL."
    return None


# ------------------------------------------------------------------------------------------------ storage


def check_storage(settings: Settings) -> str | None:
    """Does the S3 endpoint answer, in the protocol we speak, to our keys, with our bucket?"""
    import urllib3
    from minio.error import S3Error

    from transmute.storage.s3 import S3Storage

    config = settings.storage
    if not config.s3_endpoint:
        return (f"{S3_ENDPOINT} is not set: distributed mode keeps sources and results in S3 "
                "(set it to host:port of MinIO or any S3 API).")
    endpoint, bucket = config.s3_endpoint, config.s3_bucket
    if bool(config.s3_access_key) != bool(config.s3_secret_key):
        missing, given = ("s3_secret_key", "s3_access_key") if config.s3_access_key else ("s3_access_key",
                                                                                        "s3_secret_key")
        return (f"{StorageConfig.env_name(missing)} is not set while {StorageConfig.env_name(given)} is: "
                "set both (or neither, for a bucket open to anonymous access).")
    try:
        storage = S3Storage(config, create_bucket=False, retries=0)
        exists = storage.client.bucket_exists(bucket)
        if not exists and config.s3_create_bucket:
            storage.ensure_bucket()
            return None
    except ValueError as exc:
        return f"{S3_ENDPOINT} is not host:port ({exc}): e.g. minio.example.com:9000."
    except S3Error as exc:
        if exc.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
            return f"{S3_ENDPOINT} ({endpoint}) refused the keys ({exc.code}): fix {S3_KEYS}."
        return f"{S3_ENDPOINT} ({endpoint}) answered {exc.code}: {exc.message}."
    except urllib3.exceptions.HTTPError as exc:
        if plain_http(exc):
            if endpoint.startswith("https://"):
                return (f"{S3_ENDPOINT} ({endpoint}) answered plain HTTP: write it as "
                        f"http://{endpoint.removeprefix('https://')} or give the server TLS.")
            return f"{S3_ENDPOINT} ({endpoint}) answered plain HTTP: set {S3_SECURE}=false or use https."
        return f"{S3_ENDPOINT}: could not connect to {endpoint} ({reason(exc)}): start the S3 server or fix it."
    except Exception as exc:
        return f"{S3_ENDPOINT}: could not use {endpoint} ({reason(exc)}): fix it."
    if not exists:
        return (f"{S3_BUCKET}: the bucket {bucket!r} does not exist on {endpoint}: create it "
                f"(mc mb ALIAS/{bucket}, aws s3 mb s3://{bucket}) or set {S3_CREATE_BUCKET}=true.")
    return None


def plain_http(exc: BaseException) -> bool:
    """Whether a TLS handshake failed because the server spoke plain HTTP."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(seen):
            return True
        seen = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
    return "WRONG_VERSION_NUMBER" in str(exc)


# ------------------------------------------------------------------------------------------------ redis


def check_redis_url(settings: Settings) -> str | None:
    """Is TRANSMUTE_REDIS_URL a URL the Redis client takes? (A malformed one would stop the gateway with a
    traceback.)"""
    url = settings.live.redis_url
    if url is None:
        return None
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        return (f"{REDIS_URL} must be a redis://, rediss:// or unix:// URL; got {scheme + '://' if scheme else url!r}"
                ": e.g. redis://redis:6379/0 (or unset it to run without Redis).")
    from redis import Redis

    try:
        Redis.from_url(url)
    except ValueError as exc:
        return f"{REDIS_URL} is not a usable URL ({exc}): e.g. redis://redis:6379/0."
    return None


def redis_warning(settings: Settings) -> str | None:
    """Redis is optional (away, it degrades to per-process state, never stops a start): one line when it does not
    answer, so an operator learns that replicas are not sharing their state."""
    url = settings.live.redis_url
    if url is None or check_redis_url(settings) is not None:
        return None
    from redis import Redis

    try:
        with Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT) as client:
            client.ping()
    except Exception as exc:
        return (f"{REDIS_URL}: could not use {where(url)} ({reason(exc)}): starting without it, so the rate limit "
                "and live task state are per process until it answers; start Redis or fix the URL.")
    return None


# ------------------------------------------------------------------------------------------------ all


API_CHECKS: tuple[Check, ...] = (check_broker, check_database, check_storage, check_redis_url)
WORKER_CHECKS: tuple[Check, ...] = (check_broker, check_storage)
"""A worker needs the broker and the object storage, never the database."""

SETTING_OF: dict[Check, str] = {check_broker: BROKER_URL, check_database: DATABASE_URL, check_storage: S3_ENDPOINT}
"""The setting each check is about, to name when the check cannot even run."""


def problems(settings: Settings, checks: tuple[Check, ...]) -> list[str]:
    """What is wrong with the connection settings, one line each (empty when all of them work)."""
    found = []
    with quiet_clients():
        for check in checks:
            try:
                problem = check(settings)
            except ModuleNotFoundError as exc:  # installed without the `distributed` extra
                module = (exc.name or "?").partition(".")[0]
                problem = (f"{SETTING_OF.get(check, check.__name__)}: its client, {module!r}, is not installed: "
                           f"install the distributed clients (./scripts/setup.sh --distributed, or "
                           f"pip install 'transmute[distributed]').")
            except Exception as exc:  # a check's own bug must still be one line
                problem = f"{check.__name__.removeprefix('check_')}: {type(exc).__name__}: {exc}"
            if problem is not None:
                found.append(problem)
    return found


def distributed_settings_or_exit() -> Settings:
    """The settings of distributed mode, or every problem with them on stderr and exit status 1."""
    from transmute.cli.base import fail
    from transmute.settings import distributed_settings

    try:
        return distributed_settings()
    except ConfigError as error:
        fail(error.message)


def check_or_exit(checks: tuple[Check, ...]) -> Settings:
    """Check the connection settings; on a problem write one line for each on stderr and exit 1."""
    from transmute.cli.base import EXIT_FAILED

    settings = distributed_settings_or_exit()
    if check_database in checks:
        # The gateway's other settings first: a bad one (TRANSMUTE_API_KEYS holding no key) is its one line,
        # not hidden behind connection problems it does not depend on.
        SecurityConfig.from_env()
    found = problems(settings, checks)
    for problem in found:
        click.echo(f"transmute: error: {problem}", err=True)
    if check_redis_url in checks and not found:
        with quiet_clients():
            warning = redis_warning(settings)
        if warning:
            click.echo(f"transmute: warning: {warning}", err=True)
    if found:
        raise SystemExit(EXIT_FAILED)
    return settings


@click.command()
@click.option("--worker", "worker_only", is_flag=True,
              help="Check only what `transmute worker` needs (the broker and the object storage).")
def check(worker_only: bool) -> None:
    """Check the connection settings of distributed mode (broker, database, object storage) and exit: 0 when
    every one works, 1 with one line per problem."""
    checks = WORKER_CHECKS if worker_only else API_CHECKS
    settings = check_or_exit(checks)
    names = ["broker", "object storage"] if worker_only else ["broker", "database", "object storage"]
    click.echo(f"transmute: {', '.join(names)} answer (RabbitMQ at {where(settings.broker.url)}, "
               f"bucket {settings.storage.s3_bucket!r} on {settings.storage.s3_endpoint}).")
