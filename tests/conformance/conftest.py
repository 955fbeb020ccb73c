"""The conformance runner registers Kestra's test-only types when it starts; take them out again after
each test, so that the rest of the suite sees the production registry."""
from __future__ import annotations

import pytest

from conformance import plugins


@pytest.fixture(autouse=True)
def _production_registry_after_each_test():
    yield
    plugins.unload()
