"""Configuration: one small dataclass per concern, each read from `TRANSMUTE_*` environment variables."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from transmute.core.errors import TransmuteError
from transmute.core.formats import ConversionLimits


class ConfigError(TransmuteError):
    """An environment variable has a value transmute cannot use."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"TRANSMUTE_{name}", default).strip()


def _env_bool(name: str, default: bool = False) -> bool:
    value = _env(name).lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"TRANSMUTE_{name} must be true or false; got {value!r}.")


def _env_number(name: str, default: float, *, minimum: float = 0) -> float:
    value = _env(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"TRANSMUTE_{name} must be a number; got {value!r}.") from None
    if number < minimum:
        raise ConfigError(f"TRANSMUTE_{name} must be at least {minimum:g}; got {value!r}.")
    return number


@dataclass(frozen=True)
class StorageConfig:
    """Where sources and results are kept: a folder, or an S3 bucket when an endpoint is set."""

    data_dir: Path = Path("data")
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "transmute"
    s3_secure: bool = True
    s3_region: str = ""

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> StorageConfig:
        return cls(
            data_dir=Path(data_dir or _env("DATA_DIR", "data")),
            s3_endpoint=_env("S3_ENDPOINT"),
            s3_access_key=_env("S3_ACCESS_KEY"),
            s3_secret_key=_env("S3_SECRET_KEY"),
            s3_bucket=_env("S3_BUCKET", "transmute"),
            s3_secure=_env_bool("S3_SECURE", True),
            s3_region=_env("S3_REGION"),
        )


@dataclass(frozen=True)
class DatabaseConfig:
    """The task store's SQLAlchemy URL (async driver): SQLite under the data folder unless set."""

    url: str
    pool_size: int = 10
    """PostgreSQL connections a gateway process keeps for writes and listings (status reads take up to 4 more)."""

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> DatabaseConfig:
        default_dir = Path(data_dir or _env("DATA_DIR", "data")).resolve()
        return cls(url=_env("DATABASE_URL") or f"sqlite+aiosqlite:///{default_dir / 'transmute.db'}",
                   pool_size=int(_env_number("DATABASE_POOL_SIZE", 10, minimum=1)))


@dataclass(frozen=True)
class BrokerConfig:
    """The message broker: an amqp:// URL for RabbitMQ, or empty for the in-process broker."""

    url: str = ""
    heartbeat: int = 60
    """AMQP heartbeat in seconds: a dead peer (or a half-open TCP connection) is noticed within about twice it."""

    @property
    def in_process(self) -> bool:
        return not self.url or self.url.startswith("memory")

    @classmethod
    def from_env(cls) -> BrokerConfig:
        return cls(url=_env("BROKER_URL"), heartbeat=int(_env_number("BROKER_HEARTBEAT", 60)))


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what one request or one conversion may use."""

    max_upload_mb: float = 500
    max_download_mb: float = 500
    conversion_timeout: float = 1800
    download_timeout: float = 300
    max_batch: int = 50
    max_retries: int = 3
    max_crashes: int = 3
    """Attempts of one task that may end with their worker dying (killed, out of memory) before it fails."""
    storage_retry_seconds: float = 300
    """How long a worker keeps retrying an unreachable object storage (with back-off) before giving up."""
    max_source_width: int = 8192
    max_source_height: int = 8192
    """Largest picture a source may have (pixels); larger sources fail before ffmpeg decodes a frame."""
    max_source_duration: float = 4 * 3600
    """Longest source, in seconds."""
    max_output_frames: int = 30_000
    """Most frames one conversion may write (span / speed * fps, doubled for boomerang)."""
    max_reverse_mb: float = 1024
    """Memory reverse and boomerang may use: they hold every output frame (width * height * 4 bytes each)."""
    resolve_timeout: float = 5
    """Seconds the gateway waits for the host name of a create-time URL to resolve (a 400 after)."""
    max_json_kb: float = 64
    """Largest JSON request body (create with a URL, batch download), apart from the upload limit."""
    max_conversion_memory_mb: float = 1536
    """Address space (virtual memory, RLIMIT_AS) each ffmpeg and ffprobe child may map; 0 turns the ceiling off."""
    max_decode_gigapixels: float = 50
    """Most pixels one conversion may decode (source width * height * frames in the span), in billions."""

    @property
    def max_json_bytes(self) -> int:
        return int(self.max_json_kb * 1024)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_download_bytes(self) -> int:
        return int(self.max_download_mb * 1024 * 1024)

    @classmethod
    def from_env(cls) -> LimitsConfig:
        return cls(
            max_upload_mb=_env_number("MAX_UPLOAD_MB", 500, minimum=0.001),
            max_download_mb=_env_number("MAX_DOWNLOAD_MB", 500, minimum=0.001),
            conversion_timeout=_env_number("CONVERSION_TIMEOUT", 1800, minimum=1),
            download_timeout=_env_number("DOWNLOAD_TIMEOUT", 300, minimum=1),
            max_retries=int(_env_number("MAX_RETRIES", 3)),
            max_crashes=int(_env_number("MAX_CRASHES", 3, minimum=1)),
            storage_retry_seconds=_env_number("STORAGE_RETRY_SECONDS", 300),
            max_source_width=int(_env_number("MAX_SOURCE_WIDTH", 8192, minimum=16)),
            max_source_height=int(_env_number("MAX_SOURCE_HEIGHT", 8192, minimum=16)),
            max_source_duration=_env_number("MAX_SOURCE_DURATION", 4 * 3600, minimum=1),
            max_output_frames=int(_env_number("MAX_OUTPUT_FRAMES", 30_000, minimum=1)),
            max_reverse_mb=_env_number("MAX_REVERSE_MB", 1024, minimum=1),
            max_json_kb=_env_number("MAX_JSON_KB", 64, minimum=1),
            resolve_timeout=_env_number("RESOLVE_TIMEOUT", 5, minimum=0.1),
            max_conversion_memory_mb=_env_number("MAX_CONVERSION_MEMORY_MB", 1536),
            max_decode_gigapixels=_env_number("MAX_DECODE_GIGAPIXELS", 50, minimum=0.001),
        )

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


@dataclass(frozen=True)
class ReconcilerConfig:
    """The gateway's reconciler: re-sends tasks whose convert message was never confirmed by the broker."""

    after: float = 30
    """A queued task without a confirmed convert message is sent again once it is this many seconds old."""
    interval: float = 10
    """Seconds between two passes."""
    lease: float = 60
    """A replica's claim on re-sending a task expires after this many seconds (if it died meanwhile)."""

    @classmethod
    def from_env(cls) -> ReconcilerConfig:
        return cls(
            after=_env_number("RECONCILE_AFTER", 30, minimum=1),
            interval=_env_number("RECONCILE_INTERVAL", 10, minimum=0.1),
            lease=_env_number("RECONCILE_LEASE", 60, minimum=1),
        )


@dataclass(frozen=True)
class OpsConfig:
    """How a process shows its health and work: log format, worker heartbeat, metrics port, draining."""

    log_format: str = "text"
    """`text` (human-readable lines) or `json` (one JSON object a line)."""
    heartbeat_file: Path = Path("/tmp/transmute-worker.heartbeat")
    """Touched by a healthy `transmute worker` every `heartbeat_interval` s (`transmute healthcheck worker`)."""
    heartbeat_interval: float = 10
    metrics_port: int = 9191
    """Where `transmute worker` serves Prometheus metrics (`/metrics`); 0 turns it off."""
    shutdown_timeout: float = 1800
    """On SIGTERM a worker stops taking messages and lets conversions in flight run this long (default: the
    conversion timeout) before it cancels them and hands their tasks back to the queue."""

    @classmethod
    def from_env(cls, limits: LimitsConfig | None = None) -> OpsConfig:
        log_format = _env("LOG_FORMAT", "text").lower()
        if log_format not in ("text", "json"):
            raise ConfigError(f"TRANSMUTE_LOG_FORMAT must be text or json; got {log_format!r}.")
        conversion_timeout = (limits or LimitsConfig.from_env()).conversion_timeout
        return cls(
            log_format=log_format,
            heartbeat_file=Path(_env("HEARTBEAT_FILE") or "/tmp/transmute-worker.heartbeat"),
            heartbeat_interval=_env_number("HEARTBEAT_INTERVAL", 10, minimum=0.1),
            metrics_port=int(_env_number("METRICS_PORT", 9191)),
            shutdown_timeout=_env_number("SHUTDOWN_TIMEOUT", conversion_timeout),
        )


@dataclass(frozen=True)
class Settings:
    """Everything a process needs, read once at start."""

    storage: StorageConfig = field(default_factory=StorageConfig)
    database: DatabaseConfig = field(default_factory=lambda: DatabaseConfig.from_env())
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    reconciler: ReconcilerConfig = field(default_factory=ReconcilerConfig)

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> Settings:
        return cls(
            storage=StorageConfig.from_env(data_dir),
            database=DatabaseConfig.from_env(data_dir),
            broker=BrokerConfig.from_env(),
            limits=LimitsConfig.from_env(),
            reconciler=ReconcilerConfig.from_env(),
        )


def _addresses(name: str, default: str) -> tuple[str, ...]:
    """Comma-separated IP addresses and CIDR networks; `none` for an empty list."""
    value = _env(name, default)
    if value.lower() == "none":
        return ()
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"TRANSMUTE_{name} must be IP addresses or networks (CIDR) separated by commas, "
                              f"or none; {item!r} is neither.") from None
    return items


@dataclass(frozen=True)
class ServerConfig:
    """How the gateway's HTTP server treats its clients: whose X-Forwarded-For it believes, how long a slow
    client may take, how many connections one process holds (docs/security.md, "Slow clients and proxies")."""

    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    """Peers whose X-Forwarded-For names the client (as uvicorn's own default: loopback, a proxy on the host)."""
    header_timeout: float = 20
    """Seconds from a connection's (or a request's) first byte to the end of its headers."""
    client_idle_timeout: float = 60
    """Seconds an upload may send nothing while the gateway waits for its body."""
    max_connections: int = 500
    """Open connections (and requests in flight) per gateway process; past it a 503."""

    @classmethod
    def from_env(cls) -> ServerConfig:
        return cls(
            trusted_proxies=_addresses("TRUSTED_PROXIES", "127.0.0.1,::1"),
            header_timeout=_env_number("HEADER_TIMEOUT", 20, minimum=0.1),
            client_idle_timeout=_env_number("CLIENT_IDLE_TIMEOUT", 60, minimum=0.1),
            max_connections=int(_env_number("MAX_CONNECTIONS", 500, minimum=1)),
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
