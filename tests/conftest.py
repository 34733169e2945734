from tests.media_fixtures import clips  # noqa: F401  (media clips: tests/media_fixtures.py)
