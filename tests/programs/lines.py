"""Print COUNT numbered lines: `lines.py COUNT [PREFIX]`."""

import sys

count = int(sys.argv[1])
prefix = sys.argv[2] if len(sys.argv) > 2 else "line"
out = sys.stdout
out.writelines(f"{prefix} {i:07d} {'x' * 40}\n" for i in range(count))
