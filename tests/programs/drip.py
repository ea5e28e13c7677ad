"""Write DATA to stdout one byte at a time, flushing after each: `drip.py DATA`."""

import os
import sys
import time

for byte in sys.argv[1].encode():
    os.write(1, bytes([byte]))
    time.sleep(0.002)
os.write(1, b"\n")
