"""Copying and hashing artifacts: links kept as links, never followed out of the
artifact, names hashed as bytes, and the digest of a plain tree as it always was."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mlci_tui.errors import RegistryError
from mlci_tui.registry.artifacts import digest, stage_copy


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_plain_tree_hashes_as_it_always_did(tmp_path: Path) -> None:
    # Every file's path, size and sha256, in the order of the paths' parts.
    root = tree(tmp_path / "m", {"a/b": "1", "a-c": "22", "a/b2/x": "333", "A": "4"})
    lines = []
    for relative in ["A", "a/b", "a/b2/x", "a-c"]:
        data = (root / relative).read_bytes()
        lines.append(f"{relative}\0{len(data)}\0{hashlib.sha256(data).hexdigest()}\n")
    expected = hashlib.sha256("".join(lines).encode()).hexdigest()
    assert digest(root) == (expected, 7)


def test_links_inside_are_copied_as_links_and_hashed_by_target(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", {"weights.bin": "w", "sub/config": "c"})
    (root / "latest").symlink_to("weights.bin")
    (root / "dir").symlink_to("sub")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    before, size = digest(root)
    staging = stage_copy(root, tmp_path / "store")
    copy = staging / "m"
    assert os.readlink(copy / "latest") == "weights.bin"
    assert os.readlink(copy / "dir") == "sub" and not (copy / "dir" / "config").is_symlink()
    assert digest(copy) == (before, size) and size == 2
    (root / "latest").unlink()
    (root / "latest").symlink_to("sub/config")
    assert digest(root)[0] != before


@pytest.mark.parametrize("target", ["/etc/hostname", "../outside", "missing"])
def test_a_link_out_of_the_artifact_is_refused_in_one_line(tmp_path: Path, target: str) -> None:
    root = tree(tmp_path / "m", {"weights.bin": "w"})
    (tmp_path / "outside").write_text("secret")
    (root / "leak").symlink_to(target)
    with pytest.raises(RegistryError) as raised:
        stage_copy(root, tmp_path / "store")
    message = str(raised.value)
    assert message == (
        f"{root}: leak links to {target}, outside the artifact; only links within it are stored"
    )
    assert not list((tmp_path / "store").iterdir())  # nothing left half-copied


def test_names_that_are_not_utf8_are_hashed_as_bytes(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    with open(os.path.join(os.fsencode(root), b"caf\xe9.bin"), "wb") as file:
        file.write(b"x")
    line = b"caf\xe9.bin\x001\x00" + hashlib.sha256(b"x").hexdigest().encode() + b"\n"
    assert digest(root) == (hashlib.sha256(line).hexdigest(), 1)
