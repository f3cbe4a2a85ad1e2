"""Transfer across datasets (Tables 9-10, Fig. 3): start a run from another run's weights, part by part.

    mmsr train --preset workshop --set data.domain=video --init-from runs/shop
    fit(make_config("workshop", overrides={"data.domain": "video", "train.init_from": "runs/shop"}))

Every weight of a recommender belongs to one part: `text`, `vision`, `vlp` (the pretrained encoders), `fusion`
(what else maps content to the item vector: fusion, projections, code tables), `sequence`, or `ids` (per-item
tables: an ID embedding, VQRec's item codes). ID tables never transfer: their rows are the source's items, which
the target does not have. So an IDSR model carries its sequence model across and starts its item table from
scratch, which is why ID-based recommenders cannot transfer and ID-agnostic ones can.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from .model import IDEmbedding
from .registry import ConfigError, unknown_name_message

log = logging.getLogger(__name__)

PARTS = ("text", "vision", "vlp", "fusion", "sequence")
SOURCE_FILE = "model.safetensors"  # the best weights of a finished run (`fit(..., out_dir)`)
ENCODER_NAME = {"text": "text_encoder", "vision": "vision_encoder", "vlp": "vlp"}  # part -> model config key


def parse_parts(value):
    """train.init_parts: "all" or a comma-separated subset of PARTS -> a tuple of part names."""
    names = PARTS if value == "all" else tuple(p.strip() for p in str(value).split(",") if p.strip())
    for name in names:
        if name not in PARTS:
            raise ConfigError(unknown_name_message("transfer part", name, ["all", *PARTS]) +
                              " (ID tables never transfer)")
    if not names:
        raise ConfigError("train.init_parts names no part: all, or some of " + ", ".join(PARTS))
    return names


def check_source(source):
    """The source run's weights file, or a clear error."""
    path = Path(source).expanduser()
    path = path if path.suffix == ".safetensors" else path / SOURCE_FILE
    if not path.is_file():
        raise ConfigError(f"train.init_from: {path} does not exist; give the folder of a finished run "
                          "(mmsr train --out DIR writes DIR/model.safetensors)")
    return path


def id_keys(model):
    """State-dict keys that hold one row per item of the dataset the model was built for."""
    keys = set()
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(module, IDEmbedding):
            keys.update(prefix + k for k in module.state_dict())
        keys.update(prefix + b for b in getattr(module, "per_item_buffers", ()))
    return keys


def part_of(key, ids=()):
    """The part a state-dict key belongs to (see the module docstring)."""
    if key in ids:
        return "ids"
    names = key.split(".")
    if names[0] == "sequence":
        return "sequence"
    for part in ("vlp", "text", "vision"):  # items.text..., items.features.text..., items.content.vision...
        if part in names[:-1]:
            return part
    return "fusion"


@dataclass
class TransferReport:
    """What `init_from` did, key by key: loaded, skipped (key -> why) and new (in this model only: trained from
    scratch)."""

    source: str
    loaded: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    new: list = field(default_factory=list)

    def by_part(self, ids=()):
        """{part: {"loaded": n, "skipped": n, "new": n}} in parameters' tensors (keys)."""
        out = {}
        for what, keys in (("loaded", self.loaded), ("skipped", list(self.skipped)), ("new", self.new)):
            for key in keys:
                counts = out.setdefault(part_of(key, ids), {"loaded": 0, "skipped": 0, "new": 0})
                counts[what] += 1
        return out

    def summary(self):
        return {"source": self.source, "loaded": len(self.loaded), "skipped": len(self.skipped), "new": len(self.new)}

    def __str__(self):
        reasons = {}
        for key, why in self.skipped.items():
            reasons.setdefault(why, []).append(key)
        lines = [f"init from {self.source}: {len(self.loaded)} tensors loaded, {len(self.skipped)} skipped, "
                 f"{len(self.new)} new"]
        lines += [f"  skipped ({why}): {len(keys)}, e.g. {keys[0]}" for why, keys in reasons.items()]
        if self.new:
            lines.append(f"  new (trained from scratch): {len(self.new)}, e.g. {self.new[0]}")
        return "\n".join(lines)


def _check_encoders(source_config, model_config, parts):
    """Same shapes are not enough: a text part from `bert` must not load into `roberta`."""
    if not source_config.exists() or model_config is None:
        return
    source = yaml.safe_load(source_config.read_text()).get("model", {})
    for part in parts:
        key = ENCODER_NAME.get(part)
        if key and key in source and source[key] != getattr(model_config, key):
            raise ConfigError(f"train.init_from: the source's model.{key} is {source[key]!r}, this run's is "
                              f"{getattr(model_config, key)!r}; set the same, or leave {part} out of train.init_parts")


def init_from(model, source, parts="all", model_config=None):
    """Load a source run's weights into `model` for the parts named; returns a TransferReport. Strict: a key of a
    requested part whose shape differs is an error (naming the keys), never a silent skip. `model_config` (the
    target's ModelConfig) lets it refuse encoders of another name."""
    parts = parse_parts(parts) if isinstance(parts, str) else tuple(parts)
    path = check_source(source)
    _check_encoders(path.parent / "config.yaml", model_config, parts)
    weights = load_file(str(path))
    own = model.state_dict()
    ids = id_keys(model)
    report = TransferReport(str(path.parent))
    take, mismatched = {}, []
    for key, value in weights.items():
        part = part_of(key, ids)
        if key not in own:
            report.skipped[key] = "not in this model"
        elif part == "ids":
            report.skipped[key] = "ID table: rows are the source's items"
        elif part not in parts:
            report.skipped[key] = f"part {part} not in train.init_parts"
        elif own[key].shape != value.shape:
            mismatched.append(f"{key} {tuple(value.shape)} -> {tuple(own[key].shape)}")
        else:
            take[key] = value
    if mismatched:
        raise ConfigError(f"train.init_from: {len(mismatched)} weights differ in shape from the source's (model "
                          f"settings differ?), e.g. " + "; ".join(mismatched[:3]))
    report.loaded = sorted(take)
    report.new = sorted(k for k in own if k not in take)  # ID tables included: they start from scratch
    with torch.no_grad():
        for key, value in take.items():
            own[key].copy_(value)
    for module in model.modules():  # frozen outputs computed before the load are stale now
        if isinstance(getattr(module, "_frozen_outputs", None), dict):
            module._frozen_outputs.clear()
    log.info("%s", report)
    return report
