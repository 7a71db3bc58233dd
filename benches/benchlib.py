"""What the bench scripts share: a free loopback port, and waiting for a server to listen on one.

The scripts run as `python3 benches/NAME.py`, so this module is found beside them.
"""

import socket
import sys
import time


def free_port():
    """A TCP port on 127.0.0.1 nothing listens on (the OS picks it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(port, tries=200):
    """Waits until something accepts on 127.0.0.1:port; exits naming the port if nothing does."""
    for _ in range(tries):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on port {port}")
