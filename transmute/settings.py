"""Configuration: every `TRANSMUTE_*` environment variable, declared once here and read nowhere else.

One pydantic-settings class per concern; a field is one variable (its name is the class's prefix plus the
field's name), with its type, default and one line of meaning (`description`), from which `transmute
settings` and docs/settings.md are made. A value that is empty (or only blanks) counts as unset. A value
transmute cannot use is one `ConfigError` naming the variable. Values given in code (tests, the embedded
mode) are taken as they are: the lower bounds apply to what the environment says.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_core import core_schema
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from transmute.core.errors import TransmuteError
from transmute.core.formats import ConversionLimits
from transmute.core.retention import Retention

PREFIX = "TRANSMUTE_"


class ConfigError(TransmuteError):
    """An environment variable has a value transmute cannot use."""


@dataclass(frozen=True)
class AtLeast:
    """A number from the environment: parsed from text and at least `minimum` (an int field drops the fraction)."""

    minimum: float

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        def parse(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"must be a number; got {value!r}.") from None
            if number < self.minimum:
                raise ValueError(f"must be at least {self.minimum:g}; got {value!r}.")
            return int(number) if source is int else number

        return core_schema.no_info_before_validator_function(parse, handler(source))


def _flag(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false; got {value!r}.")


def _one_of(*choices: str) -> BeforeValidator:
    """Text that must be one of `choices` (any case)."""
    expected = " or ".join(choices) if len(choices) == 2 else f"one of {', '.join(choices)}"

    def check(value: Any) -> Any:
        if isinstance(value, str) and value.lower() not in choices:
            raise ValueError(f"must be {expected}; got {value.lower()!r}.")
        return value.lower() if isinstance(value, str) else value

    return BeforeValidator(check)


Flag = Annotated[bool, BeforeValidator(_flag)]
"""true/false, also 1/0, yes/no, on/off."""


def secret(default: Any, description: str) -> Any:
    """A field whose value `transmute settings` masks (and repr leaves out)."""
    return Field(default, description=description, repr=False, json_schema_extra={"secret": True})


def shown_default(default: Any, shown: str, description: str) -> Any:
    """A field whose default is worked out when read (the docs show `shown` instead of the placeholder)."""
    return Field(default, description=description, json_schema_extra={"shown_default": shown})


class _TrimmedEnv(EnvSettingsSource):
    """The environment, with surrounding blanks removed from values; blank counts as unset where it is empty."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        value, key, is_complex = super().get_field_value(field, field_name)
        if isinstance(value, str):
            value = value.strip()
            if not value and self.env_ignore_empty:
                value = None
        return value, key, is_complex


class Section(BaseSettings):
    """One concern's settings, each field read from `TRANSMUTE_<PREFIX><FIELD>`."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, frozen=True)
    title: ClassVar[str] = ""
    """How docs/settings.md and `transmute settings` head the section."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   **_: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _TrimmedEnv(settings_cls)

    @classmethod
    def env_name(cls, name: str) -> str:
        return f"{cls.model_config['env_prefix']}{name}".upper()

    @classmethod
    def from_env(cls, **given: Any) -> Any:
        """The section from the environment (`given` values win); a bad value is one ConfigError."""
        try:
            return cls(**given)
        except ValidationError as error:
            problem = error.errors()[0]
            name = cls.env_name(str(problem["loc"][0])) if problem["loc"] else cls.__name__
            reason = str(problem.get("ctx", {}).get("error") or problem["msg"])
            raise ConfigError(f"{name} {reason}") from None

    @classmethod
    def set_by_environment(cls) -> set[str]:
        """The fields the environment sets (the rest have their defaults)."""
        return set(_TrimmedEnv(cls)())


class StorageConfig(Section):
    """Where sources and results are kept: a folder, or an S3 bucket when an endpoint is set."""

    title = "Storage"
    data_dir: Path = Field(Path("data"), description="Embedded mode: where the database and files live "
                                                     "(`--data-dir` wins).")
    s3_endpoint: str = Field("", description="MinIO or any S3 API (`host:port`); unset: files under the data "
                                             "folder.")
    s3_access_key: str = Field("", description="The S3 access key.")
    s3_secret_key: str = secret("", "The S3 secret key.")
    s3_bucket: str = Field("transmute", description="The bucket; `transmute api` and `transmute worker` stop at "
                                                     "start when it is missing (unless TRANSMUTE_S3_CREATE_BUCKET).")
    s3_create_bucket: Flag = Field(False, description="Create a missing bucket at start instead of stopping "
                                                      "(development).")
    s3_secure: Flag = Field(True, description="Reach S3 over HTTPS.")
    s3_region: str = Field("", description="The S3 region, for services that need one.")


_ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}


def _with_async_driver(url: str) -> str:
    """A database URL without a driver gets the async one transmute speaks (`postgresql://` -> asyncpg)."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme.lower() in _ASYNC_DRIVERS:
        return f"{_ASYNC_DRIVERS[scheme.lower()]}://{rest}"
    return url


class DatabaseConfig(Section):
    """The task store's SQLAlchemy URL (async driver): SQLite under the data folder unless set."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}DATABASE_")
    title = "Database"
    url: Annotated[str, AfterValidator(_with_async_driver)] = Field(
        "", description="The task store, e.g. `postgresql+asyncpg://user:pass@host/db` (`postgresql://` means "
                        "asyncpg).", repr=False,
        json_schema_extra={"secret": True, "shown_default": "SQLite under the data folder"})
    pool_size: Annotated[int, AtLeast(1)] = Field(
        10, description="PostgreSQL connections a gateway process keeps for writes and listings (status reads "
                        "take up to 4 more, and one listens for deleted tasks).")

    @classmethod
    def from_env(cls, data_dir: Path | None = None, **given: Any) -> DatabaseConfig:
        config = super().from_env(**given)
        if config.url:
            return config
        folder = Path(data_dir or StorageConfig.from_env().data_dir).resolve()
        return super().from_env(url=f"sqlite+aiosqlite:///{folder / 'transmute.db'}", **given)


class BrokerConfig(Section):
    """The message broker: an amqp:// URL for RabbitMQ, or empty for the in-process broker."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}BROKER_")
    title = "Broker"
    url: str = Field("", description="`amqp://user:pass@host:5672/%2F` for RabbitMQ; unset: the in-process broker "
                                     "(embedded mode).", repr=False, json_schema_extra={"secret": True})
    heartbeat: Annotated[int, AtLeast(0)] = Field(
        60, description="AMQP heartbeat in seconds: a dead peer (or a half-open TCP connection) is noticed within "
                        "about twice it.")

    @property
    def in_process(self) -> bool:
        return not self.url or self.url.startswith("memory")


class LimitsConfig(Section):
    """Bounds on what one request or one conversion may use."""

    title = "Limits"
    max_batch: ClassVar[int] = 50
    """Most task ids in one batch download (fixed, not a setting)."""
    max_upload_mb: Annotated[float, AtLeast(0.001)] = Field(500, description="Largest upload; larger is a 413.")
    max_download_mb: Annotated[float, AtLeast(0.001)] = Field(500, description="Largest URL source.")
    conversion_timeout: Annotated[float, AtLeast(1)] = Field(
        1800, description="Seconds one conversion may run before ffmpeg is killed.")
    download_timeout: Annotated[float, AtLeast(1)] = Field(
        300, description="Seconds a URL source may take to download, all told (a wall-clock deadline).")
    max_retries: Annotated[int, AtLeast(0)] = Field(3, description="Attempts a failing conversion gets again.")
    max_crashes: Annotated[int, AtLeast(1)] = Field(
        3, description="Attempts of one task that may end with their worker dying (killed, out of memory) before "
                       "it fails.")
    storage_retry_seconds: Annotated[float, AtLeast(0)] = Field(
        300, description="How long a worker keeps retrying an unreachable object storage (with back-off) before "
                         "giving up.")
    max_source_width: Annotated[int, AtLeast(16)] = Field(8192, description="Widest source accepted, in pixels.")
    max_source_height: Annotated[int, AtLeast(16)] = Field(
        8192, description="Tallest source accepted, in pixels; larger sources fail before ffmpeg decodes a frame.")
    max_source_duration: Annotated[float, AtLeast(1)] = Field(
        4 * 3600, description="Longest source accepted, in seconds (4 h).")
    max_output_frames: Annotated[int, AtLeast(1)] = Field(
        30_000, description="Most frames one conversion may write (span / speed * fps, doubled for boomerang).")
    max_reverse_mb: Annotated[float, AtLeast(1)] = Field(
        1024, description="Memory reverse and boomerang may use: they hold every output frame (width * height * 4 "
                          "bytes each).")
    max_json_kb: Annotated[float, AtLeast(1)] = Field(
        64, description="Largest JSON request body (create with a URL, batch download); larger is a 413.")
    resolve_timeout: Annotated[float, AtLeast(0.1)] = Field(
        5, description="Seconds the gateway waits for the host name of a create-time URL to resolve (a 400 after).")
    max_conversion_memory_mb: Annotated[float, AtLeast(0)] = Field(
        1536, description="Address space (virtual memory, RLIMIT_AS) each ffmpeg and ffprobe child may map; 0 turns "
                          "the ceiling off.")
    max_decode_gigapixels: Annotated[float, AtLeast(0.001)] = Field(
        50, description="Most pixels one conversion may decode (source width * height * frames in the span), in "
                        "billions.")
    max_queued: Annotated[int, AtLeast(0)] = Field(
        0, description="Tasks that may wait in the queue; a create past it is a 503 with `Retry-After` (0: no "
                       "bound).")
    min_free_disk_mb: Annotated[float, AtLeast(0)] = Field(
        1024, description="Embedded mode: creates are refused (507) while the data folder's disk has less free "
                          "space than this; 0 turns the check off.")
    stall_timeout: Annotated[float, AtLeast(1)] = Field(
        300, description="Seconds a running conversion's progress may stand still before it is stopped and tried "
                         "once more (then failed).")

    @property
    def max_json_bytes(self) -> int:
        return int(self.max_json_kb * 1024)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_download_bytes(self) -> int:
        return int(self.max_download_mb * 1024 * 1024)


    def for_conversion(self) -> ConversionLimits:
        """The limits one conversion is held to, as the job handed to a plugin carries them."""
        return ConversionLimits(
            max_source_width=self.max_source_width,
            max_source_height=self.max_source_height,
            max_source_duration=self.max_source_duration,
            max_output_frames=self.max_output_frames,
            max_reverse_mb=self.max_reverse_mb,
            max_conversion_memory_mb=self.max_conversion_memory_mb,
            max_decode_gigapixels=self.max_decode_gigapixels,
        )


class ReconcilerConfig(Section):
    """The gateway's reconciler: re-sends tasks whose convert message was never confirmed by the broker."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}RECONCILE_")
    title = "Reconciler"
    after: Annotated[float, AtLeast(1)] = Field(
        30, description="A queued task without a confirmed convert message is sent again once it is this many "
                        "seconds old.")
    interval: Annotated[float, AtLeast(0.1)] = Field(10, description="Seconds between two passes.")
    lease: Annotated[float, AtLeast(1)] = Field(
        60, description="A replica's claim on re-sending a task expires after this many seconds (if it died "
                        "meanwhile).")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(minimum: float) -> BeforeValidator:
    """Seconds, as a number or with a unit (`90`, `90s`, `15m`, `1h`, `30d`), at least `minimum`."""

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"must be a duration: seconds, or a number with s, m, h or d (like 1h or 30d); got "
                             f"{value!r}.")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        if seconds < minimum:
            raise ValueError(f"must be at least {minimum:g} s; got {value!r}.")
        return seconds

    return BeforeValidator(parse)


Duration = Annotated[float, _duration(0)]
"""A length of time in seconds; the environment may write it `90`, `15m`, `1h` or `30d`."""


class ExpiryConfig(Section):
    """How long a finished task's parts are kept, and the sweeper that removes them (docs/api.md, "Expiry")."""

    title = "Expiry"
    source_ttl: Duration = shown_default(3600, "1h", "How long an uploaded source is kept after its task ends (long "
                                         "enough to retry it): seconds, or `15m`, `1h`, `30d`; 0 keeps it for ever.")
    result_ttl: Duration = shown_default(86400, "24h", "How long a result is kept after its task is done; then result "
                                         "and download answer 410 Gone. Seconds or `1h`, `30d`; 0 keeps it for ever.")
    record_ttl: Duration = shown_default(30 * 86400, "30d", "How long a finished task's record is kept (then its "
                                         "routes answer 404). Seconds or `1h`, `30d`; 0 keeps it for ever.")
    sweep_interval: Annotated[float, _duration(0.1)] = Field(
        60, description="Seconds between two passes of the sweeper (one gateway process of the deployment sweeps "
                        "at a time).")
    sweep_batch: Annotated[int, AtLeast(1)] = Field(100, description="Tasks the sweeper handles per database "
                                                                     "statement.")

    def retention(self) -> Retention:
        """The TTLs, as the task store applies them."""
        return Retention(source_ttl=self.source_ttl, result_ttl=self.result_ttl, record_ttl=self.record_ttl)


class FetchConfig(Section):
    """Which URL sources may be fetched."""

    title = "URL sources"
    allow_private_urls: Flag = Field(False, description="Fetch URL sources on private or local addresses (trusted "
                                                        "networks only).")


DEFAULT_WEBHOOK_RETRY_DELAYS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
"""About a day of exponential back-off: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h."""


def _delays(value: Any) -> Any:
    """Comma-separated seconds (each at least 0); `none` for no retry."""
    if not isinstance(value, str):
        return value
    if value.lower() == "none":
        return ()
    try:
        delays = tuple(float(item) for item in value.split(",") if item.strip())
    except ValueError:
        raise ValueError(f"must be seconds separated by commas, like 5,300,1800; got {value!r}.") from None
    if any(delay < 0 for delay in delays):
        raise ValueError(f"must not hold a negative delay; got {value!r}.")
    return delays


def _webhook_secret(value: Any) -> Any:
    """A Standard Webhooks secret: `whsec_` and base64 of at least 24 bytes."""
    if not isinstance(value, str) or not value:
        return value or None
    encoded = value.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not value.startswith("whsec_") or len(key) < 24:
        raise ValueError("must be whsec_ followed by base64 of 24 to 64 random bytes (make one with "
                         "`python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(32)).decode())\"`).")
    return value


class WebhookConfig(Section):
    """Webhooks: how deliveries are signed, how long a receiver may take, and when a failed one is tried again."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}WEBHOOK_")
    title = "Webhooks"
    secret: Annotated[str | None, BeforeValidator(_webhook_secret)] = Field(
        None, repr=False, json_schema_extra={"secret": True, "shown_default": "unset: webhooks off"},
        description="The Standard Webhooks signing secret (`whsec_` + base64); without it a create with a "
                    "`webhook_url` is refused (400). Gateway and workers need the same one.")
    retry_delays: Annotated[tuple[float, ...], NoDecode, BeforeValidator(_delays)] = Field(
        DEFAULT_WEBHOOK_RETRY_DELAYS, json_schema_extra={"shown_default": "5,300,1800,7200,18000,36000,36000"},
        description="Seconds to wait before each new try of a delivery that timed out, could not connect or got a "
                    "5xx, 408 or 429 (comma-separated; `none`: one try only).")
    timeout: Annotated[float, AtLeast(0.1)] = Field(
        10, description="Seconds a receiver has to answer one delivery (connecting and the whole answer).")
    progress_interval: Annotated[float, AtLeast(0)] = Field(
        5, description="At most one `progress` delivery per task this often (seconds).")
    threads: Annotated[int, AtLeast(1)] = Field(
        4, description="Deliveries at once in each worker process (threads of their own: conversions never "
                       "wait for them).")


class PluginConfig(Section):
    """Which format plugins a process loads."""

    title = "Plugins"
    plugins: str = shown_default("", "all installed", "Comma-separated entry-point names of the format plugins "
                                                      "to load.")


def _addresses(value: Any) -> Any:
    """Comma-separated IP addresses and CIDR networks; `none` for an empty list."""
    if not isinstance(value, str):
        return value
    if value.lower() == "none":
        return ()
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"must be IP addresses or networks (CIDR) separated by commas, or none; {item!r} is "
                             "neither.") from None
    return items


class ServerConfig(Section):
    """How the gateway's HTTP server treats its clients: whose X-Forwarded-For it believes, how long a slow
    client may take, how many connections one process holds (docs/security.md, "Slow clients and proxies")."""

    title = "Gateway server"
    trusted_proxies: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_addresses)] = shown_default(
        ("127.0.0.1", "::1"), "127.0.0.1,::1",
        "Addresses/CIDRs whose X-Forwarded-For names the client (`none`: no one); see docs/security.md.")
    header_timeout: Annotated[float, AtLeast(0.1)] = Field(
        20, description="Seconds from a connection's (or a request's) first byte to the end of its headers; then "
                        "408.")
    client_idle_timeout: Annotated[float, AtLeast(0.1)] = Field(
        60, description="Seconds an upload may send nothing while the gateway waits for its body; then 408.")
    max_connections: Annotated[int, AtLeast(1)] = Field(
        500, description="Open connections (and requests in flight) per gateway process; past it a 503.")


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)s?\s*$", re.IGNORECASE)


def read_keys(value: Any) -> Any:
    """The keys a set TRANSMUTE_API_KEYS holds: at least one, or the gateway would be open by mistake."""
    if not isinstance(value, str):
        return value
    source = value.strip()
    value = source
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            value = path.read_text()
        except OSError as exc:
            raise ConfigError(f"TRANSMUTE_API_KEYS names {path}, which cannot be read: {exc.strerror}.") from None
        keys = [line.strip() for line in value.splitlines()]
    else:
        keys = [part.strip() for part in value.split(",")]
    keys = [key for key in keys if key and not key.startswith("#")]
    if not keys:
        where = f"the file {source[1:]}" if source.startswith("@") else repr(source)
        raise ConfigError(f"TRANSMUTE_API_KEYS is set but holds no key ({where}): give at least one key, "
                          "or unset the variable to run without API keys.")
    if any(len(key) < 16 for key in keys):
        raise ConfigError("Every key in TRANSMUTE_API_KEYS must be at least 16 characters long.")
    return tuple(keys)


def parse_rate(value: Any) -> Any:
    """`120/minute` -> ("minute", 120); empty or `0` -> None; ConfigError for anything else."""
    if not isinstance(value, str):
        return value
    value = value.strip()
    if not value or value == "0":
        return None
    match = _RATE.match(value)
    if not match:
        raise ConfigError(f"TRANSMUTE_RATE_LIMIT must look like 120/minute (second, minute or hour); got {value!r}.")
    count, unit = int(match.group(1)), match.group(2).lower()
    return None if count == 0 else (unit, count)


class SecurityConfig(Section):
    """API keys and rate limit, both off unless configured (docs/security.md)."""

    # Set but empty is not "off": an empty TRANSMUTE_API_KEYS is an error, never an open gateway.
    model_config = SettingsConfigDict(env_ignore_empty=False)
    title = "Security"
    api_keys: Annotated[tuple[str, ...], NoDecode, BeforeValidator(read_keys)] = Field(
        (), repr=False, json_schema_extra={"secret": True, "shown_default": "off"},
        description="Comma-separated keys (16 characters or more) or `@/path/file`; then `/api` and `/media` need "
                    "`Authorization: Bearer KEY` or `X-API-Key: KEY`, and each key sees only its own tasks.")
    rate_limit: Annotated[tuple[str, int] | None, NoDecode, BeforeValidator(parse_rate)] = shown_default(
        None, "off", "E.g. `120/minute` (second, minute, hour), per key or per client address; 429 with "
                     "`Retry-After`.")



class LiveConfig(Section):
    """Live progress streams, and the state gateway replicas share through Redis (docs/distributed.md)."""

    title = "Live progress and shared state"
    redis_url: str | None = Field(
        None, repr=False, json_schema_extra={"secret": True, "shown_default": "off"},
        description="E.g. `redis://redis:6379/0`: replicas share the rate limit, cache running tasks' state and "
                    "hear each other's progress; unset, all three are per process.")
    redis_cache_ttl: Annotated[float, AtLeast(1)] = Field(
        3600, description="Seconds Redis keeps a task's cached state after its last change.")
    events_heartbeat: Annotated[float, AtLeast(0.01)] = Field(
        15, description="Seconds between two heartbeat comments on an open `/events/` stream.")
    events_max_streams: Annotated[int, AtLeast(1)] = Field(
        5000, description="Open `/events/` streams per gateway process; past it a 503 with `Retry-After`.")
    events_poll_interval: Annotated[float, AtLeast(0.05)] = Field(
        1, description="Distributed mode while Redis is off or away: seconds between two reads of the watched "
                       "tasks (one query for all of a process's streams).")

class OpsConfig(Section):
    """How a worker shows its health and work: heartbeat, metrics port, draining."""

    title = "Worker operations"
    heartbeat_file: Path = Field(Path("/tmp/transmute-worker.heartbeat"),
                                 description="Touched by a healthy `transmute worker` every heartbeat interval "
                                             "(`transmute healthcheck worker` reads it); a second worker on the "
                                             "host adds `-1` to the name (and so on).")
    heartbeat_interval: Annotated[float, AtLeast(0.1)] = Field(10, description="Seconds between two heartbeats.")
    metrics_port: Annotated[int, AtLeast(0)] = Field(
        9191, description="Where `transmute worker` serves Prometheus metrics (`/metrics`); 0 turns it off. A "
                          "second worker on the host takes the next port (and so on).")
    metrics_address: str = Field("0.0.0.0", description="The address the worker's metrics server listens on "
                                                        "(`127.0.0.1`: this host only).")
    shutdown_timeout: Annotated[float, AtLeast(0)] = shown_default(
        1800, "TRANSMUTE_CONVERSION_TIMEOUT",
        "On SIGTERM a worker stops taking messages and lets conversions in flight run this long before it cancels "
        "them and hands their tasks back to the queue.")

    @classmethod
    def from_env(cls, limits: LimitsConfig | None = None, **given: Any) -> OpsConfig:
        if "shutdown_timeout" not in cls.set_by_environment():
            given.setdefault("shutdown_timeout", (limits or LimitsConfig.from_env()).conversion_timeout)
        return super().from_env(**given)


class LoggingConfig(Section):
    """What every process logs, and how."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}LOG_")
    title = "Logging"
    level: Annotated[Literal["debug", "info", "warning", "error"], _one_of("debug", "info", "warning", "error")] = \
        Field("info", description="Least severe log lines written: the default of every `--log-level`.")
    format: Annotated[Literal["text", "json"], _one_of("text", "json")] = Field(
        "text", description="`text` (human-readable lines) or `json` (one JSON object a line, with `task_id`).")


class ClientConfig(Section):
    """Where `transmute submit` (the remote command line) sends its tasks."""

    title = "Remote command line"
    server: str = Field("", description="The transmute server `transmute submit` talks to, e.g. "
                                        "`http://127.0.0.1:8000` (the default of its `--server`).")
    api_key: str = secret("", "The API key `transmute submit` sends as `Authorization: Bearer` (the default of its "
                              "`--api-key`).")


SECTIONS: tuple[type[Section], ...] = (StorageConfig, DatabaseConfig, BrokerConfig, LimitsConfig, ReconcilerConfig,
                                       ExpiryConfig, FetchConfig, WebhookConfig, PluginConfig, ServerConfig,
                                       SecurityConfig, LiveConfig, OpsConfig, LoggingConfig, ClientConfig)
"""Every section, in the order `transmute settings` and docs/settings.md show them."""


@dataclass(frozen=True)
class Settings:
    """What the gateway and the worker need, read once at start."""

    storage: StorageConfig = field(default_factory=StorageConfig)
    database: DatabaseConfig = field(default_factory=lambda: DatabaseConfig.from_env())
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    reconciler: ReconcilerConfig = field(default_factory=ReconcilerConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    expiry: ExpiryConfig = field(default_factory=ExpiryConfig)
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    live: LiveConfig = field(default_factory=LiveConfig)

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> Settings:
        return cls(
            storage=StorageConfig.from_env(**({"data_dir": data_dir} if data_dir else {})),
            database=DatabaseConfig.from_env(data_dir),
            broker=BrokerConfig.from_env(),
            limits=LimitsConfig.from_env(),
            reconciler=ReconcilerConfig.from_env(),
            fetch=FetchConfig.from_env(),
            expiry=ExpiryConfig.from_env(),
            webhooks=WebhookConfig.from_env(),
            live=LiveConfig.from_env(),
        )


def distributed_settings() -> Settings:
    """The settings from the environment, checked for what distributed mode cannot do without."""
    settings = Settings.from_env()
    if settings.broker.in_process:
        raise ConfigError(
            "Distributed mode needs a message broker: set TRANSMUTE_BROKER_URL to an amqp:// URL "
            "(or run everything in one process with 'transmute serve')."
        )
    return settings
