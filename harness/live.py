"""Live view: every trial of a run, as it finishes, mirrored into an Optuna storage, so that
`optuna-dashboard` shows an experiment while it runs (config `live.enabled=true`).

    harness problem=bbob strategy=random budget.trials=500 live.enabled=true
    optuna-dashboard results/default/_optuna.journal

One Optuna study per run, named by its `run_id`, in one storage per experiment (default: the
journal file `<results_dir>/<experiment>/_optuna.journal`; `live.storage` takes another journal
file or any Optuna storage URL, e.g. `sqlite:///live.db`). The study carries the run's strategy,
problem, seed and budgets as user attributes and the problem's objective direction; each row
becomes one finished trial: `ok` -> COMPLETE with its objective, `failed` -> FAIL, `pruned` ->
PRUNED, with the active params and their distributions from the search space, the per-epoch
history as intermediate values, and the row's trial id, budget, test objective, error and
metrics as trial user attributes. This works for every strategy: it reads rows, not a study.

The Parquet rows stay the record; the mirror is a view of them. It never stops a run: a storage
that cannot be written gives one warning and the run goes on without it. A resumed run continues
its study and adds only the rows not mirrored yet (trial attribute `harness_trial_id`); enabling
the option on a finished run mirrors its recorded trials. A trial that is lost with the last
flush after a `kill -9` and run again on resume keeps its first mirrored values.

The journal file is written without an fsync per trial (Optuna's own file backend syncs every
append, which would cost more than a cheap trial); it is synced at most every `flush_seconds`
and when the run ends, as the run's own files are. Optuna is imported only when the option is on.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.log import get_logger
from harness.space import BoolParam, CategoricalParam, FloatParam, IntParam, Param, SearchSpace

JOURNAL_FILE = "_optuna.journal"  # "_": a pandas or pyarrow read of the experiment folder skips it
TRIAL_ATTR = "harness_trial_id"  # the row's trial id: what a resumed run checks before adding a row
_URL_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql", "mariadb", "cockroachdb")
_MAX_ERROR = 2000  # characters of a failed trial's error kept as a trial attribute

log = get_logger(__name__)


# -- settings ------------------------------------------------------------------------------------
def storage_from_config(cfg: Mapping[str, Any], *, base_dir: Path | None) -> tuple[bool, str | None]:
    """`(enabled, storage)` from the config's `live` section; `ConfigError` naming the value and
    the fix. `storage` is None (the experiment's journal file), an absolute journal file path, or
    a database URL (`<scheme>://...`), passed to Optuna unchanged."""
    section = cfg.get("live")
    if section is None:
        return False, None
    if not isinstance(section, Mapping):
        raise ConfigError(f"live must be a mapping (enabled, storage), but got {section!r}; e.g. `live.enabled=true`")
    enabled = section.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"live.enabled must be true or false, but got {enabled!r}; e.g. `live.enabled=true`")
    storage = section.get("storage")
    if storage is None:
        return enabled, None
    fix = (
        "pass a journal file path (live.storage=/path/to/live.journal), a database URL "
        "(live.storage=sqlite:///live.db), or live.storage=null for results/<experiment>/_optuna.journal"
    )
    if not isinstance(storage, str) or not storage.strip():
        raise ConfigError(f"live.storage must be a journal file path or an Optuna storage URL, but got {storage!r}; {fix}")
    if "://" in storage:
        scheme = storage.split("://", 1)[0].split("+", 1)[0].lower()
        if scheme not in _URL_SCHEMES:
            raise ConfigError(
                f"live.storage={storage!r}: {scheme!r} is not a database Optuna can store "
                f"studies in ({', '.join(_URL_SCHEMES)}); {fix}"
            )
        return enabled, storage
    path = Path(storage).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.is_dir():
        raise ConfigError(
            f"live.storage={storage!r} is a folder; it must name a journal file, e.g. live.storage={str(path / JOURNAL_FILE)!r}"
        )
    return enabled, str(path)


def default_storage(results_dir: Path, experiment: str) -> str:
    """The experiment's journal file: every run of the experiment is one study in it."""
    return str(Path(results_dir) / experiment / JOURNAL_FILE)


# -- the search space as Optuna distributions ------------------------------------------------------
def distribution(p: Param) -> Any:
    """The Optuna distribution of one parameter: what `trial.suggest_*` in
    `harness.strategies._optuna.suggest_params` declares for it."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(p, IntParam):
        return IntDistribution(p.low, p.high, log=p.log, step=p.step)
    if isinstance(p, FloatParam):
        return FloatDistribution(p.low, p.high, log=p.log)
    if isinstance(p, CategoricalParam):
        return CategoricalDistribution(list(p.choices))
    if isinstance(p, BoolParam):
        return CategoricalDistribution([False, True])
    raise TypeError(f"unsupported parameter kind {type(p).__name__} for {p.name!r}")  # pragma: no cover


# -- the mirror -----------------------------------------------------------------------------------
class OptunaMirror:
    """One run's study in an Optuna storage; `add(row)` mirrors a finished trial's row.

    Never raises: the first error (an unwritable file, a database that went away) is logged as a
    warning and the mirror turns itself off for the rest of the run."""

    def __init__(
        self,
        storage: str,
        *,
        study_name: str,
        direction: str,
        space: SearchSpace,
        objective_name: str,
        attrs: Mapping[str, Any],
        flush_seconds: float = 1.0,
        fresh: bool = False,
    ):
        """`fresh`: delete the study first (the run starts over: `overwrite=true`)."""
        self.storage_name = storage
        self.enabled = True
        self.study: Any = None
        self._params = {p.name: p for p in space.params}
        self._objective_name = objective_name
        self._journal: _JournalFile | None = None
        self._mirrored: set[int] = set()
        try:
            from harness.strategies._optuna import _import_optuna

            optuna = self._optuna = _import_optuna()
            self._dists = {p.name: distribution(p) for p in space.params}
            self._states = optuna.trial.TrialState
            storage_obj: Any = storage
            if "://" not in storage:
                Path(storage).parent.mkdir(parents=True, exist_ok=True)
                self._journal = _JournalFile(storage, flush_seconds)
                storage_obj = optuna.storages.JournalStorage(self._journal.backend())
            if fresh and study_name in optuna.get_all_study_names(storage_obj):
                optuna.delete_study(study_name=study_name, storage=storage_obj)
            self.study = optuna.create_study(storage=storage_obj, study_name=study_name, direction=direction, load_if_exists=True)
            current = self.study.user_attrs
            for key, value in attrs.items():
                if key not in current or current[key] != value:
                    self.study.set_user_attr(key, value)
            self._name_metric(objective_name)
            self._mirrored = {
                int(t.user_attrs[TRIAL_ATTR]) for t in self.study.get_trials(deepcopy=False) if TRIAL_ATTR in t.user_attrs
            }
        except Exception as exc:  # a view must not stop the run
            self._disable(exc)

    @classmethod
    def for_run(cls, settings: Any, problem: Any, rows: Iterable[Mapping[str, Any]] = ()) -> OptunaMirror:
        """The mirror of a run (`RunSettings`, its problem), with `rows` (recorded earlier)
        mirrored where its study does not hold them yet."""
        s = settings
        storage = s.live_storage or default_storage(s.results_dir, s.experiment)
        info = problem.describe()
        attrs = {
            "experiment": s.experiment,
            "run_id": s.run_id,
            "strategy": s.strategy,
            "strategy_params": json.dumps(s.strategy_params, sort_keys=True, default=str),
            "problem": problem.name,
            "instance": problem.instance,
            "search_space": info.get("search_space"),
            "dataset": info.get("dataset"),
            "seed": s.seed,
            "objective": problem.objective.name,
            "direction": problem.objective.direction,
            "budget_trials": s.trials,
            "budget_seconds": s.seconds,
            "budget_max_epochs": s.max_epochs,
            "config_hash": s.config_hash,
            "run_dir": str(s.run_dir),
        }
        mirror = cls(
            storage,
            study_name=s.run_id,
            direction=problem.objective.direction,
            space=problem.space,
            objective_name=problem.objective.name,
            attrs=attrs,
            flush_seconds=s.flush_seconds,
            fresh=bool(s.overwrite),
        )
        mirror.sync(rows)
        return mirror

    @property
    def n_mirrored(self) -> int:
        return len(self._mirrored)

    def sync(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Mirror the rows the study does not hold yet (by trial id); returns how many."""
        added = 0
        for row in rows:
            if not self.enabled:
                break
            if int(row["trial_id"]) not in self._mirrored:
                self.add(row)
                added += 1
        return added

    def add(self, row: Mapping[str, Any]) -> None:
        """Mirror one finished trial's row (as the runner records it, or as read back)."""
        if not self.enabled:
            return
        trial_id = int(row["trial_id"])
        if trial_id in self._mirrored:
            return
        try:
            self.study.add_trial(self._trial(row))
        except Exception as exc:  # a view must not stop the run
            self._disable(exc)
            return
        self._mirrored.add(trial_id)

    def close(self) -> None:
        """Sync the journal file to disk (at the end of a run)."""
        if self._journal is not None:
            try:
                self._journal.sync()
            except OSError as exc:
                self._disable(exc)

    # -- helpers ---------------------------------------------------------------------------------
    def _disable(self, exc: BaseException) -> None:
        if self.enabled:
            self.enabled = False
            log.warning(
                f"live view off: cannot write to the Optuna storage {self.storage_name!r} "
                f"({type(exc).__name__}: {_first_line(exc)}); the run goes on without it, its "
                f"trials are recorded as usual"
            )

    def _name_metric(self, name: str) -> None:
        """The objective's name on the dashboard's axes instead of "Objective 0"."""
        import warnings

        if self.study.metric_names == [name]:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning
            self.study.set_metric_names([name])

    def _trial(self, row: Mapping[str, Any]) -> Any:
        optuna, states = self._optuna, self._states
        params = row.get("params") or {}
        if isinstance(params, str):
            params = json.loads(params)
        kept: dict[str, Any] = {}
        dists: dict[str, Any] = {}
        invalid: dict[str, Any] = {}
        for name, value in params.items():
            if value is None:
                continue  # an inactive conditional parameter
            if name in self._params and self._params[name].contains(value):
                kept[name], dists[name] = value, self._dists[name]
            else:  # an invalid suggestion (recorded failed): outside the space, shown as an attribute
                invalid[name] = _native(value)
        status = row.get("status")
        value = _finite(row.get("objective"))
        if status == "ok" and value is not None:
            state = states.COMPLETE
        elif status == "pruned":
            state = states.PRUNED
        else:
            state, value = states.FAIL, None
        attrs: dict[str, Any] = {TRIAL_ATTR: int(row["trial_id"]), "status": status}
        for key in ("parent_trial_id", "budget", "budget_spent", "test_objective", "regret", "cost_seconds"):
            v = _native(row.get(key))
            if v is not None:
                attrs[key] = v
        if row.get("error"):
            attrs["error"] = str(row["error"])[:_MAX_ERROR]
        if invalid:
            attrs["invalid_params"] = json.dumps(invalid, sort_keys=True, default=str)
        for key, v in row.items():
            if key.startswith("metric."):
                v = _native(v)
                if v is not None:
                    attrs[key[len("metric.") :]] = v
        trial = optuna.trial.create_trial(
            state=state,
            value=value,
            params=kept,
            distributions=dists,
            user_attrs=attrs,
            intermediate_values=self._intermediate(row.get("history")),
        )
        finished = _datetime(row.get("finished_at"))
        if finished is not None:
            cost = _finite(row.get("cost_seconds")) if row.get("clock", "wall") == "wall" else None
            trial.datetime_complete = finished
            trial.datetime_start = finished - timedelta(seconds=max(0.0, cost or 0.0))
        return trial

    def _intermediate(self, history: Any) -> dict[int, float]:
        """Per-step objective values from the row's history: the entry named after the objective
        (`val_accuracy`, ...), else `val` / `curve_val` (tabular tables), keyed by `epoch`."""
        if not history:
            return {}
        if isinstance(history, str):
            history = json.loads(history)
        out: dict[int, float] = {}
        for i, entry in enumerate(history):
            if not isinstance(entry, Mapping):
                continue
            for key in (self._objective_name, "val", "curve_val"):
                value = _finite(entry.get(key))
                if value is not None:
                    step = entry.get("epoch", entry.get("step", i + 1))
                    try:
                        out[int(step)] = float(value)
                    except (TypeError, ValueError):
                        pass
                    break
        return out


class _JournalFile:
    """An Optuna journal file appended under Optuna's own lock (so optuna-dashboard and other
    runs of the experiment share it safely) and synced to disk at most every `flush_seconds`."""

    def __init__(self, path: str, flush_seconds: float):
        self.path, self.flush_seconds = path, flush_seconds
        self._last_sync = time.monotonic()
        self._dirty = False

    def backend(self) -> Any:
        try:
            from optuna.storages.journal import BaseJournalBackend, JournalFileBackend, JournalFileSymlinkLock
        except ImportError:  # Optuna 3.x: the plain file storage (it syncs every append)
            from optuna.storages import JournalFileStorage

            return JournalFileStorage(self.path)
        outer = self

        class Backend(BaseJournalBackend):
            def __init__(self) -> None:
                self._reader = JournalFileBackend(outer.path)  # creates the file; reads incrementally
                self._lock = JournalFileSymlinkLock(outer.path)
                # Optuna's lock is a symlink `<journal>.lock` -> the journal. With the journal's name
                # as a relative target (the same file) it fits in the inode; a long absolute path
                # costs a data block, which a `discard`-mounted disk frees synchronously on every
                # release (2 ms per trial measured). Other writers see the same lock file.
                if getattr(self._lock, "_lock_target_file", None) == outer.path:
                    self._lock._lock_target_file = os.path.basename(outer.path)

            def read_logs(self, log_number_from: int) -> Any:
                return self._reader.read_logs(log_number_from)

            def append_logs(self, logs: list[dict[str, Any]]) -> None:
                text = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in logs).encode("utf-8")
                if not self._lock.acquire():  # pragma: no cover - the symlink lock waits until it has it
                    raise OSError(f"cannot lock {outer.path}")
                try:
                    with open(outer.path, "ab") as f:
                        f.write(text)
                        f.flush()
                        outer._dirty = True
                        if time.monotonic() - outer._last_sync >= outer.flush_seconds:
                            os.fsync(f.fileno())
                            outer._dirty, outer._last_sync = False, time.monotonic()
                finally:
                    self._lock.release()

        return Backend()

    def sync(self) -> None:
        if self._dirty and os.path.exists(self.path):
            with open(self.path, "ab") as f:
                os.fsync(f.fileno())
            self._dirty, self._last_sync = False, time.monotonic()


def _finite(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _native(v: Any) -> Any:
    """A JSON-able scalar (numpy values unwrapped; NaN, containers and objects dropped)."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (TypeError, ValueError):
            return None
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return v if isinstance(v, (bool, int, str)) else None


def _datetime(v: Any) -> datetime | None:
    if v is None:
        return None
    if hasattr(v, "to_pydatetime"):  # a pandas Timestamp, as a resumed run reads it back
        v = v.to_pydatetime()
    return v if isinstance(v, datetime) else None


def _first_line(exc: BaseException) -> str:
    return next((x.strip() for x in str(exc).splitlines() if x.strip()), "")
