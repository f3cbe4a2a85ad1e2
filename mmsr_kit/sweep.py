"""The bag of tricks (the paper's Tables 11-14): a grid of config values, each point trained for each mode and
seed by `compare`, logged under one tag, and read back as tables.

    from mmsr_kit.sweep import sweep, by_mode, pivot
    knobs = {"model.text_len": [4, 8, 16]}
    table = sweep("workshop", knobs, modes=["mmsr_t", "mmsr"], seeds=(0, 1))
    by_mode(table, knobs, ["mmsr_t", "mmsr"])  # Table 13: a row per length, (mode, metric) columns
    mmsr sweep --preset workshop --grid model.text_len=4,8,16 --modes mmsr_t mmsr --seeds 0 1
"""
import itertools
import time
from dataclasses import dataclass, field

import pandas as pd

from .compare import compare
from .config import make_config
from .registry import ConfigError, Registry


@dataclass
class Trick:
    knobs: dict  # config key -> values; "a+b" sets both keys to each value
    modes: list  # the modes the paper applies it to
    overrides: dict = field(default_factory=dict)  # what the study needs besides its knobs
    table: int = 0  # the paper's table


TRICKS = Registry("trick")
# The workshop encoders (bow, tiny-cnn) train every part by default; tiny-bert and tiny-cnn/tiny-vit have two blocks
# each, so top-k is "top 1 of 2" here (the paper: top 2 of RoBERTa's 12 blocks, top 3 of ResNet50's 4 stages).
TRICKS["fine-tuning"] = Trick({"model.text_blocks+model.vision_blocks": ["1", "all"]}, ["mmsr_t", "mmsr_v", "mmsr"],
                              {"model.text_encoder": "tiny-bert"}, 11)
# train.encoder_lr reaches pretrained encoders only: MiniLM (real weights, offline) is the one a CPU can afford.
TRICKS["learning rates"] = Trick({"train.lr": [1e-3, 1e-4], "train.encoder_lr": [1e-3, 1e-4]}, ["mmsr"],
                                 {"model.text_encoder": "minilm", "model.text_blocks": "1"}, 12)
# Synthetic titles are 7-15 tokens ([CLS] and [SEP] included): the paper's 10 / 30 / 50 would all read most of them.
TRICKS["text length"] = Trick({"model.text_len": [4, 8, 16]}, ["mmsr_t", "mmsr"], {}, 13)
TRICKS["mask ratio"] = Trick({"model.mask_ratio": [0.0, 0.5, 0.75]}, ["mmsr_v", "mmsr"],
                             {"model.vision_encoder": "tiny-mae"}, 14)


def knob_name(key):
    """"model.text_blocks+model.vision_blocks" -> "text_blocks+vision_blocks"."""
    return "+".join(part.split(".")[-1] for part in key.split("+"))


def grid(knobs):
    """{key: values} -> {label: overrides}, every combination, the last key varying fastest:
    {"train.lr": [0.001], "train.encoder_lr": [0.001, 0.0001]} -> {"lr=0.001, encoder_lr=0.001": {...}, ...}."""
    if not knobs or any(isinstance(values, str) or not values for values in knobs.values()):
        raise ConfigError(f"a grid is {{config key: [values, ...]}}, at least one value each; got {knobs!r}")
    names = {key: knob_name(key) for key in knobs}
    if len(set(names.values())) < len(names):  # e.g. train.batch_size and eval.batch_size
        names = {key: key for key in knobs}
    points = {}
    for values in itertools.product(*knobs.values()):
        label = ", ".join(f"{names[key]}={value}" for key, value in zip(knobs, values))
        points[label] = {part: value for key, value in zip(knobs, values) for part in key.split("+")}
    return points


def run_label(mode, point):
    return f"{mode} · {point}" if mode else point


def with_modes(points, modes=None):
    """Each point once per mode (labels "mmsr_t · text_len=4"), or as it is without modes."""
    if not modes:
        return points
    return {run_label(mode, label): {"model.mode": mode, **own} for mode in modes for label, own in points.items()}


def sweep(preset="workshop", knobs=None, overrides=None, seeds=(0,), modes=None, results=None, tag=None,
          progress=False):
    """Train every point of `grid(knobs)` (times each mode of `modes`) with each seed through `compare`; return
    the table from the results log. Every point's config is built first, so a typo stops the sweep before a run."""
    models = with_modes(grid(knobs), modes)
    for own in models.values():
        make_config(preset, overrides={**(overrides or {}), **own})
    tag = tag or time.strftime("sweep-%Y%m%d-%H%M%S")
    return compare(preset, overrides, seeds, models, results=results, tag=tag, progress=progress)


def sweep_trick(name, preset="workshop", knobs=None, overrides=None, seeds=(0,), results=None, tag=None,
                progress=False):
    """One study of TRICKS by name: its knobs (or `knobs`, e.g. fewer values) for each of its modes, with its own
    overrides under `overrides`."""
    trick = TRICKS[name]
    knobs = trick.knobs if knobs is None else knobs
    tag = tag or time.strftime(f"sweep-{name.replace(' ', '-')}-%Y%m%d-%H%M%S")
    return sweep(preset, knobs, {**trick.overrides, **(overrides or {})}, seeds, trick.modes, results, tag, progress)


def by_mode(table, knobs, modes=None, metrics=("hr@10", "ndcg@10")):
    """Tables 11, 13, 14: mean over seeds, a row per grid point, columns (mode, metric); NaN for a skipped run."""
    points = list(grid(knobs))
    means = table.xs("mean", axis=1, level=1)
    columns = {(mode or "", metric): means[metric].reindex([run_label(mode, p) for p in points]).to_numpy()
               for mode in (modes or [None]) for metric in metrics}
    return pd.DataFrame(columns, index=pd.Index(points, name="point"))


def pivot(table, knobs, metric="hr@10", mode=None):
    """Table 12: a two-key grid as a matrix of mean `metric`, rows the first key's values, columns the second's."""
    if len(knobs) != 2:
        raise ConfigError(f"pivot needs a grid of two keys, got {list(knobs)}")
    (rows, row_values), (columns, column_values) = knobs.items()
    labels = [run_label(mode, p) for p in grid(knobs)]
    cells = table[(metric, "mean")].reindex(labels).to_numpy().reshape(len(row_values), len(column_values))
    return pd.DataFrame(cells, index=pd.Index(row_values, name=rows), columns=pd.Index(column_values, name=columns))
