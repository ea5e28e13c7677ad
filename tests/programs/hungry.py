"""Hold MEGABYTES of memory and keep a core busy until the file GO exists:
`hungry.py MEGABYTES GO`."""

import os
import sys

held = bytearray(int(sys.argv[1]) * 1_000_000)
print("holding", len(held), flush=True)
while not os.path.exists(sys.argv[2]):
    sum(range(10_000))
