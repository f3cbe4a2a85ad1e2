"""One self-contained HTML page from the results log: the paper's Tables 2-14 in the kit's small form wherever the
log holds runs for them (the others are listed at the bottom, with what is missing). Runs that differ only in
`train.seed` are one row: mean ± std over them and the number of seeds; each row opens the config behind it. One
plotly bar chart per table; plotly.js is embedded once, so the page works offline.

    from mmsr_kit.report import build_report
    build_report(out="report.html")     # -> {"table2": 3, "table5": 6, ...}: the rows of each table on the page
    mmsr report [--results FILE] [--out report.html]

How runs find their table: a tag written by `compare`, `sweep` or `transfer_study` is one comparison, its labels
the rows; plain `fit` runs (no tag) are grouped by everything in their config but the table's keys and the seed,
and a group whose runs differ in those keys is one comparison.
"""
import html
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .compare import ARROW, TABLE5, popularity_table, table_from_log, transfer_pivot
from .config import Config, flatten, make_config
from .paths import results_path
from .registry import ConfigError
from .results import read_results
from .sweep import TRICKS, knob_name, pivot

METRICS = ("hr@10", "ndcg@10")
MODE_NAMES = {"idsr": "IDSR", "mmsr": "MMSR", "mmsr_t": "MMSR-T", "mmsr_v": "MMSR-V"}
CONTENT = ("mmsr_t", "mmsr_v", "mmsr")
esc = html.escape


def mode_name(run):
    return MODE_NAMES.get(run["config.model.mode"], run["config.model.mode"])


def encoders_label(run):
    """Table 2's rows: only the encoders a mode uses."""
    text, vision = run["config.model.text_encoder"], run["config.model.vision_encoder"]
    return {"mmsr_t": f"MMSR-T · {text}", "mmsr_v": f"MMSR-V · {vision}"}.get(run["config.model.mode"],
                                                                             f"MMSR · {text} + {vision}")


def labels_of(runs):
    return list(dict.fromkeys(runs["compare.label"]))


def tag_kind(runs):
    """What a tag is: "transfer" (labels "start → target", a run with train.init_from: `transfer_study`), "tableN"
    (a trick of `sweep.TRICKS`, told by the knob names in its labels "mode · knob=value, ..."), "vlp" or "plain"."""
    labels = labels_of(runs)
    if any(ARROW in label for label in labels) and runs["_config"].map(lambda c: c["train.init_from"]).notna().any():
        return "transfer"
    names = {frozenset(part.split("=")[0] for part in label.split(" · ")[-1].split(", ")) for label in labels}
    for trick in TRICKS.values():
        if names == {frozenset(knob_name(key) for key in trick.knobs)}:
            return f"table{trick.table}"
    return "vlp" if (runs["config.model.mode"] == "vlp").any() else "plain"


def table5_rows(kind, runs):
    return labels_of(runs) if kind == "plain" and set(labels_of(runs)) <= set(TABLE5) else []


def vlp_rows(several_inputs):  # Table 6: one visual input; Table 7: several
    def pick(kind, runs):
        inputs = runs.loc[runs["config.model.mode"] == "vlp", "config.model.vlp_visual"].nunique()
        return labels_of(runs) if kind == "vlp" and (inputs > 1) == several_inputs else []
    return pick


def has_idsr(runs):
    return (runs["config.model.mode"] == "idsr").any()


def cold_rows(kind, runs):
    """Table 8: the IDSR and content rows of a plain comparison that has both."""
    modes = runs.groupby("compare.label", sort=False)["config.model.mode"].first()
    keep = [label for label, mode in modes.items() if mode == "idsr" or mode in CONTENT]
    return keep if kind == "plain" and "idsr" in set(modes[keep]) and set(modes[keep]) & set(CONTENT) else []


def transfer_rows(several_targets):  # Table 9: one target; Table 10: several
    def pick(kind, runs):
        targets = {label.split(ARROW)[-1] for label in labels_of(runs)}
        return labels_of(runs) if kind == "transfer" and (len(targets) > 1) == several_targets else []
    return pick


@dataclass
class Table:
    title: str  # the paper's caption, short
    how: str  # what the log must hold for it: shown under its title, or as the reason it is missing
    modes: tuple = ()  # plain runs (no tag) in these modes ...
    keys: tuple = ()  # ... grouped by all but these keys and the seed: a group where they differ is a comparison
    label: object = None  # a plain run (a row of the log) -> its row label; default: the keys' values
    needs: object = None  # a plain comparison's runs -> whether this table shows it (default: yes)
    tagged: object = None  # (tag kind, the tag's runs) -> the labels of that comparison this table shows
    split: str = "test"  # the metrics' split


TRICK_TITLES = {11: "Full vs top-layer fine-tuning", 12: "Learning rates per module", 13: "Length of text",
                14: "Volume of image information (mask ratio)"}
TABLES = {
    "table2": Table("Text and vision encoders: MMSR-T, MMSR-V and MMSR", "plain runs in mode mmsr, mmsr_t or mmsr_v "
                    "that differ only in model.mode, model.text_encoder and model.vision_encoder", CONTENT,
                    ("model.mode", "model.text_encoder", "model.vision_encoder"), encoders_label),
    "table3": Table("Fusion methods", "plain runs in mode mmsr that differ only in model.fusion", ("mmsr",),
                    ("model.fusion",)),
    "table4": Table("IDSR and MMSR with various sequence architectures", "plain runs in mode idsr, mmsr_t, mmsr_v "
                    "or mmsr that differ only in model.sequence (two or more) and model.mode", ("idsr", *CONTENT),
                    ("model.sequence", "model.mode"), lambda run: f"{run['config.model.sequence']} · {mode_name(run)}",
                    needs=lambda runs: runs["config.model.sequence"].nunique() > 1),
    "table5": Table("Overall comparison with the baselines", "a compare tag whose labels are all Table 5 models "
                    f"({', '.join(TABLE5)})", tagged=table5_rows),
    "table6": Table("Vision-language (VLP) backbones", "a compare tag with runs in mode vlp, all with one "
                    "model.vlp_visual; or plain vlp runs that differ only in model.vlp", ("vlp",), ("model.vlp",),
                    tagged=vlp_rows(False)),
    "table7": Table("Vision representations (VisualBERT's visual input)", "a compare tag with vlp runs that differ in "
                    "model.vlp_visual; or plain vlp runs that differ only in it", ("vlp",), ("model.vlp_visual",),
                    tagged=vlp_rows(True)),
    "table8": Table("Cold-start setting (the cold test set)", "an IDSR row and MMSR-T / MMSR-V / MMSR rows of a "
                    "compare tag; or plain runs in those modes, IDSR among them, that differ only in model.mode",
                    ("idsr", *CONTENT), ("model.mode",), mode_name, has_idsr, cold_rows, "cold"),
    "table9": Table("Transfer: scaling the source domain", "a transfer_study tag (labels 'start → target', "
                    "train.init_from set, sources under TAG/pretrain) with one target", tagged=transfer_rows(False)),
    "table10": Table("Transfer: scaling the target domain", "a transfer_study tag with several targets",
                     tagged=transfer_rows(True)),
    **{f"table{trick.table}": Table(TRICK_TITLES[trick.table], f"a sweep tag of the '{name}' trick (labels "
                                    f"'mode · {', '.join(knob_name(k) + '=…' for k in trick.knobs)}')",
                                    tagged=lambda kind, runs, n=trick.table: labels_of(runs) if kind == f"table{n}"
                                    else []) for name, trick in TRICKS.items()},
}


@dataclass
class Comparison:
    runs: pd.DataFrame  # its runs; column "row": each run's row label
    table: pd.DataFrame  # mean and std per row label and metric, shaped like `compare.table_from_log`'s
    tag: str = None  # None: plain runs


def summary(runs, split):
    """Mean and std (over seeds) per row label, as `compare.table_from_log` computes them for a tag (from the log
    read once, not once per tag); None without metrics of the split."""
    grouped = runs.groupby("row", sort=False)
    columns = {m: f"metrics.{split}.{m}" for m in METRICS}
    columns = {m: c for m, c in columns.items() if c in runs and runs[c].notna().any()}
    return pd.concat({m: pd.DataFrame({"mean": grouped[c].mean(), "std": grouped[c].std(ddof=1)})
                      for m, c in columns.items()}, axis=1) if columns else None


def plain_comparisons(spec, frame):
    runs = frame[frame["tag"].isna() & frame["config.model.mode"].isin(spec.modes)]
    ignore = {*spec.keys, "train.seed"}
    context = runs["_config"].map(lambda c: json.dumps({k: v for k, v in c.items() if k not in ignore}, default=str))
    label = spec.label or (lambda run: " · ".join(str(run[f"config.{key}"]) for key in spec.keys))
    found = []
    for _, group in runs.groupby(context, sort=False):
        group = group.assign(row=group.apply(label, axis=1))
        shown = group["row"].nunique() > 1 and (spec.needs is None or spec.needs(group))
        table = summary(group, spec.split) if shown else None
        if table is not None:
            found.append(Comparison(group, table))
    return found


def tagged_comparisons(spec, tags):
    found = []
    for tag, (kind, runs) in tags.items() if spec.tagged else ():
        labels = spec.tagged(kind, runs)
        if not labels:
            continue
        runs = runs[runs["compare.label"].isin(labels)].assign(row=runs["compare.label"])
        table = summary(runs, spec.split)
        if table is not None:
            found.append(Comparison(runs, table, tag))
    return found


@lru_cache
def preset_values(preset):
    try:
        return flatten(make_config(preset).to_dict())
    except ConfigError:  # a preset this version no longer has
        return flatten(Config().to_dict())


def overrides(config):
    """The keys where a run's config differs from its preset."""
    base = preset_values(config.get("preset", "workshop"))
    return {k: v for k, v in config.items() if k != "preset" and json.dumps(v) != json.dumps(base.get(k))}


def common_overrides(runs):
    """Overrides shared by every run of a comparison but the seed: its setting."""
    each = [overrides(c) for c in runs["_config"]]
    return {k: v for k, v in each[0].items() if k != "train.seed" and all(o.get(k, object()) == v for o in each)}


def extras(table_id, comparison, frame, path):
    """The paper's other shapes, reused from compare and sweep: transfer matrices (Tables 9-10), the learning-rate
    grid (Table 12), HR@10 per popularity bucket (Table 8)."""
    if comparison.tag is None:
        return {}
    if table_id in ("table9", "table10"):
        found = {"test HR@10, mean over seeds: where training started x target":
                 transfer_pivot(table_from_log(comparison.tag, path))}
        if f"{comparison.tag}/pretrain" in set(frame["tag"]):
            sources = table_from_log(f"{comparison.tag}/pretrain", path).xs("mean", axis=1, level=1)[list(METRICS)]
            found[f"the sources (tag {comparison.tag}/pretrain), on their own test set"] = sources.rename_axis(None)
        return found
    if table_id == "table8" and "metrics.popularity.0.n" in frame:
        return {"test HR@10 per popularity bucket of the target (mean over seeds)":
                popularity_table(comparison.tag, path).loc[list(comparison.table.index)].rename_axis(None)}
    if table_id == "table12":
        keys, points = list(TRICKS["learning rates"].knobs), [label.split(" · ") for label in comparison.table.index]
        values = [dict(part.split("=") for part in point[-1].split(", ")) for point in points]
        knobs = {key: list(dict.fromkeys(v[knob_name(key)] for v in values)) for key in keys}
        return {f"{mode or 'every run'}: test HR@10, mean over seeds": pivot(comparison.table, knobs, "hr@10", mode)
                for mode in dict.fromkeys(p[0] if len(p) > 1 else None for p in points)}
    return {}


def cell(mean, std, best):
    text = "–" if np.isnan(mean) else f"{mean:.4f}" if np.isnan(std) else f"{mean:.4f} ± {std:.4f}"
    return f"<td><b>{text}</b></td>" if mean == best else f"<td>{text}</td>"


def as_yaml(flat):
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in flat.items())  # JSON values are YAML too


def config_html(runs, common):
    """A row's config: the keys where it differs from its comparison's setting, each run's hash, the whole."""
    config = runs["_config"].iloc[0]
    own = {k: v for k, v in overrides(config).items() if k not in common and k != "train.seed"}
    hashes = "".join(f"  {h}  seed {s}  {t}\n" for h, s, t in zip(runs["config_hash"], runs["config.train.seed"],
                                                                 runs["time"]))
    return (f"<details><summary>config</summary><pre>{esc(as_yaml(own) or '(the setting above)' + chr(10))}"
            f"runs (config hash, seed, time):\n{esc(hashes)}</pre><details><summary>full config</summary>"
            f"<pre>{esc(as_yaml(config))}</pre></details></details>")


def comparison_html(index, comparison, split, extra):
    table, runs = comparison.table, comparison.runs
    common = common_overrides(runs)
    preset = runs["_config"].iloc[0].get("preset", "?")
    setting = ", ".join(f"{k}={v}" for k, v in common.items())
    best = {m: table[(m, "mean")].max() for m in METRICS if (m, "mean") in table}
    head = "".join(f"<th>{split} {m.upper()}</th>" for m in best)
    rows, by_row = [], dict(list(runs.groupby("row", sort=False)))
    for label in table.index:
        own = by_row[label]
        seeds = sorted(own["config.train.seed"].unique())
        n = f"{len(seeds)} ({', '.join(map(str, seeds))})" + (f", {len(own)} runs" if len(own) > len(seeds) else "")
        cells = "".join(cell(table.loc[label, (m, "mean")], table.loc[label, (m, "std")], b) for m, b in best.items())
        rows.append(f'<tr class="row"><td>{esc(str(label))}</td><td>{esc(n)}</td>{cells}'
                    f"<td>{config_html(own, common)}</td></tr>")
    more = "".join(f"<p>{esc(caption)}</p>{frame.to_html(float_format='{:.4f}'.format, na_rep='–')}"
                   for caption, frame in extra.items())
    source = f"tag {comparison.tag}" if comparison.tag else "plain runs (no tag)"
    return (f'<h3>[{index}] {esc(source)}</h3><p class="setting">preset {esc(str(preset))}: '
            f"{esc(setting or 'as it is')}</p><table><tr><th>row</th><th>seeds</th>{head}<th></th></tr>"
            f"{''.join(rows)}</table>{more}")


def figure(title, comparisons, split):
    """Bars of mean HR@10 and NDCG@10 per row, the std as error bars; "[i]" names the comparison."""
    many = len(comparisons) > 1
    fig = go.Figure()
    for m in METRICS:
        x, y, err = [], [], []
        for i, c in enumerate(comparisons, 1):
            if (m, "mean") in c.table:
                x += [f"[{i}] {label}" if many else str(label) for label in c.table.index]
                y += c.table[(m, "mean")].tolist()
                err += c.table[(m, "std")].fillna(0.0).tolist()
        fig.add_bar(name=f"{split} {m.upper()}", x=x, y=y, error_y={"type": "data", "array": err})
    return fig.update_layout(barmode="group", title=title, height=420, margin={"l": 40, "r": 10, "t": 50, "b": 120})


def load(path):
    """`read_results` plus "_config" (each run's flat config, today's defaults for newer keys) and "tag"."""
    frame = read_results(path)
    if frame.empty:
        raise ConfigError(f"the results log {path} {'is empty' if path.exists() else 'does not exist'}: train "
                          "something first (mmsr train --preset smoke), or pass --results FILE")
    keep = [c for c in frame if not c.startswith("metrics.") or c.endswith(METRICS + (".0.n",))]  # (narrow: fast)
    frame = frame[keep].copy()
    defaults = flatten(Config().to_dict())
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    frame["_config"] = [{**defaults, **flatten(r["config"])} for r in records]
    for column in ("compare.tag", "compare.label", "config.model.vlp_visual", "config.model.vlp"):
        frame[column] = frame[column] if column in frame else None
    return frame.assign(tag=frame["compare.tag"])


CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222} table{border-collapse:collapse} "
       "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top} pre{font-size:12px} "
       ".how,.setting{color:#555} section{border-top:2px solid #888;margin-top:2em}")


def build_report(results=None, out="report.html"):
    """Read the results log (default: `paths.results_path()`) and write one self-contained HTML page to `out`;
    return {table id: rows} for the tables on the page. A missing or empty log is a ConfigError."""
    path = Path(results) if results else results_path()
    frame = load(path)
    tags = {tag: (tag_kind(runs), runs) for tag, runs in frame[frame["tag"].notna()].groupby("tag", sort=False)
            if not str(tag).endswith("/pretrain")}
    sections, counts, skipped, used_tags, used_runs = [], {}, {}, set(), set()
    for table_id, spec in TABLES.items():
        comparisons = (plain_comparisons(spec, frame) if spec.keys else []) + tagged_comparisons(spec, tags)
        if not comparisons:
            skipped[table_id] = spec
            continue
        used_tags |= {c.tag for c in comparisons}
        used_runs |= {i for c in comparisons for i in c.runs.index}
        counts[table_id] = sum(len(c.table) for c in comparisons)
        title = f"Table {table_id[5:]}: {spec.title}"
        chart = figure(title, comparisons, spec.split).to_html(full_html=False, include_plotlyjs="inline"
                                                                if not sections else False)
        body = "".join(comparison_html(i, c, spec.split, extras(table_id, c, frame, path))
                       for i, c in enumerate(comparisons, 1))
        sections.append(f'<section id="{table_id}"><h2>{esc(title)}</h2><p class="how">found as {esc(spec.how)}'
                        f"</p>{body}{chart}</section>")
    left = [tag for tag in tags if tag not in used_tags]
    sources = frame["tag"].map(lambda tag: isinstance(tag, str) and tag.removesuffix("/pretrain") in used_tags)
    unused = (~(frame.index.isin(used_runs) | sources)).sum()
    times = frame["time"].dropna().sort_values()
    header = (f"<h1>MMSR results report</h1><p>built {esc(time.strftime('%Y-%m-%d %H:%M:%S'))} from "
              f"<code>{esc(str(path.resolve()))}</code>: {len(frame)} runs ({esc(times.iloc[0])} to "
              f"{esc(times.iloc[-1])}), {len(tags)} tagged comparisons. Rows: mean ± std over seeds (runs that differ "
              "only in train.seed); bold: the best of its comparison.</p><ul>"
              + "".join(f'<li><a href="#{t}">Table {t[5:]}: {esc(TABLES[t].title)}</a> ({n} rows)</li>'
                        for t, n in counts.items()) + "</ul>")
    footer = ('<section id="skipped"><h2>Not on this page</h2><ul>'
              + "".join(f"<li>Table {t[5:]} ({esc(s.title)}): none in the log; it needs {esc(s.how)}</li>"
                        for t, s in skipped.items())
              + "".join(f"<li>tag {esc(str(t))}: fits no table</li>" for t in left)
              + f"<li>{unused} of {len(frame)} runs are in no table</li></ul></section>")
    page = (f'<!doctype html><html><head><meta charset="utf-8"><title>MMSR results report</title><style>{CSS}'
            f"</style></head><body>{header}{''.join(sections)}{footer}</body></html>")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(page, encoding="utf-8")
    return counts
