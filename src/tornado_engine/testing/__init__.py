"""A test kit shipped with the package: generated media fixtures and a local media server with faults.

Used by the test suite and by the ``demo`` CLI command; everything stays on 127.0.0.1.
"""

from tornado_engine.errors import MediaGenerationError
from tornado_engine.testing.media import MediaSet, generate_media, write_pages
from tornado_engine.testing.server import MediaServer, ServedRequest

__all__ = [
    "MediaGenerationError", "MediaServer", "MediaSet", "ServedRequest", "generate_media", "write_pages",
]  # fmt: skip
