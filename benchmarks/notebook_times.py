"""How long each notebook takes, measured: the README's workshop table comes from here.

    python benchmarks/notebook_times.py --mode fast                  # every notebook as CI runs it (smoke preset)
    python benchmarks/notebook_times.py --mode full --epoch-cap 2    # workshop preset, each run cut to 2 epochs
    python benchmarks/notebook_times.py --mode full                  # workshop preset in full, no cap
    python benchmarks/notebook_times.py --mode full --notebooks 05_cold_start.ipynb --keep runs/nb  # + logs, outputs

Each notebook runs top to bottom in a fresh kernel (its imports included, as a user pays them), with its own
results log. `--epoch-cap N` sets `MMSR_EPOCH_CAP=N`: every training run stops after N epochs (config and
learning-rate schedule unchanged), and the full time is then measured notebook time plus, per capped run, its
measured time per epoch (training + validation; the last epoch's, so with a cap of 2 or more the first epoch's
warm-up and cache filling are not repeated) times the epochs it did not run: an upper bound for runs with
`train.patience`. Under a cap, the full
mode's result checks (`if not FAST: assert ...`) fail as expected: their cells are counted, not fatal; any other
error is shown. On a CUDA machine the runs use the GPU (`train.device=auto`).
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine():
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": gpu}


def errors(nb):
    """(cell index, exception name, message) of every cell that raised."""
    return [(i, out["ename"], out["evalue"][:200]) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def seconds_per_epoch(metrics):
    """An epoch's training and validation: the last epoch's time once the first (which fills caches and warms
    up) is past, else the mean."""
    times = metrics.get("epoch_times_s") or []
    if len(times) >= 2:
        return times[-1]
    return (metrics["train_time_s"] + metrics.get("valid_time_s", 0.0)) / metrics["epochs_run"]


def estimate(rows):
    """Planned epochs, run epochs and the seconds the missing epochs would have taken, over the runs in `rows`."""
    planned = ran = missing = 0.0
    for row in rows:
        epochs, run, m = row["config"]["train"]["epochs"], row["metrics"]["epochs_run"], row["metrics"]
        if run == 0:  # nothing to train (MostPop)
            continue
        planned, ran = planned + epochs, ran + run
        if run < epochs:
            missing += (epochs - run) * seconds_per_epoch(m)
    return int(planned), int(ran), missing


def run_summary(row):
    c, m = row["config"], row["metrics"]
    return {"mode": c["model"]["mode"], "sequence": c["model"]["sequence"], "epochs": c["train"]["epochs"],
            "epochs_run": m["epochs_run"], "wall_s": round(m["wall_time_s"], 1),
            "s_per_epoch": round(seconds_per_epoch(m), 2) if m["epochs_run"] else None}


def time_notebook(path, mode, cap, timeout, work, keep=None):
    import nbformat
    from nbclient import NotebookClient

    log = Path(work) / f"{path.stem}.jsonl"
    env = {"MMSR_FAST": "1" if mode == "fast" else "0", "MMSR_RESULTS": str(log), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    if cap:
        env["MMSR_EPOCH_CAP"] = str(cap)
    saved = {key: os.environ.get(key) for key in [*env, "MMSR_EPOCH_CAP"]}
    os.environ.pop("MMSR_EPOCH_CAP", None)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        client.execute()
        wall = time.perf_counter() - start
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(keep) / path.name)
        if log.exists():
            (Path(keep) / log.name).write_text(log.read_text())
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    planned, ran, missing = estimate(rows)
    failed = errors(nb)
    return {"notebook": path.name, "wall_s": wall, "full_s": wall + missing, "runs": len(rows),
            "epochs_planned": planned, "epochs_run": ran,
            "checks_failed_under_cap": sum(1 for _, name, _ in failed if cap and name == "AssertionError"),
            "errors": [e for e in failed if not (cap and e[1] == "AssertionError")],
            "run_list": [run_summary(r) for r in rows]}


def minutes(seconds):
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["fast", "full"], default="fast",
                        help="fast: MMSR_FAST=1 (smoke preset, CI); full: MMSR_FAST=0 (workshop preset)")
    parser.add_argument("--epoch-cap", type=int, default=None, help="stop every run after N epochs; extrapolate")
    parser.add_argument("--notebooks", nargs="*", default=None, help="names or paths (default: all, in order)")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per cell")
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument("--keep", default=None, help="keep each notebook's results log and executed copy (with "
                        "its outputs: the tables it showed) in this folder")
    args = parser.parse_args(argv)
    folder = ROOT / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb")) if not args.notebooks else [
        Path(n) if Path(n).exists() else folder / (n if n.endswith('.ipynb') else f'{n}.ipynb') for n in args.notebooks]
    info = machine()
    print(f"mode {args.mode}, epoch cap {args.epoch_cap}, {info}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmsr-nbtimes-") as work:
        for path in paths:
            row = time_notebook(path, args.mode, args.epoch_cap, args.timeout, work, keep=args.keep)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| notebook | runs | epochs run / planned | measured | full (extrapolated) | checks failed under cap |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['notebook']} | {r['runs']} | {r['epochs_run']} / {r['epochs_planned']} | {minutes(r['wall_s'])} "
              f"| {minutes(r['full_s'])} | {r['checks_failed_under_cap']} |")
    total, full = sum(r["wall_s"] for r in rows), sum(r["full_s"] for r in rows)
    print(f"| all | {sum(r['runs'] for r in rows)} | | {minutes(total)} | {minutes(full)} | |")
    if args.json:
        Path(args.json).write_text(json.dumps({"mode": args.mode, "epoch_cap": args.epoch_cap, "machine": info,
                                               "rows": rows}, indent=1))
    bad = [r for r in rows if r["errors"]]
    for r in bad:
        print(f"{r['notebook']}: {r['errors']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
