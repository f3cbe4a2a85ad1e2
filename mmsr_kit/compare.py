"""The overall comparison (the paper's Table 5): a list of configurations, each trained with several seeds by the
same loop, logged to the results log, and summarised as mean and spread, best and second best marked, and MMSR's
relative improvement over the best baseline. The table is built from the log alone (`table_from_log`).

    from mmsr_kit.compare import compare
    table = compare("workshop", overrides={"train.epochs": 30}, seeds=(0, 1, 2))
    mmsr compare --preset workshop --seeds 0 1 2 --set train.epochs=30
"""
import logging
import time

import numpy as np
import pandas as pd

from .config import from_yaml, make_config
from .items import NEEDS_PICTURES
from .registry import ConfigError
from .results import append_result, read_records, read_results

log = logging.getLogger(__name__)

TABLE5 = {  # the paper's columns: label -> config overrides
    "GRU4Rec": {"model.mode": "idsr", "model.sequence": "gru4rec"},
    "NextItNet": {"model.mode": "idsr", "model.sequence": "nextitnet"},
    "SASRec": {"model.mode": "idsr", "model.sequence": "sasrec"},
    "FDSA": {"model.mode": "fdsa"},
    "CARCA++": {"model.mode": "carca++"},
    "VQRec": {"model.mode": "vqrec"},
    "MoRec++": {"model.mode": "morec++", "model.fusion": "sum"},  # a plain sum, whatever fusion MMSR uses
    "MMSR": {"model.mode": "mmsr"},
}
METRICS = ("hr@10", "hr@20", "hr@50", "ndcg@10", "ndcg@20", "ndcg@50")


def _train(preset, overrides, threads=None):
    """One run of `compare`: (metrics, history). In a worker process (`threads` set) with that many threads."""
    import torch

    from .train import fit

    if threads is not None:
        torch.set_num_threads(threads)
    run = fit(make_config(preset, overrides=overrides), results=False, progress=False)  # no bars from several at once
    return run.metrics, run.history


def compare(preset="workshop", overrides=None, seeds=(0, 1, 2), models=None, results=None, tag=None, progress=False,
            on_run=None, workers=1):
    """Train every configuration of `models` (label -> overrides; default: TABLE5) with each seed; append each run
    to the results log (with its label, seed and this comparison's `tag`); return `table_from_log(tag)`.
    Configurations that need pictures are skipped, with the reason logged, on a dataset without them.
    `on_run(label, seed, run)` is called after each run (e.g. to keep histories).

    `workers` > 1 trains that many runs at once, each in its own process with an equal share of the threads: on a
    2-core CPU two one-thread runs do ~1.5x the work of one two-thread run, as a small model's step leaves a core
    idle. Runs are logged in the same order either way, and `on_run` gets each run without its model."""
    from .data import load_split
    from .train import Run, fit

    models = TABLE5 if models is None else models
    tag = tag or time.strftime("compare-%Y%m%d-%H%M%S")
    has_images = {}  # per data config: each dataset is loaded once to ask
    jobs = []  # (label, seed, overrides)
    for label, own in models.items():
        cfg = make_config(preset, overrides={**(overrides or {}), **own})
        key = repr(cfg.data)
        if key not in has_images:
            has_images[key] = load_split(cfg.data).dataset.has_images
        if cfg.model.mode in NEEDS_PICTURES and not has_images[key]:
            log.warning("%s skipped: model.mode=%s needs pictures and %s has none", label, cfg.model.mode, cfg.data.name)
            continue
        jobs += [(label, seed, {**(overrides or {}), **own, "train.seed": seed}) for seed in seeds]

    def finished(label, seed, run):
        append_result(run.config, run.metrics, path=results, extra={"compare": {"tag": tag, "label": label, "seed": seed}})
        log.info("%s seed %d: test hr@10 %.4f", label, seed, run.metrics["test"]["hr@10"])
        if on_run is not None:
            on_run(label, seed, run)

    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        import torch

        threads = max(1, torch.get_num_threads() // workers)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_train, preset, own, threads) for _, _, own in jobs]
            for (label, seed, own), future in zip(jobs, futures):  # in order: the log reads as a sequential run's
                metrics, history = future.result()
                finished(label, seed, Run(make_config(preset, overrides=own), metrics, history, None, None))
    else:
        for label, seed, own in jobs:
            finished(label, seed, fit(make_config(preset, overrides=own), results=False, progress=progress))
    return table_from_log(tag, results)


ARROW = " → "  # transfer labels: "source → target"


def transfer_study(preset, sources, targets, work_dir, mode="mmsr", overrides=None, seeds=(0,), results=None, tag=None,
                   progress=False, workers=1, idsr=True):
    """Tables 9-10 and Fig. 3: pretrain `mode` on each source (label -> data overrides; once, with the first seed,
    written to `work_dir`; a finished run there with the same config is reused), then train on each target (label
    -> data overrides) from every source and from scratch, and IDSR from scratch and from an IDSR model of the
    first source (only its sequence model can carry over). Every run is logged under `tag` with the label
    "SOURCE → TARGET" ("scratch", "IDSR scratch", "IDSR SOURCE"), the source runs under "TAG/pretrain".
    `idsr=False` leaves the two IDSR rows out. `workers`: the target runs trained at once, as in `compare`.
    Returns (the table from the log, {label: validation history of the first seed})."""
    from pathlib import Path

    from .train import fit

    tag = tag or time.strftime("transfer-%Y%m%d-%H%M%S")
    base = {**(overrides or {}), "train.seed": seeds[0]}
    first = next(iter(sources))
    pretrained = {}
    starts = [(s, data, mode) for s, data in sources.items()]
    if idsr:
        starts.append((f"IDSR {first}", sources[first], "idsr"))
    for name, data, start_mode in starts:
        folder = Path(work_dir) / name.replace(" ", "-")
        own = {**base, **data, "model.mode": start_mode}
        cfg = make_config(preset, overrides=own)
        if not (folder / "model.safetensors").is_file() or from_yaml(folder / "config.yaml").hash() != cfg.hash():
            run = fit(cfg, out_dir=folder, results=False, progress=progress)  # (a finished equal run is reused)
            append_result(cfg, run.metrics, path=results, extra={"compare": {"tag": f"{tag}/pretrain", "label": name,
                                                                             "seed": seeds[0]}})
        pretrained[name] = folder, start_mode
    models = {}
    for target, data in targets.items():
        for name, (folder, start_mode) in pretrained.items():
            models[f"{name}{ARROW}{target}"] = {**data, "model.mode": start_mode,
                                                 "train.init_from": str(folder)}
        models[f"scratch{ARROW}{target}"] = {**data, "model.mode": mode}
        if idsr:
            models[f"IDSR scratch{ARROW}{target}"] = {**data, "model.mode": "idsr"}
    histories = {}

    def keep(label, seed, run):
        if seed == seeds[0]:
            histories[label] = run.history

    table = compare(preset, overrides, seeds, models, results=results, tag=tag, progress=progress, on_run=keep,
                    workers=workers)
    return table, histories


def transfer_pivot(table, metric="hr@10"):
    """The transfer rows of a `transfer_study` table as sources x targets (mean over seeds)."""
    means = table.xs("mean", axis=1, level=1)[metric]
    rows = [label.split(ARROW) for label in means.index if ARROW in label]
    frame = pd.DataFrame([(s, t, means[f"{s}{ARROW}{t}"]) for s, t in rows], columns=["from", "target", metric])
    order = list(dict.fromkeys(frame["from"]))
    return frame.pivot(index="from", columns="target", values=metric).loc[order, list(dict.fromkeys(frame["target"]))]


def table_from_log(tag, path=None, split="test"):
    """The comparison `tag` from the results log as a `seed_table`, rows in the order the runs were logged."""
    runs = {}  # label -> metrics of each seed, in the order logged
    for line in read_records(path):
        if line.get("compare", {}).get("tag") == tag:
            runs.setdefault(line["compare"]["label"], []).append(line["metrics"])
    if not runs:
        raise ConfigError(f"no comparison {tag!r} in the results log")
    return seed_table(runs, split)


def seed_table(runs, split="test"):
    """A comparison table from {label: [metrics of each seed, ...]} (each a Run's `metrics` or a log line's): a
    DataFrame of mean and std over the seeds per label and metric, columns (metric, "mean" | "std"), rows in the
    order given, attrs["seeds"] the runs per label. `table_from_log` is this over one comparison's lines; a
    notebook builds it from runs trained now beside reference-log lines."""
    if not runs or not all(runs.values()):
        raise ValueError("seed_table needs at least one run per label")
    frames = {label: pd.DataFrame([m[split] for m in seeds]) for label, seeds in runs.items()}
    columns = [m for m in METRICS if all(m in f for f in frames.values())]
    table = pd.concat({m: pd.DataFrame({"mean": {label: f[m].mean() for label, f in frames.items()},
                                        "std": {label: f[m].std(ddof=1) for label, f in frames.items()}})
                       for m in columns}, axis=1).loc[list(runs)]
    table.attrs["seeds"] = {label: len(seeds) for label, seeds in runs.items()}
    return table


def popularity_table(tag, path=None, metric="hr@10"):
    """Test `metric` per popularity bucket of the target (mean over seeds) for the comparison `tag`: rows are
    labels, columns the buckets (0, 1-4, 5-9, 10-49, 50+); attrs["cases"]: test cases per bucket."""
    from .data.split import POPULARITY_BUCKETS

    frame = read_results(path)
    runs = frame[frame["compare.tag"] == tag] if "compare.tag" in frame else frame.iloc[:0]
    if runs.empty:
        raise ConfigError(f"no comparison {tag!r} in the results log")
    buckets = [name for name, _, _ in POPULARITY_BUCKETS]
    labels = list(dict.fromkeys(runs["compare.label"]))
    column = lambda b: runs.get(f"metrics.popularity.{b}.{metric}", pd.Series(np.nan, index=runs.index))  # noqa: E731
    table = pd.DataFrame({b: column(b).groupby(runs["compare.label"]).mean() for b in buckets}).loc[labels]
    table.attrs["cases"] = {b: int(runs[f"metrics.popularity.{b}.n"].iloc[0]) for b in buckets}
    table.attrs["metric"] = metric
    return table


def improvement(table, model="MMSR"):
    """Relative improvement (%) of `model` over the best other row, per metric (mean over seeds)."""
    means = table.xs("mean", axis=1, level=1)
    if model not in means.index or len(means) < 2:
        return pd.Series(dtype=float)
    best = means.drop(index=model).max()
    return 100 * (means.loc[model] / best.where(best > 0) - 1)  # NaN where every other row scores 0


def _cells(table, model="MMSR"):
    """(text, rank): "mean ± std" per cell ("mean (1 seed)" for a row of one seed: no spread to show), each
    metric's rank among the rows (1 = best), and a last row of `model`'s improvement over the best other."""
    means = table.xs("mean", axis=1, level=1)
    seeds = table.attrs.get("seeds", {})
    text, rank = {}, {}
    for metric in means.columns:
        rank[metric] = means[metric].rank(ascending=False, method="min")
        text[metric] = {}
        for label in means.index:
            mean, std = table.loc[label, (metric, "mean")], table.loc[label, (metric, "std")]
            one = seeds.get(label) == 1 or np.isnan(std)
            text[metric][label] = f"{mean:.4f} (1 seed)" if one else f"{mean:.4f} ± {std:.4f}"
    text, rank = pd.DataFrame(text).loc[means.index], pd.DataFrame(rank).loc[means.index]
    gain = improvement(table, model)
    if len(gain):
        text.loc[f"{model} vs best other"] = ["n/a" if np.isnan(g) else f"{g:+.2f}%" for g in gain[text.columns]]
    return text, rank


def render(table, model="MMSR"):
    """Text rendering (a terminal, a Markdown file): "mean ± std" per cell, the best marked **, the second best _,
    and MMSR's improvement. In a notebook `styled` shows the same cells with real bold and italics."""
    text, rank = _cells(table, model)
    for metric in rank.columns:
        for label in rank.index:
            mark = {1: "**", 2: "_"}.get(rank.loc[label, metric], "")
            text.loc[label, metric] = f"{mark}{text.loc[label, metric]}{mark}"
    return text


def styled(table, model="MMSR", title=None):
    """The cells of `render` as a pandas Styler: the best of each metric in bold, the second in italics (real
    formatting in a notebook and in exported HTML), MMSR's improvement over the best other row last. The caption
    says the seeds behind the cells, after `title` if given."""
    text, rank = _cells(table, model)
    css = pd.DataFrame("", index=text.index, columns=text.columns)
    css.loc[rank.index] = rank.map(lambda r: {1: "font-weight: bold", 2: "font-style: italic"}.get(r, ""))
    seeds = sorted(set(table.attrs.get("seeds", {}).values()))
    over = ("1 seed" if seeds == [1] else f"mean ± std over {seeds[0]} seeds" if len(seeds) == 1
            else "mean ± std over seeds (a row of one seed says so)")
    caption = f"{title + ': ' if title else ''}{over}; bold: best, italic: second"
    return text.style.apply(lambda _: css, axis=None).set_caption(caption)
