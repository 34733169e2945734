from tests.media_fixtures import clips  # noqa: F401  (media clips: tests/media_fixtures.py)
from tests.plugin_fixtures import broken_plugins, example_plugin  # noqa: F401  (plugins installed by pip: tests/plugin_fixtures.py)
