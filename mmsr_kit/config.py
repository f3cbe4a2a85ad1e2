"""Configuration: typed dataclasses, named presets, YAML round-trip, `key=value` overrides.

Merge order (lowest first): dataclass defaults < preset < YAML file < overrides.
"""
import contextlib
import dataclasses
import hashlib
import json
import logging
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .registry import ConfigError, Registry, UnknownNameError, unknown_name_message

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    name: str = "synthetic"  # a registered dataset (`mmsr list datasets`) or a folder of RecBole atomic files
    domain: str = "shop"  # synthetic world: shop (clean product shots) or video (cluttered covers)
    n_items: int = 2000  # synthetic world: number of items
    n_users: int = 2500  # synthetic world: number of users
    world_seed: int = 0  # synthetic world: everything in it is a function of this seed
    image_size: int = 32  # pixels per side of item images (32 on a CPU, 224 in the paper)
    min_interactions: int = 5  # users with fewer interactions are dropped (the paper's 5)
    max_len: int = 20  # longest input sequence a model sees; longer histories train as several windows
    cold_threshold: int = 10  # items with fewer training occurrences are cold (the paper's 10)
    new_items: float = 0.0  # share of items held out of training entirely, for the new-item test (metrics "new")
    views: int = 16  # synthetic world: fresh titles and pictures per item, one drawn per encode in training; 0: none


@dataclass
class ModelConfig:
    mode: str = "idsr"  # how items become vectors (`mmsr list modes`)
    sequence: str = "sasrec"  # sequence encoder (`mmsr list sequences`)
    hidden: int = 64  # width of item and user vectors (768 in the paper)
    layers: typing.Optional[int] = None  # None: the paper's depth (SASRec 2, GRU4Rec 4, NextItNet 2)
    heads: int = 2  # attention heads (SASRec)
    dropout: float = 0.1  # dropout in the sequence model, fusion and projections
    text_encoder: str = "tiny-bert"  # registered name (`mmsr list encoders`), hub id or local path
    vision_encoder: str = "tiny-vit"  # registered name, timm:NAME, or a ViT-MAE hub id / local path
    fusion: str = "merge_attention_1"  # how text and picture meet in mode mmsr (`mmsr list fusions`)
    adaptor: str = "auto"  # pooled vector -> item vector (`mmsr list adaptors`); auto: moe behind a frozen pretrained encoder, else linear
    text_len: int = 30  # tokens kept per text (the paper's 10 / 30 / 50)
    pooling: str = "auto"  # text vector: cls (first token), mean, or auto (cls after attention blocks, else mean)
    text_blocks: str = "default"  # trained top blocks: default (2; all for tiny encoders), all, or a number
    vision_blocks: str = "default"  # the same for the vision encoder (ResNet50 / EfficientNet: stages, default 3)
    mask_ratio: float = 0.0  # MAE only: share of patches masked, in training only (the paper preset's 0.75; 0 there for other encoders)
    vision_size: int = 0  # pixels the vision encoder sees: 0 its own (pretrained 224, else data.image_size); not MAE
    encode_every_occurrence: bool = False  # reference path: encode each occurrence, not each distinct item
    vlp: str = "tiny-flava"  # mode vlp: a vision-language model (`mmsr list encoders`), hub id or local path
    vlp_blocks: str = "default"  # mode vlp: top blocks trained per tower: default (the paper's 2; ViLT, VisualBERT 4), all, or a number
    vlp_visual: str = "region"  # VisualBERT's visual input (Table 7): region, grid, patch-embedding or patch-vit
    vlp_extractor: str = "default"  # the frozen extractor behind vlp_visual: default (the VLP's own), or a Faster R-CNN name, vision encoder or CLIP folder
    vq_books: int = 32  # vqrec: OPQ code books (VQRec's 32; fewer, logged, where they do not divide the text width)
    vq_codes: int = 256  # vqrec: codes per book, a power of two (VQRec's 256; fewer, logged, for a smaller catalogue)
    cache_frozen: bool = True  # compute frozen encoders, and the blocks below the trained ones, once per item
    cache_dtype: str = "auto"  # those states kept as: auto (bfloat16 under bf16 autocast on CUDA, else float32), float32, bfloat16, float16
    cache_memory_gb: float = 2.0  # states larger than this go to memory-mapped files in the cache folder (reused by later runs)


@dataclass
class TrainConfig:
    epochs: int = 150  # passes over the training windows (the paper: 150)
    batch_size: int = 128  # training sequences per step
    negatives: int = 1  # uniform negatives per position, BCE averaged over them (the paper: 1)
    lr: float = 1e-3  # learning rate of the sequence model, fusion and ID tables
    encoder_lr: float = 1e-4  # learning rate of pretrained item encoders (Table 12)
    weight_decay: float = 0.1  # AdamW weight decay outside the item encoders
    encoder_weight_decay: float = 0.0  # AdamW weight decay of the item encoders
    decay_after: typing.Optional[int] = None  # epoch where linear decay starts; None: at 80% (the paper's 120 of 150)
    final_lr_ratio: float = 0.1  # learning rate at the last epoch, relative to the start
    eval_every: int = 1  # validate every N epochs
    patience: typing.Optional[int] = None  # stop after N validations without improvement; None: never
    checkpoint_steps: typing.Optional[int] = None  # with an output folder: a checkpoint every N steps too (one per epoch always)
    grad_clip: typing.Optional[float] = None  # clip the gradient norm to this; None: no clipping (the norm is logged per epoch)
    metric: str = "ndcg@10"  # validation metric that picks the best checkpoint
    seed: int = 0  # seeds model init, shuffling and negative sampling
    init_from: typing.Optional[str] = None  # a run folder (mmsr train --out) whose weights start this run: transfer
    init_parts: str = "all"  # what init_from loads: all, or some of text,vision,vlp,fusion,sequence (ID tables never)
    num_workers: int = 0  # data-loading worker processes
    device: str = "auto"  # auto (CUDA if present), cpu or cuda
    bf16: bool = True  # bf16 autocast on CUDA (never on CPU)
    compile: bool = False  # torch.compile the sequence encoder and the fusion (GPU; the first steps are slower)
    deterministic: bool = True  # repeatable to the last bit (PyTorch's deterministic algorithms); off: a little faster on GPU
    report_to: str = "none"  # experiment tracking via Accelerate: none, tensorboard, all (every installed one), or a list a,b


@dataclass
class EvalConfig:
    ks: typing.List[int] = field(default_factory=lambda: [10, 20, 50])  # cut-offs of HR@k and NDCG@k
    batch_size: int = 256  # users scored at once against all items


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    preset: str = "workshop"  # the preset this config started from (informational)

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_yaml(self):
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path):
        Path(path).write_text(self.to_yaml())

    def hash(self):
        """A short fingerprint of every setting (the results log keys runs by it)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


# Presets: overrides of the defaults above. `smoke` runs in seconds (CI),
# `workshop` in minutes on a laptop CPU, `paper` is the study's setting on a GPU.
CACHE_DTYPES = ["auto", "float32", "bfloat16", "float16"]
PRESETS = Registry("preset")
PRESETS["smoke"] = {
    "data": {"n_items": 300, "n_users": 400, "image_size": 32},
    "model": {"hidden": 32},
    "train": {"epochs": 3, "batch_size": 128},
}
PRESETS["workshop"] = {  # the teaching default: CPU-sized encoders and the fewest epochs that show the study's pattern
    "model": {"text_encoder": "bag", "vision_encoder": "tiny-cnn", "fusion": "concat"},  # on the synthetic world
    "train": {"epochs": 20},  # (3 seeds, README); IDSR is still climbing here: compare at 100+ epochs for its peak
}
PRESETS["paper"] = {  # the paper's default MMSR (section 4; the row Tables 11-14 share: Bili HR@10 4.0810)
    "data": {"image_size": 224, "max_len": 20},
    "model": {"hidden": 768, "dropout": 0.1, "text_encoder": "roberta", "vision_encoder": "mae", "text_len": 50,
              "mask_ratio": 0.75, "vlp": "flava"},  # text 50 tokens (Table 13), MAE masks 75% (Table 14)
    # one learning rate for encoders and the rest (Table 12's default row); its best row: train.encoder_lr=5e-5
    "train": {"epochs": 150, "batch_size": 64, "lr": 1e-4, "encoder_lr": 1e-4, "decay_after": 120, "deterministic": False},
}


def _type_name(tp):
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(key, value, tp):
    """Check (and gently convert) `value` against the annotated field type `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner)
    if origin in (list, typing.List):
        (inner,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [yaml.safe_load(v) for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} expects a list of {_type_name(inner)}, got {value!r}")
        return [_coerce(key, v, inner) for v in value]
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if isinstance(value, bool):
            return value
    elif tp in (int, float):
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = tp(value)  # "3" -> 3, "1e-3" -> 0.001; "1.5" stays a string for an int field
        accepted = (int,) if tp is int else (int, float)
        if isinstance(value, accepted) and not isinstance(value, bool):
            return tp(value)
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"{key} expects {_type_name(tp)}, got {value!r}")


def _fields(obj):
    return {f.name: f for f in dataclasses.fields(obj)}


def set_value(cfg, key, value):
    """Set a dotted `key` (e.g. "train.epochs") on `cfg`, with a clear error for a typo or a wrong type."""
    parts = key.split(".")
    obj = cfg
    for depth, part in enumerate(parts):
        fields = _fields(obj)
        if part not in fields:
            prefix = ".".join(parts[:depth])
            valid = [f"{prefix}.{n}" if prefix else n for n in fields]
            guess = ".".join(parts[: depth + 1])
            raise UnknownNameError(unknown_name_message("config key", key, valid, guess=guess))
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(obj, part)):
                raise ConfigError(f"{key} is a section; set one of its keys, e.g. {key}.{next(iter(_fields(getattr(obj, part))))}")
            hints = typing.get_type_hints(type(obj))
            setattr(obj, part, _coerce(key, value, hints[part]))
        else:
            obj = getattr(obj, part)
            if not dataclasses.is_dataclass(obj):
                raise UnknownNameError(f"config key {key!r}: {'.'.join(parts[:depth + 1])} has no sub-keys")


def flatten(tree, prefix=""):
    """{"train": {"epochs": 3}} -> {"train.epochs": 3}."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def parse_sets(items):
    """["train.epochs=3", ...] -> {"train.epochs": "3"}: values stay strings until typed by set_value."""
    pairs = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        pairs[key.strip()] = value.strip()
    return pairs


def make_config(preset="workshop", file=None, overrides=None):
    """Build a Config: defaults < preset < YAML `file` < `overrides` (a flat {"a.b": value} dict)."""
    cfg = Config(preset=preset)
    layers = [flatten(PRESETS[preset])]
    if file is not None:
        try:
            loaded = yaml.safe_load(Path(file).read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{file} is not valid YAML: {' '.join(str(error).split())}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file}: expected a mapping of config sections, got {type(loaded).__name__}")
        layers.append(flatten(loaded))
    layers.append(dict(overrides or {}))
    for layer in layers:
        for key, value in layer.items():
            if key == "preset":
                cfg.preset = str(value)
                continue
            set_value(cfg, key, value)
    if cfg.model.mask_ratio and not any("model.mask_ratio" in layer for layer in layers[1:]) and not _is_mae(cfg):
        log.info("model.mask_ratio=%g of the %s preset masks an MAE's patches: 0 for %r", cfg.model.mask_ratio,
                 preset, cfg.model.vision_encoder)  # the paper preset with resnet50, vit, swin (Table 2)
        cfg.model.mask_ratio = 0.0
    validate(cfg)
    return cfg


def _is_mae(cfg):
    from .encoders import vision_spec

    try:
        return vision_spec(cfg.model.vision_encoder).kind == "mae"
    except ConfigError:
        return True  # a bad name: validate() says so


def from_dict(tree):
    """A config from `Config.to_dict()`'s nesting (a run's config.yaml, a results-log line's `config`): its preset
    with every stored setting over it, so a setting added since keeps its default."""
    return make_config(tree.get("preset", "workshop"), overrides=flatten(tree))


def from_yaml(path):
    """Read a config written by `Config.save` (e.g. a run's config.yaml)."""
    return from_dict(yaml.safe_load(Path(path).read_text()))


def validate(cfg):
    """Names that must exist in a registry, checked before any work starts."""
    from . import data, modes, sequence  # noqa: F401  (fill the registries)
    from .registry import DATASETS, MODES, SEQUENCES

    if cfg.data.name not in DATASETS and not Path(cfg.data.name).expanduser().is_dir():
        raise UnknownNameError(
            unknown_name_message("dataset", cfg.data.name, DATASETS.keys()) + ", or a folder of atomic files"
        )
    MODES[cfg.model.mode]
    SEQUENCES[cfg.model.sequence]
    from .encoders import text_spec, vision_spec
    from .fusion import FUSIONS
    from .builders import parse_blocks

    if cfg.model.mode in ("mmsr", "mmsr_t"):
        text_spec(cfg.model.text_encoder)
    if cfg.model.mode in ("mmsr", "mmsr_v"):
        vision_spec(cfg.model.vision_encoder)
    FUSIONS[cfg.model.fusion]
    from .adaptors import ADAPTORS

    if cfg.model.adaptor != "auto":
        ADAPTORS[cfg.model.adaptor]
    parse_blocks(cfg.model.text_blocks), parse_blocks(cfg.model.vision_blocks), parse_blocks(cfg.model.vlp_blocks)
    if cfg.model.mode == "vlp":
        from .encoders.vlp import VISUAL_INPUTS, vlp_spec

        vlp_spec(cfg.model.vlp)
        VISUAL_INPUTS[cfg.model.vlp_visual]
    if cfg.model.pooling not in ("auto", "cls", "mean"):
        raise UnknownNameError(unknown_name_message("pooling", cfg.model.pooling, ["auto", "cls", "mean"]))
    if cfg.model.cache_dtype not in CACHE_DTYPES:
        raise UnknownNameError(unknown_name_message("cache dtype", cfg.model.cache_dtype, CACHE_DTYPES))
    if not 0 <= cfg.model.mask_ratio < 1:
        raise ConfigError("model.mask_ratio must be in [0, 1)")
    if cfg.model.vq_books < 1 or cfg.model.vq_codes < 2 or cfg.model.vq_codes & (cfg.model.vq_codes - 1):
        raise ConfigError(f"model.vq_books must be >= 1 and model.vq_codes a power of two (faiss's product quantiser "
                          f"has 2**bits codes per book), not {cfg.model.vq_books} and {cfg.model.vq_codes}")
    if cfg.model.vision_size < 0:
        raise ConfigError("model.vision_size must be at least 0 (0: the vision encoder's own size)")
    if cfg.data.domain not in ("shop", "video"):
        raise UnknownNameError(unknown_name_message("synthetic domain", cfg.data.domain, ["shop", "video"]))
    from .evaluate import parse_metric

    parse_metric(cfg.train.metric, cfg.eval.ks)
    if cfg.train.device not in ("auto", "cpu", "cuda"):
        raise UnknownNameError(unknown_name_message("device", cfg.train.device, ["auto", "cpu", "cuda"]))
    for key in ("train.epochs", "train.batch_size", "train.eval_every", "data.max_len", "model.hidden", "eval.batch_size",
                "model.text_len"):
        section, name = key.split(".")
        if getattr(getattr(cfg, section), name) < 1:
            raise ConfigError(f"{key} must be at least 1")
    if cfg.train.lr <= 0 or cfg.train.encoder_lr < 0:
        raise ConfigError("train.lr must be positive and train.encoder_lr at least 0 (0: the encoders stay as loaded)")
    if cfg.train.checkpoint_steps is not None and cfg.train.checkpoint_steps < 1:
        raise ConfigError("train.checkpoint_steps must be at least 1 (or none)")
    if cfg.train.grad_clip is not None and cfg.train.grad_clip <= 0:
        raise ConfigError("train.grad_clip must be positive (or none)")
    if cfg.data.views < 0:
        raise ConfigError("data.views must be at least 0")
    if not 0 <= cfg.data.new_items < 1:
        raise ConfigError("data.new_items must be in [0, 1) (a share of the items)")
    from .device import trackers

    trackers(cfg.train.report_to)
    if cfg.train.init_from is not None:
        from .transfer import check_source, parse_parts

        parse_parts(cfg.train.init_parts)
        check_source(cfg.train.init_from)
    return cfg
