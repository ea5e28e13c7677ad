"""The cache never hands back a wrong result: outs never share a file with the cache
or with each other, a dep is hashed from the file that was stat-ed, the outs lock
belongs to the project, a damaged copy is seen before a run relies on it, and an
out behind a link is refused. Real `mlci` processes, real files, a real cache."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mlci_tui.store import Store
from tests.helpers import (
    PYTHON,
    Project,
    mlci_env,
    notes_of,
    run_stages,
    stage_states,
    wait_for,
    why_rows,
)

TWINS = """
[stages.a]
command = "echo hello > a.txt"
deps = ["in.txt"]
outs = ["a.txt"]

[stages.b]
command = "mkdir -p out && echo hello > out/b.txt && echo hello > out/c.sh && chmod +x out/c.sh"
deps = ["in.txt"]
outs = ["out"]
"""


def objects(project: Project) -> dict[str, Path]:
    """The cache's files, by sha256."""
    root = project.state_dir / "cache" / "objects"
    return {path.parent.name + path.name: path for path in root.glob("*/*")}


def inode(path: Path) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_dev, info.st_ino


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_equal_outs_are_never_one_file(project: Project) -> None:
    project.write(TWINS)
    (project.path / "in.txt").write_text("in\n")
    outs = [project.path / "a.txt", project.path / "out" / "b.txt", project.path / "out" / "c.sh"]
    hello = sha(b"hello\n")
    assert stage_states(run_stages(project)) == {"a": "passed", "b": "passed"}
    for when in ("stored", "restored"):
        if when == "restored":
            (project.path / "a.txt").unlink()
            shutil.rmtree(project.path / "out")
            assert stage_states(run_stages(project)) == {"a": "cached", "b": "cached"}
        objects_path = objects(project)[hello]
        inodes = [inode(path) for path in outs] + [inode(objects_path)]
        assert len(set(inodes)) == len(inodes), when
        assert all(os.lstat(path).st_nlink == 1 for path in [*outs, objects_path]), when
    assert stat.S_IMODE(objects_path.stat().st_mode) == 0o444, "cache objects are read-only"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(outs[0].stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(outs[2].stat().st_mode) == 0o777 & ~umask
    # Written in place, one out changes alone: not its twin, not the cache.
    with open(outs[0], "a") as file:
        file.write("x\n")
    assert outs[1].read_text() == outs[2].read_text() == "hello\n"
    assert sha(objects_path.read_bytes()) == hello
    raw = notes_of(project.state_dir / "runs" / "2" / "a.log")
    methods = ("reflink", "copy_file_range", "copy")
    assert any(f"restored from the cache: a.txt ({how})" in raw for how in methods)
    assert stage_states(run_stages(project)) == {"a": "cached", "b": "cached"}
    assert outs[0].read_text() == "hello\n"


def test_outs_an_earlier_version_hard_linked_to_the_cache_are_unshared(project: Project) -> None:
    """A cache and work tree as mlci left them when it linked outs and objects: the
    first run un-shares every one, checked against its sha256, and drops an object
    that an out written in place through the link changed."""
    project.write(
        TWINS + '[stages.d]\ncommand = "echo other > d.txt"\ndeps = ["in.txt"]\nouts = ["d.txt"]\n'
    )
    (project.path / "in.txt").write_text("in\n")
    run_stages(project)
    found = objects(project)
    a, b, c, d = (project.path / name for name in ("a.txt", "out/b.txt", "out/c.sh", "d.txt"))
    hello, other = found[sha(b"hello\n")], found[sha(b"other\n")]
    # The old layout: each object is an out's own inode, linked by its equal outs.
    for out in (a, b):
        out.unlink()
    for path, obj in ((a, hello), (b, hello), (d, other)):
        path.unlink(missing_ok=True)
        obj.chmod(0o644)
        os.link(obj, path)
    c.unlink()
    os.link(hello, c)
    os.chmod(c, 0o755)  # one inode: the object, a.txt and b.txt are "executable" too
    # d.txt was written in place through its link: the object is damaged as well.
    with open(d, "r+") as file:
        file.write("OTHER")
    # Another project sharing the cache still links the object too.
    outside = project.path.parent / f"{project.path.name}-other-project.txt"
    os.link(hello, outside)
    assert os.lstat(hello).st_nlink == 5
    (project.state_dir / "cache" / "format").unlink(missing_ok=False)  # as earlier versions
    stages = run_stages(project)
    assert stage_states(stages) == {"a": "cached", "b": "cached", "d": "passed"}
    for path in (a, b, c, d):
        assert os.lstat(path).st_nlink == 1, path
    kept = objects(project)
    assert os.lstat(kept[sha(b"hello\n")]).st_nlink == 1
    assert stat.S_IMODE(os.lstat(kept[sha(b"hello\n")]).st_mode) == 0o444
    assert sha(kept[sha(b"hello\n")].read_bytes()) == sha(b"hello\n")
    assert a.read_text() == b.read_text() == c.read_text() == "hello\n"
    assert d.read_text() == "other\n"
    assert sha(kept[sha(b"other\n")].read_bytes()) == sha(b"other\n")
    assert (project.state_dir / "cache" / "format").read_text().strip() == "2"
    with open(a, "a") as file:
        file.write("x\n")
    assert b.read_text() == "hello\n"
    assert outside.read_text() == "hello\n" and os.lstat(outside).st_nlink == 1


def test_a_dep_replaced_while_it_is_hashed_is_never_cached_with_the_old_hash(
    project: Project,
) -> None:
    """`mv` over a large dep while the runner reads it: the entry must not pair the
    old content's hash with what the stage made of the new content."""
    project.write(
        """
[stages.use]
command = "sha256sum big.bin | cut -c1-64 > out.txt"
deps = ["big.bin"]
outs = ["out.txt"]
"""
    )
    size = 256 << 20
    big, new = project.path / "big.bin", project.path / "new.bin"

    def write(path: Path, first: bytes) -> str:
        block = first + bytes(range(256)) * 4095 + bytes(255)
        with open(path, "wb") as file:
            for _ in range(size // len(block)):
                file.write(block)
        return sha(path.read_bytes())

    old_sha = write(big, b"A")
    write(new, b"B")
    runner = project.start("run")
    fd_dir = Path(f"/proc/{runner.pid}/fd")

    def reading() -> bool:
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(fd_dir / fd) == str(big):
                    return True
            except OSError:
                continue
        return False

    deadline = time.monotonic() + 60
    while not reading():
        assert runner.poll() is None and time.monotonic() < deadline, (
            "the runner never read big.bin"
        )
    os.rename(new, big)
    still = [os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir) if _readable(fd_dir / fd)]
    assert f"{big} (deleted)" in still, "the hash ended before the rename: the race was not run"
    assert runner.wait(120) == 0, runner.stderr.read() if runner.stderr else ""
    log = notes_of(project.state_dir / "runs" / "1" / "use.log")
    assert "dep big.bin changed while the stage ran: its result is not cached" in log
    # The old content back: the stage must run on it, not restore the new one's result.
    big.unlink()
    assert write(big, b"A") == old_sha
    stages = run_stages(project)
    assert stages["use"]["state"] == "passed"
    assert (project.path / "out.txt").read_text().strip() == old_sha


def _readable(path: Path) -> bool:
    try:
        os.readlink(path)
    except OSError:
        return False
    return True


def test_two_configs_with_their_own_stores_take_turns_at_the_outs(project: Project) -> None:
    slow = """
[pipeline]
state_dir = "{store}"

[stages.a]
command = '''mkdir -p od; echo start-{store} > od/o.txt
while [ ! -e go ]; do sleep 0.02; done; echo end >> od/o.txt'''
deps = ["in.txt"]
outs = ["od"]
timeout = "20s"
"""
    (project.path / "in.txt").write_text("in\n")
    project.write(slow.replace("{store}", ".one"))
    other = Project(project.path)
    other.config_path = project.path / "other.toml"
    other.state_dir = project.path / ".two"
    other.config_path.write_text(slow.replace("{store}", ".two"))
    first = project.start("run")
    wait_for(lambda: (project.path / "od" / "o.txt").exists(), what="the first run's out")
    second = other.mlci("run")
    assert second.returncode == 2, second.stdout
    assert second.stderr.decode() == (
        "mlci: run 1 of config.toml is running in this project, and its stages write outs"
        " here too: wait for it to end, or cancel it\n"
    )
    (project.path / "go").touch()
    assert first.wait(60) == 0
    assert (project.path / "od" / "o.txt").read_text() == "start-.one\nend\n"
    assert not (other.state_dir / "runs" / "1").exists(), "the refused run was never recorded"
    assert other.mlci("run").returncode == 0
    assert (project.path / "od" / "o.txt").read_text() == "start-.two\nend\n"


def test_why_and_dry_run_see_a_damaged_copy_without_reading_the_cache(project: Project) -> None:
    project.write(
        '[stages.a]\ncommand = "head -c 67108864 /dev/zero > big.out"\n'
        'deps = ["in.txt"]\nouts = ["big.out"]\n'
    )
    (project.path / "in.txt").write_text("in\n")
    run_stages(project)
    (project.path / "big.out").unlink()
    assert _read_by_why(project) < 32 << 20, "why read the cache's 64 MiB copy"
    assert why_rows(project)["a"]["decision"] == "cached"
    (copy,) = objects(project).values()
    copy.chmod(0o644)
    with open(copy, "r+b") as file:
        file.write(b"X")
    expected = "outs damaged: the cache's copy of big.out was changed since it was stored"
    assert why_rows(project)["a"]["reasons"] == [expected]
    dry = project.mlci("run", "--dry-run").stdout.decode().splitlines()
    assert dry[1].split()[:2] == ["a", "run"] and expected in dry[1]
    stages = run_stages(project)
    assert stages["a"]["state"] == "passed" and stages["a"]["reasons"] == [expected]
    assert why_rows(project)["a"]["decision"] == "cached"


def _read_by_why(project: Project) -> int:
    """Bytes `mlci why` read (``rchar`` of /proc/self/io at its exit)."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write(open('/proc/self/io').read()))\n"
        "from mlci_tui.cli import entry\n"
        f"sys.argv = ['mlci', 'why', '--config', {str(project.config_path)!r}]\n"
        "entry()\n"
    )
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=project.path, env=mlci_env(), capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(": ") for line in result.stderr.decode().splitlines() if ": " in line)
    return int(fields["rchar"])


def test_an_out_behind_a_link_made_after_validation_is_never_removed(project: Project) -> None:
    elsewhere = project.path.parent / f"{project.path.name}-elsewhere"
    for name in ("data", "more"):
        (elsewhere / name).mkdir(parents=True)
        (elsewhere / name / "precious.txt").write_text("keep")
    # The link is made by a stage, once the run has validated the config.
    project.write(
        f"""
[stages.sneak]
command = "ln -s {elsewhere} build"
always = true

[stages.a]
command = "mkdir -p build/data && echo made > build/data/x"
needs = ["sneak"]
deps = ["in.txt"]
outs = ["build/data"]

[stages.b]
command = "mkdir -p build/more && echo made > build/more/x"
needs = ["sneak"]
outs = ["build/more"]
"""
    )
    (project.path / "in.txt").write_text("in\n")
    assert project.mlci("run").returncode == 1
    with Store.open(project.state_dir, create=False) as store:
        run = store.runs.get(1)
    assert run is not None
    for stage, out in (("a", "data"), ("b", "more")):
        record = run.stage(stage)
        assert record is not None and record.message == (
            f"out build/{out} is behind a link (build -> {elsewhere}): outs are removed"
            " before their stage runs, never through a link"
        )
        assert sorted(p.name for p in (elsewhere / out).iterdir()) == ["precious.txt"]
    # From now on the link is in the way of every command, named in one line.
    validated = project.mlci("validate")
    assert validated.returncode == 2
    assert validated.stderr.decode() == (
        f"{project.config_path}:10: stages.a.outs[0]: build/data is behind a link (build ->"
        f' "{elsewhere}"); outs are removed before their stage runs, never through a link\n'
    )


def test_a_cached_stage_names_the_store_whose_run_made_it(tmp_path: Path) -> None:
    """Two stores share one cache: a result made by the other store's run 1 is named
    with that store, in `status --json`, `mlci why --json` and the text."""
    cache = tmp_path / "shared-cache"
    config = (
        '[pipeline]\ncache_dir = "{cache}"\n[stages.a]\ncommand = "cat in.txt > o.txt"\n'
        'deps = ["in.txt"]\nouts = ["o.txt"]\n'
    )
    first, second = Project(tmp_path / "one"), Project(tmp_path / "two")
    for project in (first, second):
        project.path.mkdir()
        project.write(config.replace("{cache}", str(cache)))
        (project.path / "in.txt").write_text("same\n")
    run_stages(first)
    run_stages(second)
    stage = second.stage("a")
    assert stage["state"] == "cached"
    store = stage["cached_from"]["store"]
    assert stage["cached_from"]["run"] == 1
    assert store is not None and store["path"] == str(first.state_dir)
    where = f"in the store {first.state_dir} on {store['host']}"
    assert stage["reasons"] == [f"same inputs as run 1, stage a, {where}"]
    assert why_rows(second)["a"]["cached_from"]["store"] == store
    text = second.mlci("status").stdout.decode()
    assert f"from run 1, in the store {first.state_dir}" in text
    # The first store's own run names no store: it is this one.
    run_stages(first)
    assert first.stage("a")["cached_from"] == {"run": 1, "stage": "a", "store": None}


def test_a_dep_rewritten_with_its_old_time_while_the_stage_ran_is_not_cached(
    project: Project,
) -> None:
    """Same size, modification time put back: only the change time tells. A stage
    whose dep did that while it ran is not cached (mlci once let a dep whose only
    change was its change time through, after hashing it again)."""
    project.write(
        f"""
[stages.a]
command = "cat in.txt > out.txt; {PYTHON} rewrite.py"
deps = ["in.txt"]
outs = ["out.txt"]
"""
    )
    (project.path / "in.txt").write_text("one\n")
    (project.path / "rewrite.py").write_text(
        "import os\n"
        "info = os.stat('in.txt')\n"
        "with open('in.txt', 'r+') as file:\n"
        "    file.write('two\\n')\n"
        "os.utime('in.txt', ns=(info.st_atime_ns, info.st_mtime_ns))\n"
    )
    stages = run_stages(project)
    assert stages["a"]["state"] == "passed"
    log = notes_of(project.state_dir / "runs" / "1" / "a.log")
    assert "dep in.txt changed while the stage ran: its result is not cached" in log
    stages = run_stages(project)
    assert stages["a"]["state"] == "passed"
    assert stages["a"]["reasons"] == ["no cache entry"]
    assert stages["a"]["cached_from"] is None


def test_an_out_that_is_a_link_to_nothing_is_produced_cached_and_restored(
    project: Project,
) -> None:
    """Found by the cache's oracle: a link was judged by what it leads to."""
    project.write(
        '[stages.a]\ncommand = "ln -s nowhere pointer"\ndeps = ["in.txt"]\nouts = ["pointer"]\n'
    )
    (project.path / "in.txt").write_text("in\n")
    assert stage_states(run_stages(project)) == {"a": "passed"}
    (project.path / "pointer").unlink()
    assert stage_states(run_stages(project)) == {"a": "cached"}
    assert os.readlink(project.path / "pointer") == "nowhere"


def test_why_judges_a_dep_on_an_edited_out_as_the_run_restores_it(project: Project) -> None:
    """Found by the cache's oracle: a directory out written in place (not removed)
    was judged as it was, not as the cached stage would restore it."""
    project.write(
        """
[stages.make]
command = '''mkdir -p out/sub && cp in.txt out/sub/a.txt
ln -s sub/a.txt out/latest && ln -s sub out/all'''
deps = ["in.txt"]
outs = ["out"]

[stages.use]
command = "cat out/latest > used.txt"
needs = ["make"]
deps = ["out"]
outs = ["used.txt"]
"""
    )
    (project.path / "in.txt").write_text("x\n")
    run_stages(project)
    with open(project.path / "out" / "sub" / "a.txt", "a") as file:
        file.write("edited\n")
    (project.path / "out" / "extra.txt").write_text("not the stage's\n")
    assert {name: row["decision"] for name, row in why_rows(project).items()} == {
        "make": "cached",
        "use": "cached",
    }
    assert stage_states(run_stages(project)) == {"make": "cached", "use": "cached"}
    assert not (project.path / "out" / "extra.txt").exists()


def _restored_by(project: Project, cache_dir: Path) -> str:
    """Run a stage with a 1 MiB out twice, the out deleted between: how it came back,
    after checking that it is a file of its own, apart from the cache's copy."""
    project.write(
        f'[pipeline]\ncache_dir = "{cache_dir}"\n'
        '[stages.a]\ncommand = "head -c 1048576 /dev/urandom > big.out"\n'
        'deps = ["in.txt"]\nouts = ["big.out"]\n'
    )
    (project.path / "in.txt").write_text("in\n")
    run_stages(project)
    out = project.path / "big.out"
    content = out.read_bytes()
    out.unlink()
    assert stage_states(run_stages(project)) == {"a": "cached"}
    assert out.read_bytes() == content and os.lstat(out).st_nlink == 1
    (copy,) = (cache_dir / "objects").glob("*/*")
    assert os.lstat(copy).st_ino != os.lstat(out).st_ino
    with open(out, "r+b") as file:  # a reflink is copied on write: the cache keeps its own
        file.write(b"X")
    assert sha(copy.read_bytes()) == sha(content)
    log = notes_of(project.state_dir / "runs" / "2" / "a.log")
    return log.split("restored from the cache: big.out (")[1].split(")")[0]


def test_a_cache_on_another_filesystem_is_filled_and_read_by_copies(
    project: Project,
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no tmpfs at /dev/shm to put the cache on")
    cache_dir = Path(tempfile.mkdtemp(dir=shm))
    try:
        assert _restored_by(project, cache_dir) in ("copy", "copy_file_range")
    finally:
        shutil.rmtree(cache_dir)


def test_outs_go_in_and_out_by_reflink_where_the_filesystem_has_them(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("mkfs.xfs") is None:
        pytest.skip("needs root and mkfs.xfs (xfsprogs) to mount an XFS with reflinks")
    image, mount = tmp_path / "xfs.img", tmp_path / "xfs"
    with open(image, "wb") as file:
        file.truncate(512 << 20)
    mount.mkdir()
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=True)
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=False)
    if mounted.returncode != 0:
        pytest.skip("loop devices are refused here")
    try:
        project = Project(mount / "project")
        project.path.mkdir()
        assert _restored_by(project, project.state_dir / "cache") == "reflink"
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_why_says_unknown_where_only_restoring_an_out_would_tell(project: Project) -> None:
    """A directory out with a link that leads out of it, written in place: the walk of
    a dep over it follows the link, which `why` does not model; it says so."""
    project.write(
        """
[stages.make]
command = "mkdir -p out && cp in.txt out/a.txt && ln -s ../in.txt out/up"
deps = ["in.txt"]
outs = ["out"]

[stages.use]
command = "cat out/a.txt > used.txt"
needs = ["make"]
deps = ["out"]
outs = ["used.txt"]
"""
    )
    (project.path / "in.txt").write_text("x\n")
    run_stages(project)
    (project.path / "out" / "a.txt").write_text("edited\n")
    rows = why_rows(project)
    assert rows["make"]["decision"] == "cached"
    assert rows["use"]["decision"] == "unknown"
    assert rows["use"]["reasons"] == [
        "dep out holds out, which make restores first: judged once it is back"
    ]
    assert stage_states(run_stages(project)) == {"make": "cached", "use": "cached"}


def test_why_leaves_out_a_glob_dep_over_what_a_stage_that_runs_first_makes(
    project: Project,
) -> None:
    """Found by the cache's oracle (long profile): a stage after one that must run
    was said to run because its glob dep covered that stage's deleted out."""
    project.write(
        """
[stages.make]
command = "mkdir -p build && cp in.txt build/model.txt"
deps = ["in.txt"]
outs = ["build/model.txt"]

[stages.sum]
command = "cat build/*.txt > sum.out"
needs = ["make"]
deps = ["build/*.txt"]
outs = ["sum.out"]
"""
    )
    (project.path / "in.txt").write_text("x\n")
    (project.path / "build").mkdir()
    (project.path / "build" / "notes.txt").write_text("kept\n")
    run_stages(project)
    copy = objects(project)[sha(b"x\n")]
    copy.chmod(0o644)
    copy.write_text("damaged\n")
    (project.path / "build" / "model.txt").unlink()
    rows = why_rows(project)
    assert rows["make"]["decision"] == "run"
    assert rows["sum"]["decision"] == "unknown", rows["sum"]
    assert stage_states(run_stages(project)) == {"make": "passed", "sum": "cached"}


def test_a_directory_out_holding_a_pipe_is_not_cached_and_the_log_says_why(
    project: Project,
) -> None:
    """The cache holds files, links and directories: a directory out that also holds a
    pipe is left uncached, saying so, rather than cached and restored without it."""
    project.write(
        '[stages.a]\ncommand = "mkdir d && echo x > d/f && mkfifo d/q"\n'
        'deps = ["in.txt"]\nouts = ["d"]\n'
    )
    (project.path / "in.txt").write_text("in\n")
    assert stage_states(run_stages(project)) == {"a": "passed"}
    log = notes_of(project.state_dir / "runs" / "1" / "a.log")
    assert "not cached: " in log and "d/q is neither a file, a directory nor a link" in log
    shutil.rmtree(project.path / "d")
    assert stage_states(run_stages(project)) == {"a": "passed"}  # ran again: nothing cached
    assert stat.S_ISFIFO(os.lstat(project.path / "d" / "q").st_mode)
