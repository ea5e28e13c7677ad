"""Write bytes given in hex to stdout (and stderr with --stderr): `raw.py HEX`."""

import os
import sys

fd = 2 if "--stderr" in sys.argv else 1
os.write(fd, bytes.fromhex(sys.argv[1]))
