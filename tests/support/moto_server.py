"""Starts moto's S3-compatible server on 127.0.0.1 for the Rust tests.

Prints "ready" once it accepts connections and exits by itself when the
process that started it goes away, so no test run leaves a server behind.
"""
import os
import sys
import time

from moto.server import ThreadedMotoServer

port = int(sys.argv[1])
parent = os.getppid()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print("ready", flush=True)
try:
    while os.getppid() == parent:
        time.sleep(0.3)
finally:
    server.stop()
