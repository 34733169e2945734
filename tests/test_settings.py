"""Every `TRANSMUTE_*` setting is declared once: `transmute settings` shows it (secrets masked), a bad value is
one line naming it, and docs/settings.md is what the declarations generate."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from transmute.cli import main
from transmute.cli.settings import markdown
from transmute.settings import SECTIONS, ConfigError, DatabaseConfig, ExpiryConfig, LimitsConfig, ReconcilerConfig

DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No TRANSMUTE_* variable from the machine running the tests."""
    for section in SECTIONS:
        for name in section.model_fields:
            monkeypatch.delenv(section.env_name(name), raising=False)
    return monkeypatch


def shown(args: list[str]) -> list[dict]:
    done = CliRunner().invoke(main, ["settings", "--json", *args])
    assert done.exit_code == 0, done.output
    return json.loads(done.output)


def test_settings_shows_a_value_from_the_environment_and_where_it_came_from(clean_env):
    clean_env.setenv("TRANSMUTE_MAX_UPLOAD_MB", "100")
    rows = {row["name"]: row for row in shown([])}
    assert (rows["TRANSMUTE_MAX_UPLOAD_MB"]["value"], rows["TRANSMUTE_MAX_UPLOAD_MB"]["source"]) == ("100",
                                                                                                     "environment")
    assert (rows["TRANSMUTE_MAX_DOWNLOAD_MB"]["value"], rows["TRANSMUTE_MAX_DOWNLOAD_MB"]["source"]) == ("500",
                                                                                                         "default")
    text = CliRunner().invoke(main, ["settings"]).output
    assert "TRANSMUTE_MAX_UPLOAD_MB" in text and "100  (environment)" in text


def test_settings_masks_secrets(clean_env):
    clean_env.setenv("TRANSMUTE_S3_SECRET_KEY", "s3-secret-value")
    clean_env.setenv("TRANSMUTE_API_KEYS", "a-long-enough-secret-key")
    clean_env.setenv("TRANSMUTE_DATABASE_URL", "postgresql+asyncpg://transmute:db-password@db:5432/transmute")
    clean_env.setenv("TRANSMUTE_BROKER_URL", "amqp://guest:broker-password@rabbit:5672/%2F")
    for args in ([], ["--json"]):
        output = CliRunner().invoke(main, ["settings", *args]).output
        for secret in ("s3-secret-value", "a-long-enough-secret-key", "db-password", "broker-password"):
            assert secret not in output
    rows = {row["name"]: row for row in shown([])}
    assert rows["TRANSMUTE_DATABASE_URL"]["value"] == "postgresql+asyncpg://transmute:****@db:5432/transmute"
    assert rows["TRANSMUTE_S3_SECRET_KEY"]["value"] == "****"
    assert rows["TRANSMUTE_API_KEYS"]["secret"] is True


@pytest.mark.parametrize(("name", "value", "message"), [
    ("TRANSMUTE_MAX_UPLOAD_MB", "lots", "TRANSMUTE_MAX_UPLOAD_MB must be a number; got 'lots'."),
    ("TRANSMUTE_RECONCILE_AFTER", "0", "TRANSMUTE_RECONCILE_AFTER must be at least 1; got '0'."),
    ("TRANSMUTE_S3_SECURE", "maybe", "TRANSMUTE_S3_SECURE must be true or false; got 'maybe'."),
    ("TRANSMUTE_LOG_FORMAT", "xml", "TRANSMUTE_LOG_FORMAT must be text or json; got 'xml'."),
    ("TRANSMUTE_RESULT_TTL", "a day", "TRANSMUTE_RESULT_TTL must be a duration: seconds, or a number with s, m, h "
                                      "or d (like 1h or 30d); got 'a day'."),
    ("TRANSMUTE_SOURCE_TTL", "-1h", "TRANSMUTE_SOURCE_TTL must be a duration: seconds, or a number with s, m, h "
                                    "or d (like 1h or 30d); got '-1h'."),
    ("TRANSMUTE_SWEEP_INTERVAL", "0", "TRANSMUTE_SWEEP_INTERVAL must be at least 0.1 s; got '0'."),
])
def test_a_bad_value_is_one_line_naming_the_variable_and_a_usage_error(clean_env, name, value, message):
    clean_env.setenv(name, value)
    done = CliRunner().invoke(main, ["settings"])
    assert (done.exit_code, done.output) == (2, f"transmute: error: {message}\n")


@pytest.mark.parametrize(("value", "seconds"), [("90", 90), ("90s", 90), ("1.5m", 90), ("1h", 3600), ("30d", 2592000),
                                               ("0", 0)])
def test_a_ttl_is_seconds_or_a_number_with_a_unit(clean_env, value, seconds):
    clean_env.setenv("TRANSMUTE_RECORD_TTL", value)
    assert ExpiryConfig.from_env().record_ttl == seconds
    assert ExpiryConfig.from_env().retention().record_ttl == seconds


def test_an_empty_value_counts_as_unset(clean_env):
    clean_env.setenv("TRANSMUTE_MAX_UPLOAD_MB", "  ")
    clean_env.setenv("TRANSMUTE_S3_BUCKET", "")
    assert LimitsConfig.from_env().max_upload_mb == 500
    rows = {row["name"]: row for row in shown([])}
    assert (rows["TRANSMUTE_S3_BUCKET"]["value"], rows["TRANSMUTE_S3_BUCKET"]["source"]) == ("transmute", "default")


def test_values_given_in_code_are_taken_as_they_are(clean_env):
    assert ReconcilerConfig(after=0, interval=1, lease=1).after == 0
    clean_env.setenv("TRANSMUTE_RECONCILE_AFTER", "0")
    with pytest.raises(ConfigError, match="TRANSMUTE_RECONCILE_AFTER must be at least 1"):
        ReconcilerConfig.from_env()


def test_docs_settings_md_is_what_the_declarations_generate():
    assert DOCS.read_text() == markdown(), "regenerate it: transmute settings --markdown > docs/settings.md"


def test_every_setting_has_a_meaning():
    assert all(field.description for section in SECTIONS for field in section.model_fields.values())


@pytest.mark.parametrize(("given", "used"), [
    ("postgresql://u:p@db:5432/tasks", "postgresql+asyncpg://u:p@db:5432/tasks"),
    ("postgres://u@db/tasks", "postgresql+asyncpg://u@db/tasks"),
    ("sqlite:///tmp/t.db", "sqlite+aiosqlite:///tmp/t.db"),
    ("postgresql+asyncpg://u@db/tasks", "postgresql+asyncpg://u@db/tasks"),
    ("postgresql+psycopg://u@db/tasks", "postgresql+psycopg://u@db/tasks"),
])
def test_a_database_url_without_a_driver_gets_the_async_one(clean_env, given, used):
    clean_env.setenv("TRANSMUTE_DATABASE_URL", given)
    assert DatabaseConfig.from_env().url == used
