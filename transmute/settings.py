"""Configuration: every `TRANSMUTE_*` environment variable, declared once here and read nowhere else.

One pydantic-settings class per concern; a field is one variable (its name is the class's prefix plus the
field's name), with its type, default and one line of meaning (`description`), from which `transmute
settings` and docs/settings.md are made. A value that is empty (or only blanks) counts as unset. A value
transmute cannot use is one `ConfigError` naming the variable. Values given in code (tests, the embedded
mode) are taken as they are: the lower bounds apply to what the environment says.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, ValidationError
from pydantic_core import core_schema
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from transmute.core.errors import TransmuteError
from transmute.core.formats import ConversionLimits

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
    s3_bucket: str = Field("transmute", description="The bucket (created when missing).")
    s3_secure: Flag = Field(True, description="Reach S3 over HTTPS.")
    s3_region: str = Field("", description="The S3 region, for services that need one.")


class DatabaseConfig(Section):
    """The task store's SQLAlchemy URL (async driver): SQLite under the data folder unless set."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}DATABASE_")
    title = "Database"
    url: str = Field("", description="The task store, e.g. `postgresql+asyncpg://user:pass@host/db`.", repr=False,
                     json_schema_extra={"secret": True, "shown_default": "SQLite under the data folder"})
    pool_size: Annotated[int, AtLeast(1)] = Field(
        10, description="PostgreSQL connections a gateway process keeps for writes and listings (status reads "
                        "take up to 4 more).")

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


class FetchConfig(Section):
    """Which URL sources may be fetched."""

    title = "URL sources"
    allow_private_urls: Flag = Field(False, description="Fetch URL sources on private or local addresses (trusted "
                                                        "networks only).")


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


class OpsConfig(Section):
    """How a worker shows its health and work: heartbeat, metrics port, draining."""

    title = "Worker operations"
    heartbeat_file: Path = Field(Path("/tmp/transmute-worker.heartbeat"),
                                 description="Touched by a healthy `transmute worker` every heartbeat interval "
                                             "(`transmute healthcheck worker` reads it).")
    heartbeat_interval: Annotated[float, AtLeast(0.1)] = Field(10, description="Seconds between two heartbeats.")
    metrics_port: Annotated[int, AtLeast(0)] = Field(
        9191, description="Where `transmute worker` serves Prometheus metrics (`/metrics`); 0 turns it off.")
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
                                       FetchConfig, PluginConfig, ServerConfig, SecurityConfig, OpsConfig,
                                       LoggingConfig, ClientConfig)
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

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> Settings:
        return cls(
            storage=StorageConfig.from_env(**({"data_dir": data_dir} if data_dir else {})),
            database=DatabaseConfig.from_env(data_dir),
            broker=BrokerConfig.from_env(),
            limits=LimitsConfig.from_env(),
            reconciler=ReconcilerConfig.from_env(),
            fetch=FetchConfig.from_env(),
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
