"""Prints a line, then waits inside try/finally: SIGTERM's default action must skip the finally."""

import sys
import threading

try:
    print("waiting", flush=True)
    threading.Event().wait(60)
finally:
    print("finally ran", flush=True)
    sys.exit(7)
