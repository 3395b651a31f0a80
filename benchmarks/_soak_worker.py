"""``python benchmarks/_soak_worker.py WORKER OPTIONS...``: the shipped worker command (``python -m
tornado_engine worker``: data-dir lock, leftover sweep, signals, exit codes) with the soak's settings the
command line does not offer: S3 storage from ``$SOAK_S3`` (a JSON S3 config), a short socket timeout
(``$SOAK_SOCKET_TIMEOUT``, so a stalled source is cut in seconds) and short retry backoffs.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from tornado_engine import cli_worker
from tornado_engine.engine import Engine
from tornado_engine.retry import RetryPolicy
from tornado_engine.storage import S3Config


def main(argv: list[str]) -> int:
    storage = S3Config.model_validate(json.loads(os.environ["SOAK_S3"]))
    timeout = float(os.environ.get("SOAK_SOCKET_TIMEOUT", "3"))

    class SoakEngine(Engine):
        def __init__(self, **options: Any) -> None:
            retry = RetryPolicy(base_delay=0.2, max_delay=2.0)
            options.update(storage=storage, socket_timeout=timeout, retry=retry, expand_playlists=False)
            super().__init__(**options)

    cli_worker.Engine = SoakEngine  # type: ignore[attr-defined]
    return cli_worker.main(argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
