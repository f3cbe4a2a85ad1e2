"""The results log: one JSON line per run (time, config hash, config, metrics), read back as a table."""
import json
import time
from pathlib import Path

import pandas as pd

from .paths import CHECKOUT, results_path

# Committed results logs of reference runs made by the kit at a notebook's full grid, for the rows a notebook cannot
# train live in a workshop's minutes (`data/reference/README.md`: the command behind each).
REFERENCE = CHECKOUT / "data" / "reference"


def append_result(cfg, metrics, path=None, extra=None):
    """Append one run to the log (default: `mmsr_kit.paths.results_path()`), with `extra` fields (e.g. a
    comparison's tag and label); returns the record."""
    path = Path(path) if path else results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config_hash": cfg.hash(),
        "config": cfg.to_dict(),
        "metrics": metrics,
        **(extra or {}),
    }
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")  # one write per line: concurrent runs do not interleave
    return record


def is_logged(cfg, metrics, path=None):
    """Whether the log holds a line of this config with these very metrics (times included: one run's)."""
    return any(r.get("config_hash") == cfg.hash() and r.get("metrics") == metrics for r in read_records(path))


def read_records(path=None):
    """The log's records as written (nested dicts), oldest first; none when there is no log."""
    path = Path(path) if path else results_path()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def config_of(record):
    """The Config a log line was trained with (its hash is the line's `config_hash`): `config_of(line).save(PATH)`
    and `mmsr train --config PATH` train it again."""
    from .config import from_dict

    return from_dict(record["config"])


def reference_lines(path, configs):
    """{key: line} of the results log `path` for each of `configs` ({key: Config}) that it holds a run of, matched
    by config hash (each line's settings, with today's defaults for settings added since): the reference runs a
    notebook shows for the configurations it would train. Keys without a line are left out (the caller says which)."""
    by_hash = {config_of(line).hash(): line for line in read_records(path)}
    return {key: by_hash[cfg.hash()] for key, cfg in configs.items() if cfg.hash() in by_hash}


def read_results(path=None):
    """The log as a flat DataFrame: columns such as `config.model.mode` and `metrics.test.hr@10`."""
    records = read_records(path)
    return pd.json_normalize(records) if records else pd.DataFrame()


def metrics_table(runs, splits=("test", "cold"), metrics=("hr@10", "ndcg@10")):
    """One row per run, columns such as "test hr@10": `runs` is {name: Run or Run.metrics}."""
    rows = {}
    for name, run in runs.items():
        m = getattr(run, "metrics", run)
        rows[name] = {f"{split} {metric}": m[split][metric] for split in splits if split in m for metric in metrics}
    return pd.DataFrame.from_dict(rows, orient="index")
