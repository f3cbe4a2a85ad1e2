"""Where generated data, caches and the results log live.

In a checkout (an editable install) they go under the checkout's ignored `data/cache/`
and `results/`; elsewhere under `~/.cache/mmsr_kit`. `MMSR_CACHE` and `MMSR_RESULTS`
override both.
"""
import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def _in_checkout():
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "data").is_dir()


def cache_dir():
    if os.environ.get("MMSR_CACHE"):
        path = Path(os.environ["MMSR_CACHE"])
    elif _in_checkout():
        path = CHECKOUT / "data" / "cache"
    else:
        path = Path.home() / ".cache" / "mmsr_kit"
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_path():
    """The results log: one JSON line per run (see `mmsr_kit.results`)."""
    if os.environ.get("MMSR_RESULTS"):
        return Path(os.environ["MMSR_RESULTS"])
    if _in_checkout():
        return CHECKOUT / "results" / "results.jsonl"
    return Path.home() / ".cache" / "mmsr_kit" / "results.jsonl"
