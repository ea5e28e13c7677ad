"""`mutmut` for this tree: `python tests/mutation.py run` (README, "Development").

mutmut copies `tests/` into `mutants/` following links, and `tests/configs/bad/`
holds a link to its own parent (an out behind a link), which it would follow
until the system refuses; copied as links, they stay what they are. A link cannot
be copied over itself, so each run starts from a fresh copy of the tests. Run as a
script, not as `tests.mutation`: the tests must be imported from the copy alone.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from mutmut.__main__ import cli

_copytree = shutil.copytree


def _copytree_keeping_links(
    source: str | Path, destination: str | Path, symlinks: bool = False, *args: Any, **options: Any
) -> Any:
    return _copytree(source, destination, True, *args, **options)


if __name__ == "__main__":
    shutil.copytree = _copytree_keeping_links
    shutil.rmtree(Path("mutants", "tests"), ignore_errors=True)
    sys.exit(cli())
