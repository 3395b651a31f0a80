"""Storage servers on 127.0.0.1 for the test suite: emulator launchers and an OSS test server."""

from .launchers import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    EmulatorError,
    azurite,
    free_port,
    gcs_emulator,
    moto_iam_server,
    moto_server,
)
from .oss_server import OSSServer

__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_KEY",
    "EmulatorError",
    "OSSServer",
    "azurite",
    "free_port",
    "gcs_emulator",
    "moto_iam_server",
    "moto_server",
]
