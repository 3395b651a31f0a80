"""``python benchmarks/serve.py ROOT PORT [SLOW_BYTES_PER_SEC]``: the package's MediaServer, in a process.

Its listen backlog is raised from socketserver's 5, so hundreds of clients can connect at once.
"""

from __future__ import annotations

import signal
import sys
import threading

from tornado_engine.testing import MediaServer
from tornado_engine.testing import server as server_module


def main() -> None:
    root, port = sys.argv[1], int(sys.argv[2])
    slow = int(sys.argv[3]) if len(sys.argv) > 3 else 256 * 1024
    server_module._Server.request_queue_size = 1024
    srv = MediaServer(root, port=port, slow_bytes_per_sec=slow).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(srv.base_url, flush=True)
    stop.wait()
    srv.stop()


if __name__ == "__main__":
    main()
