"""Settings.from_env of each process kind (the origin's and the invalidation consumer's): defaults,
good values, and each bad variable named in its SettingsError."""

from __future__ import annotations

import pytest

from fragments.batch_signing import DEV_EVENT_KEYS
from fragments.segment_cookie import DEV_SEGMENT_SECRET
from invalidation.settings import InvalidationSettings
from origin.errors import SettingsError
from origin.settings import Settings

TOKEN = "t0ken-of-twenty-chars"
CLOUDFLARE = {
    "SHELFEDGE_PURGERS": "cloudflare",
    "SHELFEDGE_CLOUDFLARE_ZONE_ID": "zone",
    "SHELFEDGE_CLOUDFLARE_API_TOKEN": "secret-api-token",
}
AKAMAI = {
    "SHELFEDGE_PURGERS": "akamai",
    "SHELFEDGE_AKAMAI_HOST": "akab-x.luna.akamaiapis.net",
    "SHELFEDGE_AKAMAI_CLIENT_TOKEN": "akab-client",
    "SHELFEDGE_AKAMAI_CLIENT_SECRET": "c2VjcmV0",
    "SHELFEDGE_AKAMAI_ACCESS_TOKEN": "akab-access",
}
FASTLY = {
    "SHELFEDGE_PURGERS": "fastly",
    "SHELFEDGE_FASTLY_SERVICE_ID": "svc",
    "SHELFEDGE_FASTLY_API_TOKEN": "secret-api-token",
}


def _read_every_kind(environ: dict[str, str]) -> None:
    """Read the environment as every process kind does (the first error wins)."""
    Settings.from_env(environ)
    InvalidationSettings.from_env(environ)


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    settings = Settings.from_env({})

    assert settings == Settings()
    assert InvalidationSettings.from_env({}) == InvalidationSettings()
    assert settings.redis_url is None
    assert settings.redis_timeout_ms == 250
    assert settings.purgers == ("local-edge",)
    assert settings.segment_secret == DEV_SEGMENT_SECRET


def test_good_values_are_converted() -> None:
    environ = {
        "REDIS_URL": "redis://127.0.0.1:6390/0/",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092,kafka-2:9093",
        "SHELFEDGE_ENV": "prod",
        "SHELFEDGE_EVENT_KEYS": f"edge-1={'k' * 32}",
        "SHELFEDGE_SEGMENT_SECRET": "a-real-secret-of-ours",
        "SHELFEDGE_ORIGIN_PORT": "9600",
        "SHELFEDGE_REDIS_TIMEOUT_MS": "75",
        "SHELFEDGE_PURGERS": "local-edge, varnish",
        "SHELFEDGE_VARNISH_URL": "http://127.0.0.1:6081",
        "SHELFEDGE_CATALOG_SEED": "0",
        "SHELFEDGE_ADMIN_TOKENS": f"{TOKEN}:editor",
        "SHELFEDGE_IMPORT_WORKERS": "0",
    }
    settings = Settings.from_env(environ)
    consumer = InvalidationSettings.from_env(environ)

    assert settings.redis_url == "redis://127.0.0.1:6390/0"
    assert settings.kafka_bootstrap == "127.0.0.1:9092,kafka-2:9093"
    assert settings.env == "prod"
    assert settings.origin_port == 9600
    assert settings.edge_origin_url == "http://127.0.0.1:9600"
    assert settings.redis_timeout_ms == 75
    assert settings.purgers == ("local-edge", "varnish")
    assert consumer.purgers == ("local-edge", "varnish")
    assert consumer.varnish_url == "http://127.0.0.1:6081"
    assert (consumer.redis_url, consumer.redis_timeout_ms) == ("redis://127.0.0.1:6390/0", 75)
    assert settings.catalog_seed == 0
    assert settings.admin_tokens == {TOKEN: "editor"}
    assert settings.import_workers == 0


def test_cloudflare_and_fastly_settings() -> None:
    cloudflare = InvalidationSettings.from_env(
        {**CLOUDFLARE, "SHELFEDGE_CLOUDFLARE_RATE": "2.5", "SHELFEDGE_CLOUDFLARE_BUCKET": "9"}
    ).cloudflare
    fastly = InvalidationSettings.from_env(
        {**FASTLY, "SHELFEDGE_FASTLY_SOFT_PURGE": "false"}
    ).fastly

    assert cloudflare is not None
    assert (cloudflare.zone_id, cloudflare.plan, cloudflare.rate_per_second) == (
        "zone",
        "free",
        2.5,
    )
    assert cloudflare.bucket_size == 9
    assert fastly is not None
    assert (fastly.service_id, fastly.soft_purge) == ("svc", False)


def test_akamai_settings() -> None:
    default = InvalidationSettings.from_env(AKAMAI).akamai
    staging = InvalidationSettings.from_env(
        {**AKAMAI, "SHELFEDGE_AKAMAI_NETWORK": "staging", "SHELFEDGE_AKAMAI_SOFT_PURGE": "false"}
    ).akamai

    assert default is not None
    assert (default.network, default.soft_purge) == ("production", True)
    assert default.base_url == "https://akab-x.luna.akamaiapis.net"
    assert (default.client_token, default.access_token) == ("akab-client", "akab-access")
    assert staging is not None
    assert (staging.network, staging.soft_purge) == ("staging", False)


BAD = [
    ({"SHELFEDGE_ENV": "production"}, "SHELFEDGE_ENV"),
    ({"SHELFEDGE_ENV": "staging"}, "SHELFEDGE_SEGMENT_SECRET"),
    ({"SHELFEDGE_ENV": ""}, "SHELFEDGE_ENV"),
    ({"SHELFEDGE_ENV": "prod"}, "SHELFEDGE_SEGMENT_SECRET"),
    ({"SHELFEDGE_SEGMENT_SECRET": "short"}, "SHELFEDGE_SEGMENT_SECRET"),
    ({"SHELFEDGE_PURGERS": "local-edge,limelight"}, "SHELFEDGE_PURGERS"),
    ({"SHELFEDGE_ORIGIN_PORT": "0"}, "SHELFEDGE_ORIGIN_PORT"),
    ({"SHELFEDGE_ORIGIN_PORT": "http"}, "SHELFEDGE_ORIGIN_PORT"),
    ({"SHELFEDGE_EDGE_PORT": "70000"}, "SHELFEDGE_EDGE_PORT"),
    ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
    ({"REDIS_URL": "redis://"}, "REDIS_URL"),
    ({"REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "localhost"}, "KAFKA_BOOTSTRAP_SERVERS"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "a:9092,:9093"}, "KAFKA_BOOTSTRAP_SERVERS"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "a:port"}, "KAFKA_BOOTSTRAP_SERVERS"),
    ({"SHELFEDGE_EDGE_ORIGIN_URL": "ftp://origin"}, "SHELFEDGE_EDGE_ORIGIN_URL"),
    ({"SHELFEDGE_PUBLIC_EDGE_URL": "127.0.0.1:8700"}, "SHELFEDGE_PUBLIC_EDGE_URL"),
    ({"SHELFEDGE_LOCAL_EDGE_URL": "edge"}, "SHELFEDGE_LOCAL_EDGE_URL"),
    ({"SHELFEDGE_REDIS_TIMEOUT_MS": "5"}, "SHELFEDGE_REDIS_TIMEOUT_MS"),
    ({"SHELFEDGE_REDIS_TIMEOUT_MS": "1.5"}, "SHELFEDGE_REDIS_TIMEOUT_MS"),
    ({"SHELFEDGE_REDIS_TIMEOUT_MS": "1e3"}, "SHELFEDGE_REDIS_TIMEOUT_MS"),
    ({"SHELFEDGE_COALESCE_MS": "-1"}, "SHELFEDGE_COALESCE_MS"),
    ({"SHELFEDGE_COALESCE_MS": "0"}, "SHELFEDGE_COALESCE_MS"),  # no window: was a crash later
    ({"SHELFEDGE_MAX_IN_FLIGHT": "0"}, "SHELFEDGE_MAX_IN_FLIGHT"),
    ({"SHELFEDGE_CONSUMER_METRICS_PORT": "65536"}, "SHELFEDGE_CONSUMER_METRICS_PORT"),
    ({"SHELFEDGE_CATALOG_SEED": "-1"}, "SHELFEDGE_CATALOG_SEED"),
    ({"SHELFEDGE_CATALOG_SKUS": "5"}, "SHELFEDGE_CATALOG_SKUS"),
    ({"SHELFEDGE_ADMIN_TOKENS": "short:editor"}, "SHELFEDGE_ADMIN_TOKENS"),
    ({"SHELFEDGE_ADMIN_TOKENS": f"{TOKEN}:admin"}, "SHELFEDGE_ADMIN_TOKENS"),
    ({"SHELFEDGE_ADMIN_TOKENS": TOKEN}, "SHELFEDGE_ADMIN_TOKENS"),
    ({"SHELFEDGE_PURGERS": "varnish"}, "SHELFEDGE_VARNISH_URL"),
    (
        {"SHELFEDGE_PURGERS": "varnish", "SHELFEDGE_VARNISH_URL": "varnish:6081"},
        "SHELFEDGE_VARNISH_URL",
    ),
    ({"SHELFEDGE_PURGERS": "cloudflare"}, "SHELFEDGE_CLOUDFLARE_ZONE_ID"),
    (
        {"SHELFEDGE_PURGERS": "cloudflare", "SHELFEDGE_CLOUDFLARE_ZONE_ID": "z"},
        "SHELFEDGE_CLOUDFLARE_API_TOKEN",
    ),
    ({**CLOUDFLARE, "SHELFEDGE_CLOUDFLARE_PLAN": "gold"}, "SHELFEDGE_CLOUDFLARE_PLAN"),
    ({**CLOUDFLARE, "SHELFEDGE_CLOUDFLARE_RATE": "0"}, "SHELFEDGE_CLOUDFLARE_RATE"),
    ({**CLOUDFLARE, "SHELFEDGE_CLOUDFLARE_RATE": "fast"}, "SHELFEDGE_CLOUDFLARE_RATE"),
    ({**CLOUDFLARE, "SHELFEDGE_CLOUDFLARE_RATE": "nan"}, "SHELFEDGE_CLOUDFLARE_RATE"),
    ({**CLOUDFLARE, "SHELFEDGE_CLOUDFLARE_RATE": "inf"}, "SHELFEDGE_CLOUDFLARE_RATE"),
    ({**CLOUDFLARE, "SHELFEDGE_CLOUDFLARE_BUCKET": "0"}, "SHELFEDGE_CLOUDFLARE_BUCKET"),
    (
        {**CLOUDFLARE, "SHELFEDGE_CLOUDFLARE_API_BASE": "api.example"},
        "SHELFEDGE_CLOUDFLARE_API_BASE",
    ),
    ({"SHELFEDGE_PURGERS": "fastly"}, "SHELFEDGE_FASTLY_SERVICE_ID"),
    ({**FASTLY, "SHELFEDGE_FASTLY_SOFT_PURGE": "yes"}, "SHELFEDGE_FASTLY_SOFT_PURGE"),
    ({**CLOUDFLARE, "SHELFEDGE_CLOUDFLARE_SOFT_PURGE": "1"}, "SHELFEDGE_CLOUDFLARE_SOFT_PURGE"),
    ({"SHELFEDGE_PURGERS": "akamai"}, "SHELFEDGE_AKAMAI_HOST"),
    (
        {"SHELFEDGE_PURGERS": "akamai", "SHELFEDGE_AKAMAI_HOST": "akab-x.luna.akamaiapis.net"},
        "SHELFEDGE_AKAMAI_CLIENT_TOKEN",
    ),
    ({**AKAMAI, "SHELFEDGE_AKAMAI_NETWORK": "prod"}, "SHELFEDGE_AKAMAI_NETWORK"),
    ({**AKAMAI, "SHELFEDGE_AKAMAI_SOFT_PURGE": "no"}, "SHELFEDGE_AKAMAI_SOFT_PURGE"),
    ({"SHELFEDGE_IMPORT_WORKERS": "-1"}, "SHELFEDGE_IMPORT_WORKERS"),
    ({"SHELFEDGE_IMPORT_WORKERS": "33"}, "SHELFEDGE_IMPORT_WORKERS"),
    ({"SHELFEDGE_IMPORT_WORKERS": "two"}, "SHELFEDGE_IMPORT_WORKERS"),
]


@pytest.mark.parametrize(
    ("environ", "variable"), BAD, ids=[f"{v}-{i}" for i, (_, v) in enumerate(BAD)]
)
def test_each_bad_variable_is_named(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as caught:
        _read_every_kind(environ)

    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: expected ")


@pytest.mark.parametrize(
    "environ",
    [
        {"SHELFEDGE_SEGMENT_SECRET": "tiny-secret"},
        {"SHELFEDGE_ADMIN_TOKENS": "a-secret-token-of-ours:root"},
        {"SHELFEDGE_ADMIN_TOKENS": "leaky:editor"},
    ],
)
def test_secrets_are_never_echoed(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)

    secret = next(iter(environ.values())).split(":")[0]
    assert secret not in str(caught.value)
    assert "<hidden>" in str(caught.value)


def test_admin_tokens_accept_the_ingest_role() -> None:
    settings = Settings.from_env({"SHELFEDGE_ADMIN_TOKENS": "feedbot=an-ingest-token-0001:ingest"})
    assert settings.admin_tokens == {"an-ingest-token-0001": "ingest"}
    assert settings.admin_token_names == {"an-ingest-token-0001": "feedbot"}


def test_outside_dev_the_development_event_key_is_refused() -> None:
    own = {"SHELFEDGE_SEGMENT_SECRET": "a-real-secret-of-ours"}
    for env in ("staging", "prod"):
        with pytest.raises(SettingsError, match="SHELFEDGE_EVENT_KEYS"):
            Settings.from_env({**own, "SHELFEDGE_ENV": env})
        with pytest.raises(SettingsError, match="not the development key"):
            Settings.from_env({**own, "SHELFEDGE_ENV": env, "SHELFEDGE_EVENT_KEYS": DEV_EVENT_KEYS})


def test_event_keys_are_parsed_oldest_first_and_the_last_signs() -> None:
    keys = Settings.from_env(
        {"SHELFEDGE_EVENT_KEYS": f"edge-2025={'a' * 32}, edge-2026={'b' * 32}"}
    ).event_keys

    assert [k.kid for k in keys.keys] == ["edge-2025", "edge-2026"]
    assert keys.newest.kid == "edge-2026"
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"SHELFEDGE_EVENT_KEYS": "edge=too-short-secret"})
    assert "too-short-secret" not in str(caught.value)


def test_repr_and_errors_never_show_secrets_or_url_passwords() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://user:hunter2-redis-pw@redis.internal:6379/0",
            "SHELFEDGE_SEGMENT_SECRET": "segment-secret-value-123",
            "SHELFEDGE_ADMIN_TOKENS": f"{TOKEN}:editor",
            "SHELFEDGE_EVENT_KEYS": f"edge-1={'s' * 32}",
            "SHELFEDGE_EDGE_CONFIG_TOKEN": "edge-config-token-0123",
        }
    )
    shown = repr(settings) + str(settings)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"REDIS_URL": "http://user:hunter2-redis-pw@redis.internal/"})

    for secret in ("hunter2", "segment-secret-value", TOKEN, "s" * 32, "edge-config-token"):
        assert secret not in shown
        assert secret not in str(caught.value)
    assert "redis://user:***@redis.internal:6379/0" in shown
    assert "edge-1" in shown  # key ids are not secret


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_purge_api_bases_must_be_https_outside_dev(env: str) -> None:
    plain = {**CLOUDFLARE, "SHELFEDGE_ENV": env, "SHELFEDGE_CLOUDFLARE_API_BASE": "http://cf.test"}
    fastly = {**FASTLY, "SHELFEDGE_ENV": env, "SHELFEDGE_FASTLY_API_BASE": "http://fastly.test"}
    with pytest.raises(SettingsError, match="SHELFEDGE_CLOUDFLARE_API_BASE"):
        InvalidationSettings.from_env(plain)
    with pytest.raises(SettingsError, match="SHELFEDGE_FASTLY_API_BASE"):
        InvalidationSettings.from_env(fastly)
    secure = {**plain, "SHELFEDGE_CLOUDFLARE_API_BASE": "https://cf.test"}
    assert InvalidationSettings.from_env(secure).cloudflare is not None
    dev = {**CLOUDFLARE, "SHELFEDGE_CLOUDFLARE_API_BASE": "http://127.0.0.1:9999"}
    assert InvalidationSettings.from_env(dev).cloudflare is not None


def test_invalidation_settings_hide_api_tokens() -> None:
    shown = repr(InvalidationSettings.from_env(CLOUDFLARE))
    assert "secret-api-token" not in shown


@pytest.mark.parametrize("raw", ["0", "-5", "soon", "nan", "43201"])
def test_the_edge_segment_refresh_age_is_validated(raw: str) -> None:
    assert Settings.from_env({}).edge_segment_refresh_after_s == 60.0
    good = Settings.from_env({"SHELFEDGE_SEGMENT_REFRESH_AFTER_S": "0.5"})
    assert good.edge_segment_refresh_after_s == 0.5
    with pytest.raises(SettingsError, match="SHELFEDGE_SEGMENT_REFRESH_AFTER_S"):
        Settings.from_env({"SHELFEDGE_SEGMENT_REFRESH_AFTER_S": raw})
