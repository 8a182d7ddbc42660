"""Tabular benchmarks: learning curves recorded by the harness's own runs, replayed at zero cost.

A table is two files, `<name>.parquet` and `<name>.json`:

* `<name>.parquet`, one row per (configuration, replicate, epoch): `config_id` (int),
  `replicate` (int: the seed of the run that recorded it), `epoch` (1..E), `val` and `test` (the
  problem's validation and test metric after that epoch, in its own direction), `seconds` (wall
  seconds that epoch took to train), and one `param.<name>` column per searched parameter (the
  fidelity parameter, e.g. `epochs`, excluded: the curve covers every budget);
* `<name>.json`: `{"format": "harness-tabular", "version": 1, "name", "space" (the search space
  config, fidelity included), "objective": {"name", "direction"}, "epochs" (E), "replicates"
  (seeds), "problem" (the source problem's identity), "identity_hash", "source", "provenance",
  "command"}`.

`harness-tabulate RESULTS_DIR --name NAME --out DIR` builds one from the runs of a
`strategy=grid` sweep of a `keras` problem with `problem.record_test_curve=true` (one run per
replicate seed): the same workers, launchers and resume as any run. `problem=tabular` replays
it (`harness.problems.tabular`). A table a user writes in this format is read the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, HarnessError

FORMAT, VERSION = "harness-tabular", 1
COLUMNS = ("config_id", "replicate", "epoch", "val", "test", "seconds")
SHIPPED = "harness.tables"  # package holding the shipped tables


def shipped_tables() -> list[str]:
    from importlib.resources import files

    try:
        return sorted(p.name[:-8] for p in files(SHIPPED).iterdir() if p.name.endswith(".parquet"))
    except (ModuleNotFoundError, FileNotFoundError):
        return []


def table_path(table: str) -> Path:
    """A shipped table's name, or a path to `<name>.parquet` (with `<name>.json` beside it)."""
    if table in shipped_tables():
        from importlib.resources import files

        return Path(str(files(SHIPPED) / f"{table}.parquet"))
    path = Path(table).expanduser()
    if path.suffix != ".parquet":
        path = path.with_suffix(".parquet")
    if not path.is_file():
        raise ConfigError(
            f"problem.table {table!r} is neither a shipped table ({', '.join(shipped_tables()) or 'none'}) "
            f"nor an existing <name>.parquet file; build one with harness-tabulate"
        )
    return path


def read_table(table: str) -> tuple[Any, dict[str, Any]]:
    """(the curves as a DataFrame, the metadata), checked; one `ConfigError` naming what is wrong."""
    import pandas as pd

    from harness.space import SearchSpace

    path = table_path(table)
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"table {str(path)!r} has no metadata file {str(meta_path)!r}; a table is "
            f"<name>.parquet plus <name>.json (see harness.tabular)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"table metadata {str(meta_path)!r} is unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f'{str(meta_path)!r} is not harness-tabular metadata (its "format" must be {FORMAT!r})')
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise ConfigError(f"table {str(path)!r} is unreadable ({type(exc).__name__}: {exc})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"table {str(path)!r} lacks the column(s) {', '.join(missing)}; a table has "
            f"{', '.join(COLUMNS)} and param.<name> columns"
        )
    try:
        space = SearchSpace.from_config(meta["space"])
    except (KeyError, HarnessError) as exc:
        raise ConfigError(f"table {str(path)!r}: its metadata holds no valid search space ({exc})") from None
    searched = space.without_fidelity_param()
    params = sorted(c[len("param.") :] for c in frame.columns if c.startswith("param."))
    if params != sorted(searched.names):
        raise ConfigError(
            f"table {str(path)!r} was built for another space: its param columns "
            f"{params} are not the space's {sorted(searched.names)}"
        )
    if space.fidelity is None:
        raise ConfigError(f"table {str(path)!r}: its space declares no fidelity (epochs)")
    epochs = int(meta.get("epochs") or 0)
    counts = frame.groupby(["config_id", "replicate"])["epoch"].agg(["min", "max", "size"])
    if epochs < 1 or not ((counts["min"] == 1) & (counts["max"] == epochs) & (counts["size"] == epochs)).all():
        raise ConfigError(f"table {str(path)!r}: every (config_id, replicate) needs epochs 1..{epochs} exactly once")
    if frame[["val", "seconds"]].isna().any().any() or (frame["seconds"] < 0).any():
        raise ConfigError(f"table {str(path)!r}: val and seconds must be present, seconds >= 0")
    objective = meta.get("objective") or {}
    if objective.get("direction") not in ("maximize", "minimize"):
        raise ConfigError(f"table metadata {str(meta_path)!r}: objective.direction must be maximize or minimize")
    meta["path"] = str(path)
    return frame, meta


# -- building a table from grid runs ------------------------------------------------------------
def build_table(results: Path, name: str) -> tuple[Any, dict[str, Any]]:
    """The table of the runs under `results` (one per replicate seed; see the module docstring)."""
    import hashlib

    import pandas as pd

    from harness.results import read_results, read_runs
    from harness.space import SearchSpace

    runs = [r for r in read_runs(results) if r.get("status") == "finished"]
    if not runs:
        raise HarnessError(f"no finished run under {str(results)!r}; run the grid sweep first (see harness-tabulate --help)")
    identities = {
        json.dumps({k: v for k, v in (r.get("identity") or {}).items() if k not in ("seed",)}, sort_keys=True, default=str)
        for r in runs
    }
    if len(identities) != 1:
        raise HarnessError(
            f"the runs under {str(results)!r} are of {len(identities)} different configs "
            f"(besides their seeds); tabulate one space x dataset x trainer at a time"
        )
    first = runs[0]
    if first.get("problem") != "keras" or not (first.get("config") or {}).get("problem", {}).get("record_test_curve"):
        raise HarnessError(
            "tables are built from `keras` runs with problem.record_test_curve=true (the test metric after every epoch)"
        )
    rows = read_results(results)
    rows = rows[rows["run_id"].isin({r["run_id"] for r in runs}) & (rows["status"] == "ok")]
    space = SearchSpace.from_config(first["config"]["search_space"])
    searched = space.without_fidelity_param()
    fid = space.fidelity
    max_epochs = (first["config"].get("budget") or {}).get("max_epochs")
    epochs = min(fid.max, max_epochs) if max_epochs else fid.max
    records, config_ids = [], {}
    for row in rows.itertuples(index=False):
        params = json.loads(row.params)
        key = json.dumps({k: params[k] for k in searched.names if k in params}, sort_keys=True)
        history = json.loads(row.history)
        if len(history) != epochs or "curve_val" not in history[0]:
            continue  # a shorter (pruned, failed) curve covers no full budget range
        cid = config_ids.setdefault(key, len(config_ids))
        for h in history:
            records.append(
                {
                    "config_id": cid,
                    "replicate": int(row.seed),
                    "epoch": int(h["epoch"]),
                    "val": h["curve_val"],
                    "test": h["curve_test"],
                    "seconds": h["seconds"],
                    **{f"param.{k}": v for k, v in json.loads(key).items()},
                }
            )
    if not records:
        raise HarnessError(f"no complete {epochs}-epoch curve with test metrics under {str(results)!r}")
    frame = pd.DataFrame.from_records(records)
    complete = frame.groupby("config_id")["replicate"].nunique()
    replicates = sorted(frame["replicate"].unique().tolist())
    frame = frame[frame["config_id"].isin(complete[complete == len(replicates)].index)]
    if frame.empty:
        raise HarnessError(
            f"no configuration was evaluated by every replicate run under {str(results)!r}; "
            f"the runs must evaluate the same set (strategy=grid with a fixed "
            f"strategy.params.sample_seed)"
        )
    space_cfg = dict(first["config"]["search_space"])
    space_cfg["fidelity"] = {
        **space_cfg.get("fidelity", {}),
        "max": epochs,
        "min": min(space_cfg.get("fidelity", {}).get("min", 1), epochs),
    }
    identity = json.loads(identities.pop())
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "space": space_cfg,
        "objective": first.get("objective") or {},
        "epochs": epochs,
        "replicates": replicates,
        "n_configs": int(frame["config_id"].nunique()),
        "problem": identity,
        "identity_hash": hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12],
        "source": {"experiment": first.get("experiment"), "run_ids": sorted(r["run_id"] for r in runs)},
        "provenance": first.get("provenance"),
    }
    return frame.sort_values(["config_id", "replicate", "epoch"]).reset_index(drop=True), meta


def write_table(frame: Any, meta: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    name = meta["name"]
    paths = [out / f"{name}.parquet", out / f"{name}.json"]
    frame.to_parquet(paths[0], index=False, compression="zstd")
    paths[1].write_text(json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="harness-tabulate",
        description="Build a tabular benchmark from the runs of a grid sweep, e.g.\n"
        "  harness -m strategy=grid search_space=mlp dataset=digits problem.record_test_curve=true "
        "seed=0,1,2 budget.trials=36 experiment=tab_mlp_digits\n"
        "  harness-tabulate results/tab_mlp_digits --name mlp_digits --out tables/\n"
        "then replay any strategy on it: harness problem=tabular problem.table=tables/mlp_digits",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", type=Path, help="the sweep's results folder (one run per replicate seed)")
    p.add_argument("--name", required=True, help="table name (file stem)")
    p.add_argument("--out", type=Path, default=Path("tables"), help="output folder (default: tables/)")
    args = p.parse_args(argv)
    command = "harness-tabulate " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        frame, meta = build_table(args.results, args.name)
        meta["command"] = command
        paths = write_table(frame, meta, args.out)
    except (HarnessError, OSError) as exc:
        print(f"harness-tabulate: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"table {args.name}: {meta['n_configs']} configurations x {len(meta['replicates'])} replicates x "
        f"{meta['epochs']} epochs -> {', '.join(map(str, paths))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
