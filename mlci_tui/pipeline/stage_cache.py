"""Incremental runs: a stage whose inputs did not change is not run again.

A stage's **cache key** is the sha256 of its inputs: its command, cwd, executor,
the non-secret environment its config gives it, the content of every dep, the
values of its params, its outs' names, and what each stage it needs produced
(the content of its outs and artifact; for one without any, its key). Deps are
hashed before the command starts and checked again after it: a dep that changed
while the stage ran keeps the result out of the cache.

A stage that passed leaves an entry under its key in the cache (`store.cache_dir`):
its outs, its metrics, the run that made it. The next time the key comes up the
stage is ``cached``: its outs are restored where they are missing or different,
its metrics come from the entry, and it takes milliseconds. When there is no
entry, the inputs are compared with those of the stage's latest entry, to say
why it runs: ``dep data.csv changed (a1b2c3d4… → c3d4e5f6…)``,
``param train.lr 0.05 → 0.01``, ``command changed``.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from mlci_tui.config import Config, StageConfig
from mlci_tui.events import StoreName
from mlci_tui.execution import executors
from mlci_tui.globs import Glob, covers
from mlci_tui.masking import SecretMasker
from mlci_tui.pipeline.outs import (
    ABSENT,
    CacheDamaged,
    Meta,
    Outs,
    glob_files,
    outs_behind_links,
    remove_outs,
    tree_files,
    valid_meta,
)
from mlci_tui.store import Store
from mlci_tui.store.cache_dir import (
    CacheDir,
    FileChanged,
    FileHasher,
    FileStat,
    canonical,
    file_stats,
    sha256_of,
)
from mlci_tui.store.records import ALWAYS, NO_DEPS

__all__ = ["CacheDamaged", "Decision", "StageCache", "plan", "remove_outs"]

KEY_FORMAT = 1
"""Part of every key: a change to what keys cover makes every entry a miss."""
SHORT = 8


_STAGE_INPUTS = frozenset(("command", "cwd", "executor", "env", "deps", "params", "needs", "outs"))
"""The inputs of every stage's key; an executor may add its own (`executors.cache_inputs`)."""


class CacheSource(NamedTuple):
    """The stage of the run whose result a cached stage reuses."""

    run: int | None
    stage: str
    store: StoreName | None = None
    """The run's store, when it is not this one (a shared cache)."""


class Decision(NamedTuple):
    """Whether a stage runs or is cached, and why."""

    stage: str
    key: str | None
    """None when it could not be worked out (a dep is missing, a stage it needs runs first)."""
    cached: bool
    reasons: tuple[str, ...]
    entry: Mapping[str, Any] | None = None
    dep_stats: Mapping[str, FileStat] | None = None
    inputs: Mapping[str, Any] | None = None
    problem: str | None = None
    """Why the stage cannot run at all (a dep that does not exist)."""
    runs: bool = False
    """Without a key: whether it runs whatever the stages it needs make (when planning)."""
    source: CacheSource | None = None
    """Where a cached stage's result comes from."""

    @property
    def verdict(self) -> str:
        """``cached``, ``run``, ``fail`` (a dep is missing), or ``unknown`` (a stage it
        needs runs first)."""
        if self.cached:
            return "cached"
        if self.problem is not None:
            return "fail"
        return "unknown" if self.key is None and not self.runs else "run"


class DepProblem(Exception):
    """A dep that is missing, unreadable, or not a file or a directory."""


class NotYetKnown(Exception):
    """When planning: a dep that only restoring a cached stage's outs would tell."""


def _overlap(one: str, other: str) -> bool:
    """Whether one of two paths is the other or inside it."""
    return one == other or one.startswith(other + os.sep) or other.startswith(one + os.sep)


def _check_dep(name: str, dep: Path) -> None:
    try:
        mode = dep.stat().st_mode
    except FileNotFoundError:
        raise DepProblem(f"dep {name} does not exist") from None
    except OSError as error:
        raise DepProblem(f"dep {name} cannot be read: {_reason(error)}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DepProblem(f"dep {name} is neither a file nor a directory")


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


def cached_text(source: CacheSource) -> str:
    where = "" if source.store is None else f", in {source.store.text}"
    return f"same inputs as run {source.run}, stage {source.stage}{where}"


def short(sha: str) -> str:
    return sha[:SHORT] + "…"


def valid_entry(entry: Mapping[str, Any], key: str) -> bool:
    """Whether an entry read from the cache is one mlci writes: one written by hand,
    by a later mlci or half by anything, is no entry (and is never acted on)."""
    try:
        outs = entry["outs"]
        return (
            entry.get("key") == key
            and isinstance(entry["inputs"], dict)
            and isinstance(outs, dict)
            and all(isinstance(name, str) and valid_meta(meta) for name, meta in outs.items())
            and all(isinstance(name, str) for name, _ in entry["metrics"])
            and isinstance(entry.get("run"), (int, type(None)))
            and isinstance(entry.get("stage"), str)
        )
    except (KeyError, TypeError, ValueError):
        return False


class StageCache:
    """Decides, restores and saves stages of one pipeline; safe to call from threads."""

    def __init__(
        self,
        config: Config,
        *,
        masker: SecretMasker | None = None,
        force: bool | Collection[str] = False,
        store: Store | None = None,
    ) -> None:
        self.config = config
        self.masker = masker or SecretMasker(())
        self.force = force
        self.store = store or Store.open(config.pipeline.state_dir)
        self.hasher = FileHasher(self.store.file_hashes)
        self.dir = CacheDir(config.pipeline.cache_dir, self.hasher)
        self.outs = Outs(self.hasher, self.dir)
        self._objects_private = False
        """Whether this run saw to it that no object shares its inode with an out."""
        self.products: dict[str, str] = {}
        """What each stage decided or finished so far produced (see the module's text)."""
        self.planned: dict[str, str] = {}
        """When only planning (`plan`): file → sha256 of the outs a cached stage would
        restore, so that the stages after it are judged on those."""
        self.restored_first: dict[str, tuple[str, list[tuple[str, str]] | None]] = {}
        """When only planning: each out a cached stage would restore (it is not as its
        entry says) → that stage, and the files a dep's walk would then find in it
        (None: not known before it is restored)."""
        self._lock = threading.Lock()
        self.here = self.store.store_id
        self._root = str(config.root) + os.sep
        # A directory dep (even the whole project) never takes in the store or the
        # cache: they change as the stage runs. An experiment's project lies inside
        # the store (its workspace): what is left out then is only what is outside it.
        # The project's own ``.mlci`` holds its outs lock even where the store is
        # elsewhere (and in an experiment's workspace).
        self._stores = [
            str(directory)
            for directory in dict.fromkeys(
                (config.pipeline.state_dir, config.pipeline.cache_dir, config.root / ".mlci")
            )
            if not self._root.startswith(str(directory) + os.sep)
        ]
        self._exclude: list[tuple[int, int]] = []
        for directory in self._stores:
            with contextlib.suppress(OSError):
                info = os.stat(directory)
                self._exclude.append((info.st_dev, info.st_ino))

    def close(self) -> None:
        self.store.close()

    def forced(self, stage: str) -> bool:
        return self.force is True or (not isinstance(self.force, bool) and stage in self.force)

    # Deciding ---------------------------------------------------------------------

    def decide(self, stage: StageConfig) -> Decision:
        """Whether ``stage`` runs or is cached, now that every stage it needs has ended."""
        with self._lock:
            decision = self._decide(stage)
        # Reasons name deps, params and gates, which a secret may be written into: they
        # reach the log, the summary, the store and `mlci why` as masked as a log line.
        mask = self.masker.mask_text
        return decision._replace(
            reasons=tuple(mask(reason) for reason in decision.reasons),
            problem=None if decision.problem is None else mask(decision.problem),
        )

    def _decide(self, stage: StageConfig) -> Decision:
        linked = outs_behind_links(stage.removed_before_run, self.config.root)
        if linked is not None:
            return Decision(stage.name, None, False, (linked,), problem=linked)
        waiting = [need for need in stage.needs if need not in self.products]
        if waiting:
            return self._waiting(stage, waiting)
        try:
            inputs, stats = self._inputs(stage)
        except DepProblem as error:
            problem = str(error)
            return Decision(stage.name, None, False, (problem,), problem=problem)
        except NotYetKnown as error:
            return Decision(stage.name, None, False, (f"{error}: judged once it is back",))
        key = sha256_of({"mlci": KEY_FORMAT, **inputs})

        def ran(*reasons: str) -> Decision:
            return Decision(stage.name, key, False, reasons, None, stats, inputs)

        if not stage.cacheable:
            return ran(ALWAYS if stage.always else NO_DEPS)
        if self.forced(stage.name):
            return ran("forced (--force)")
        entry = self._entry(key)
        # An entry names the outs its key covers; one that names others is no entry
        # (it was not written by mlci: restoring it could write anywhere).
        if entry is None or sorted(entry["outs"]) != sorted(inputs["outs"]):
            return ran(*self._differences(stage.name, inputs))
        for name, meta in entry["outs"].items():
            missing = self._missing(name, meta)
            if missing is not None:
                return ran(missing)
        source = CacheSource(entry["run"], entry["stage"], self._store_of(entry))
        reason = cached_text(source)
        return Decision(stage.name, key, True, (reason,), entry, stats, inputs, source=source)

    def _store_of(self, entry: Mapping[str, Any]) -> StoreName | None:
        """The store whose run made ``entry``, if it is not this one."""
        if entry.get("store") == self.here:
            return None
        path, host = entry.get("state_dir"), entry.get("host")
        return StoreName(
            str(entry.get("store")),
            path if isinstance(path, str) else None,
            host if isinstance(host, str) else None,
        )

    def _waiting(self, stage: StageConfig, waiting: list[str]) -> Decision:
        """A stage after one that runs first: it runs too when forced, when it is never
        cached, or when its own inputs match none of its entries; else it is unknown."""
        if not stage.cacheable or self.forced(stage.name):
            reason = "forced (--force)" if stage.cacheable else ALWAYS if stage.always else NO_DEPS
            return Decision(stage.name, None, False, (reason,), runs=True)
        unknown = Decision(
            stage.name,
            None,
            False,
            (f"needs {waiting[0]}, which runs first: cached if what it makes is the same",),
        )
        try:
            inputs, _ = self._inputs(stage, known_needs=False)
        except (DepProblem, NotYetKnown):
            return unknown
        # What the stages that run first make is left out: only the stage's own inputs,
        # without a dep that holds (or is in) something one of them makes.
        made = [str(path) for path in self._made_first(stage)]
        bases = {
            self._relative(dep): str(dep.base if isinstance(dep, Glob) else dep)
            for dep in stage.deps
        }

        def own(deps: Mapping[str, Any]) -> dict[str, Any]:
            return {
                name: sha
                for name, sha in deps.items()
                if not any(_overlap(bases.get(name, self._root + name), m) for m in made)
            }

        mine = {**inputs, "needs": {}, "deps": own(inputs["deps"])}
        reasons: list[str] = []
        for key in self.store.runs.cache_keys(stage.name, limit=50):
            entry = self._entry(key)
            if entry is None:
                continue
            before = entry.get("inputs", {})
            theirs = {**before, "needs": {}, "deps": own(before.get("deps", {}))}
            if theirs == mine:
                return unknown
            if not reasons:
                reasons = [
                    reason
                    for reason in self._differences(stage.name, mine, before=theirs)
                    if reason != "no cache entry"
                ]
        if not reasons:
            return unknown
        return Decision(stage.name, None, False, tuple(reasons), runs=True)

    def _made_first(self, stage: StageConfig) -> list[Path]:
        """What the stages before ``stage`` that are not settled yet make: those it
        needs, and those they need, that run first or wait for one that does."""
        found: list[Path] = []
        pending = [need for need in stage.needs if need not in self.products]
        seen = set(pending)
        while pending:
            before = self.config.stages.get(pending.pop())
            if before is None:
                continue
            found += before.products
            for need in before.needs:
                if need not in self.products and need not in seen:
                    seen.add(need)
                    pending.append(need)
        return found

    def _inputs(
        self, stage: StageConfig, *, known_needs: bool = True
    ) -> tuple[dict[str, Any], dict[str, FileStat]]:
        deps: dict[str, str] = {}
        stats: dict[str, FileStat] = {}
        cut = len(self._root)
        try:
            for dep in stage.deps:
                name = self._relative(dep)
                if isinstance(dep, Glob) or self._restored_over(dep):
                    deps[name], many = self._files_digest(stage, dep, name)
                    stats.update(many)
                elif str(dep) in self.planned:
                    deps[name] = self.planned[str(dep)]
                else:
                    _check_dep(name, dep)
                    if dep.is_dir():
                        files = self._dep_files(stage, dep)
                        deps[name], many = self.hasher.digest_of(files, cut)
                        stats.update(many)
                    else:
                        found = self.hasher.hashes([str(dep)]).get(str(dep))
                        if found is None:
                            raise DepProblem(f"dep {name} does not exist")
                        deps[name], stats[str(dep)] = found
        except OSError as error:
            where = self._relative(Path(error.filename)) if error.filename else "a dep"
            raise DepProblem(f"dep {where} cannot be read: {_reason(error)}") from None
        pipeline = self.config.pipeline
        env = self._env({**pipeline.env, **stage.env})
        command = stage.command
        inputs: dict[str, Any] = {
            "command": self.masker.mask_text(command)
            if isinstance(command, str)
            else [self.masker.mask_text(part) for part in command],
            "cwd": self._relative(stage.cwd),
            "executor": stage.executor,
            "env": env,
            "deps": deps,
            "params": {name: self.config.params[name] for name in stage.params},
            "needs": {need: self.products[need] for need in stage.needs} if known_needs else {},
            "outs": [self._relative(out) for out in stage.products],
        }
        inputs.update(executors.cache_inputs(stage.executor, self.config, self._env))
        # As an entry holds them (arrays as lists), so that the two compare.
        return json.loads(canonical(inputs)), stats

    def _env(self, env: Mapping[str, str]) -> dict[str, str]:
        """An environment as a key holds it: each value's sha256, secrets left out."""
        secrets = self.config.pipeline.secrets
        return {
            name: sha256_of(value)
            for name, value in env.items()
            if name not in secrets and self.masker.mask_text(value) == value
        }

    def _dep_files(self, stage: StageConfig, dep: Path | Glob) -> dict[str, FileStat]:
        """The files a glob or directory dep covers, with their stats, but for the
        stage's own products (a stage that rewrote its input would never be cached)."""
        base = str(dep.base if isinstance(dep, Glob) else dep)
        files = (
            glob_files(dep, self._exclude)
            if isinstance(dep, Glob)
            else tree_files(base, self._exclude)
        )
        # Also by name: the cache may be made only once the run is under way.
        under = base if base.endswith(os.sep) else base + os.sep
        left_out = [
            path
            for path in (*map(str, stage.products), *self._stores)
            if path.startswith(under) or _overlap(path, base)
        ]
        if not left_out:
            return files
        inside = tuple(path + os.sep for path in left_out)
        return {f: s for f, s in files.items() if f not in left_out and not f.startswith(inside)}

    def _restored_over(self, dep: Path) -> bool:
        """When planning: whether a directory dep holds (or is in) an out that a cached
        stage restores first; a file of such an out is judged by `planned`."""
        if str(dep) in self.planned:
            return False
        return any(_overlap(out, str(dep)) for out in self.restored_first)

    def _files_digest(
        self, stage: StageConfig, dep: Path | Glob, name: str
    ) -> tuple[str, Mapping[str, FileStat]]:
        """The digest of a glob or directory dep, and the stats of its files; when
        planning, with the outs cached stages restore first as they will be."""
        cut = len(self._root)
        files = self._dep_files(stage, dep)
        base = str(dep.base if isinstance(dep, Glob) else dep)
        restored = {out: found for out, found in self.restored_first.items() if _overlap(out, base)}
        if not restored:
            if isinstance(dep, Glob) and not files:
                raise DepProblem(f"dep {name} matches no file")
            if not isinstance(dep, Glob):
                _check_dep(name, dep)
            return self.hasher.digest_of(files, cut)
        kept = [f for f in files if not any(_overlap(out, f) for out in restored)]
        planned: dict[str, str] = {}
        for out, (owner, walk) in restored.items():
            # A directory dep inside a restored out: an empty directory, or no
            # directory at all, can only be told apart once it is restored.
            inside = not isinstance(dep, Glob) and base.startswith(out + os.sep)
            if walk is None or (inside and not any(p.startswith(base + os.sep) for p, _ in walk)):
                raise NotYetKnown(
                    f"dep {name} holds {self._relative(Path(out))}, which {owner} restores first"
                )
            for path, sha in walk:
                if self._covers(stage, dep, path):
                    planned[path] = sha
        if not kept and not planned and isinstance(dep, Glob):
            raise DepProblem(f"dep {name} matches no file")
        hashes = self.hasher.hashes(kept)
        shas = {path: found[0] for path, found in hashes.items()} | planned
        ordered = sorted(shas, key=lambda path: path.split(os.sep))
        digest = sha256_of([[path[cut:], shas[path]] for path in ordered])
        return digest, {path: found[1] for path, found in hashes.items()}

    def _covers(self, stage: StageConfig, dep: Path | Glob, path: str) -> bool:
        """Whether ``path`` is among the files a glob or directory dep covers."""
        if isinstance(dep, Glob):
            base = str(dep.base)
            if not path.startswith(base + os.sep):
                return False
            if not covers(dep.pattern, path[len(base) + 1 :].split(os.sep)):
                return False
        elif not path.startswith(str(dep) + os.sep):
            return False
        left_out = [*map(str, stage.products), *self._stores]
        return not any(path == p or path.startswith(p + os.sep) for p in left_out)

    def _relative(self, path: Path | Glob) -> str:
        return os.path.relpath(str(path), self.config.root)

    def _differences(
        self, stage: str, inputs: Mapping[str, Any], before: Mapping[str, Any] | None = None
    ) -> list[str]:
        """How ``inputs`` differ from ``before``, by default those of the stage's latest
        entry."""
        if before is None:
            previous = self._previous(stage)
            if previous is None:
                return ["no cache entry"]
            before = previous.get("inputs", {})
        reasons: list[str] = []
        for name in ("command", "cwd", "executor"):
            if before.get(name) != inputs[name]:
                detail = "" if name == "command" else f" ({before.get(name)} → {inputs[name]})"
                reasons.append(f"{name} changed{detail}")
        reasons += _changed("env", before.get("env", {}), inputs["env"], values=False)
        reasons += _changed("dep", before.get("deps", {}), inputs["deps"], values=False)
        reasons += _changed("param", before.get("params", {}), inputs["params"], values=True)
        for need, product in inputs["needs"].items():
            if before.get("needs", {}).get(need) != product:
                reasons.append(f"what {need} produced changed")
        if before.get("outs") != inputs["outs"]:
            reasons.append("outs changed")
        # What the executor's settings give (`executors.cache_inputs`), by their names.
        for name in sorted((set(before) | set(inputs)) - _STAGE_INPUTS):
            if before.get(name) != inputs.get(name):
                reasons.append(f"{name.replace('_', ' ', 1)} changed")
        return reasons or ["no cache entry"]

    def _previous(self, stage: str) -> Mapping[str, Any] | None:
        """The stage's latest entry that is still in the cache."""
        for key in self.store.runs.cache_keys(stage):
            entry = self._entry(key)
            if entry is not None:
                return entry
        return None

    def _entry(self, key: str) -> Mapping[str, Any] | None:
        try:
            entry = self.dir.read_entry(key)
        except ValueError:  # a key that is not a sha256: from a store written by hand
            return None
        return entry if entry is not None and valid_entry(entry, key) else None

    # Outs ------------------------------------------------------------------------

    def _missing(self, name: str, meta: Meta) -> str | None:
        """Why the out ``name`` can be neither found as the entry has it nor made so;
        None if it can. The cache's copies are judged by their identities, which any
        write changes: deciding reads none of them, restoring checks their content."""
        try:
            current = self.outs.snapshot(self.config.root / name).meta
        except (OSError, ValueError):
            current = None
        if current == meta:
            return None
        found = self.outs.unavailable(meta)
        if found == "damaged":
            return f"outs damaged: the cache's copy of {name} was changed since it was stored"
        if found == "missing":
            return f"outs missing: {name} is neither here nor in the cache"
        return None

    def restore(self, decision: Decision) -> list[str]:
        """Make a cached stage's outs what its entry says; the names of those restored,
        each with how its files were copied. Raises `CacheDamaged` if an object was
        changed since it was stored."""
        assert decision.entry is not None
        with self._lock:
            self._make_objects_private()
            restored = []
            for name, meta in decision.entry["outs"].items():
                path = self.config.root / name
                try:
                    current = self.outs.snapshot(path)
                except ValueError:  # neither file, directory nor link: replaced
                    current = ABSENT
                self.outs.unshare(current)  # what an earlier mlci linked
                if current.meta == meta:
                    continue
                linked = outs_behind_links([path], self.config.root)
                if linked is not None:
                    raise ValueError(linked)
                methods = self.outs.restore(path, meta, current, name)
                restored.append(f"{name} ({', '.join(sorted(methods))})" if methods else name)
            return restored

    def _make_objects_private(self) -> None:
        """Once per run (and really once per cache): objects that earlier versions of
        mlci hard-linked with outs get inodes of their own."""
        if not self._objects_private:
            self._objects_private = True
            with contextlib.suppress(OSError):
                self.dir.make_objects_private()

    def plan_outs(self, decision: Decision) -> None:
        """Take a cached stage's outs to be as its entry says (they are not restored)."""
        assert decision.entry is not None
        for name, meta in decision.entry["outs"].items():
            path = self.config.root / name
            self.planned.update(self.outs.planned_files(path, meta))
            try:
                current = self.outs.snapshot(path).meta
            except (OSError, ValueError):
                current = None
            if current != meta:
                walk = self.outs.planned_walk(path, meta)
                self.restored_first[str(path)] = (decision.stage, walk)

    # Saving ----------------------------------------------------------------------

    def save(
        self, stage: StageConfig, decision: Decision, metrics: Mapping[str, float], run_id: int
    ) -> list[str]:
        """After ``stage`` passed: remember what it produced, and cache it when it may be.
        Returns notes for its log (why the result was not cached)."""
        import socket  # imported when needed: `mlci why` never saves

        with self._lock:
            self._make_objects_private()
            outs: dict[str, Meta] = {}
            snapshots = []
            for out in stage.products:
                snapshot = self.outs.snapshot(out)
                assert snapshot.meta is not None, "the engine checks that every out was produced"
                outs[self._relative(out)] = snapshot.meta
                snapshots.append(snapshot)
            key = decision.key
            product = sha256_of(outs) if outs else key
            if product is not None:
                self.products[stage.name] = product
            if not stage.cacheable or key is None or decision.dep_stats is None:
                return []
            changed = self._changed_deps(stage, decision.dep_stats)
            if changed:
                return [f"dep {changed} changed while the stage ran: its result is not cached"]
            try:
                for snapshot in snapshots:
                    self.outs.store(snapshot)
                self.dir.write_entry(
                    key,
                    {
                        "key": key,
                        "stage": stage.name,
                        "run": run_id,
                        "store": self.here,
                        "state_dir": str(self.config.pipeline.state_dir),
                        "host": socket.gethostname(),
                        "created_at": time.time(),
                        "inputs": decision.inputs,
                        "outs": outs,
                        "product": product,
                        # Pairs, not an object: entries are written with sorted keys,
                        # and metrics keep the order the stage reported them in.
                        "metrics": list(metrics.items()),
                    },
                )
            except FileChanged as error:
                written = self._relative(Path(str(error)))
                return [f"out {written} changed as it was cached: its result is not cached"]
            except OSError as error:
                return [f"not cached: {error.strerror or error}"]
            return []

    def _changed_deps(self, stage: StageConfig, before: Mapping[str, FileStat]) -> str | None:
        now: dict[str, FileStat] = {}
        for dep in stage.deps:
            if isinstance(dep, Glob) or dep.is_dir():
                now.update(self._dep_files(stage, dep))
            else:
                now.update(file_stats([str(dep)]))
        for path in sorted(set(before) | set(now)):
            old, new = before.get(path), now.get(path)
            if old != new and not self._same_bytes(path, old, new):
                return self._relative(Path(path))
        return None

    def _same_bytes(self, path: str, old: FileStat | None, new: FileStat | None) -> bool:
        """Whether a dep whose ctime alone changed holds what it held, read again to be
        sure. A link made to a file or removed changes its ctime: an experiment's
        workspace shares a large dep with the cache by links, which other experiments
        make and remove while this one's stage runs."""
        if old is None or new is None or old[:4] != new[:4]:
            return False
        memo = self.hasher.table.remembered([path]).get(path)
        if memo is None or tuple(memo[:5]) != old:
            return False
        try:
            found = self.hasher.hashes([path]).get(path)
        except OSError:
            return False
        return found is not None and found == (memo[6], new)

    def cached(self, stage: StageConfig, decision: Decision) -> None:
        """A cached stage produced what its entry says."""
        assert decision.entry is not None
        product = decision.entry.get("product") or decision.key
        if product is not None:
            with self._lock:
                self.products[stage.name] = str(product)


def plan(cache: StageCache, stages: Mapping[str, StageConfig]) -> list[Decision]:
    """What a run of ``stages`` would do, stage by stage, without running or restoring
    anything: a stage after one that runs is ``unknown`` when that one has outs."""
    decisions = []
    for stage in stages.values():
        decision = cache.decide(stage)
        if decision.cached:
            cache.cached(stage, decision)
            cache.plan_outs(decision)
        elif decision.key is not None and not stage.products:
            cache.products[stage.name] = decision.key
        decisions.append(decision)
    return decisions


class Collected(NamedTuple):
    """What `collect_garbage` removed (or would), and what it kept."""

    entries: int
    objects: int
    bytes: int
    """Bytes freed: of removed files that nothing else links to."""
    kept_entries: int
    kept_bytes: int


def collect_garbage(
    config: Config, store: Store, *, keep_runs: int, dry_run: bool = False
) -> Collected:
    """Remove the entries this store made that neither the newest ``keep_runs`` runs nor
    the run of any kept version (the live one included) used, then every file no
    remaining entry needs. Entries other stores made (a shared cache), and entries
    mlci cannot read (a later mlci's), stay."""
    hasher = FileHasher(store.file_hashes)
    directory = CacheDir(config.pipeline.cache_dir, hasher)
    outs = Outs(hasher, directory)
    here = store.store_id
    kept_keys = store.runs.cache_keys_kept(keep_runs)
    needed: set[str] = set()
    removed = kept = 0
    for key, path in list(directory.entries()):
        try:
            entry = directory.read_entry(key)
        except ValueError:
            entry = None
        if entry is None or not valid_entry(entry, key):
            kept += 1
            continue
        if entry.get("store") != here or key in kept_keys:
            kept += 1
            for meta in entry["outs"].values():
                needed |= outs.objects_of(meta)
            continue
        removed += 1
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    objects = freed = kept_bytes = 0
    for sha, path in list(directory.objects()):
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if sha in needed:
            kept_bytes += info.st_size
            continue
        objects += 1
        freed += info.st_size if info.st_nlink == 1 else 0
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    if not dry_run:
        directory.clear_temporary()
        store.file_hashes.forget_gone()
    return Collected(removed, objects, freed, kept, kept_bytes)


def _changed(
    what: str, before: Mapping[str, Any], after: Mapping[str, Any], *, values: bool
) -> list[str]:
    reasons = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            reasons.append(f"{what} {name} added")
        elif name not in after:
            reasons.append(f"{what} {name} removed")
        elif before[name] != after[name]:
            if values:
                old, new = json.dumps(before[name]), json.dumps(after[name])
                reasons.append(f"{what} {name} {old} → {new}")
            elif what == "dep":
                reasons.append(f"dep {name} changed ({short(before[name])} → {short(after[name])})")
            else:
                reasons.append(f"{what} {name} changed")
    return reasons
