"""Write bytes given in hex to stdout: `raw.py HEX`."""

import os
import sys

os.write(1, bytes.fromhex(sys.argv[1]))
