"""Vision-language models (VLPs) as item encoders: one pretrained model in place of text encoder + vision
encoder + fusion (the paper's section 6). Three paradigms, five models, all through `transformers`:

    two-stream, shallow fusion   CLIP, GroupViT     a tower per modality; their projected embeddings, concatenated
    single-stream, deep fusion   ViLT, VisualBERT   one transformer over text tokens and visual tokens; its pooled output
    two-stream, deep fusion      FLAVA              a tower per modality, then a multimodal encoder; its pooled output

Each model trains the top blocks of each of its towers (the paper: 2 for CLIP, GroupViT and FLAVA, 4 for ViLT and
VisualBERT) plus what sits above them; FLAVA's multimodal encoder trains whole.

VisualBERT does not read pixels: a frozen extractor turns each picture into visual tokens (`VISUAL_INPUTS`,
the paper's Table 7: region, grid, patch-embedding, patch-vit), which a trained linear layer maps to VisualBERT's
visual width. Frozen, those tokens are computed once per item and view and cached (memory or disk) by the item
encoder like any frozen encoder's output, never once per step.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import torch
import torch.nn as nn

from ..paths import cache_dir
from ..registry import ConfigError, Registry
from .common import from_pretrained, missing_model, normalise_pictures, set_pixel_statistics, train_top

log = logging.getLogger(__name__)

# model_type in a model's config.json -> the kit's family name; the paradigm and the blocks trained by default
FAMILIES = {
    "clip": ("clip", "two-stream, shallow fusion", 2),
    "groupvit": ("groupvit", "two-stream, shallow fusion", 2),
    "vilt": ("vilt", "single-stream, deep fusion", 4),
    "visual_bert": ("visualbert", "single-stream, deep fusion", 4),
    "flava": ("flava", "two-stream, deep fusion", 2),
}
PARADIGMS = {family: paradigm for family, paradigm, _ in FAMILIES.values()}


@dataclass
class VLPSpec:
    source: Union[str, Callable[[], str]]  # a hub id or local path, or a function that returns a local path
    note: str  # one line for `mmsr list encoders`
    pretrained: bool = True  # False: random init, so it trains at the main learning rate, not train.encoder_lr
    tokenizer: Optional[str] = None  # where the tokenizer lives when the model's own folder has none
    extractors: dict = field(default_factory=dict)  # VisualBERT: visual input -> default extractor


VLP_ENCODERS = Registry("vision-language model")


def _minilm_tokenizer():
    from transformers import AutoTokenizer

    from .text import minilm_path

    return AutoTokenizer.from_pretrained(minilm_path())


def tiny_vlp_path(family, hidden=64, image_size=32, patch=8):
    """A small randomly initialised model of `family` (MiniLM's WordPiece vocabulary, 8x8 patches at 32 px), saved
    once with its tokenizer and image processor and then loaded back through `from_pretrained`, exactly like a
    hub id: the CPU-sized stand-in for each VLP. Each tower has one block more than the paper trains, so that
    top-block training leaves something frozen, as it does in the real models."""
    import transformers as tf

    folder = cache_dir() / f"tiny-{family}-h{hidden}-s{image_size}-v1"
    if (folder / "config.json").exists():
        return str(folder)
    tokenizer = _minilm_tokenizer()
    vocab = tokenizer.vocab_size
    block = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_attention_heads=2)
    text = dict(block, vocab_size=vocab, num_hidden_layers=3, max_position_embeddings=77,
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                eos_token_id=tokenizer.sep_token_id)  # CLIP-style pooling reads the state at the end-of-text token
    vision = dict(block, num_hidden_layers=3, image_size=image_size, patch_size=patch)
    processor = None
    stats = dict(image_mean=[0.5] * 3, image_std=[0.25] * 3)
    if family == "clip":
        config = tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=hidden)
        processor = tf.CLIPImageProcessor(size={"shortest_edge": image_size},
                                          crop_size={"height": image_size, "width": image_size}, **stats)
    elif family == "groupvit":
        vision = dict(vision, depths=[1, 1, 1], num_hidden_layers=3, num_group_tokens=[8, 4, 0],
                      num_output_groups=[8, 4, 4])
        config = tf.GroupViTConfig(text_config=text, vision_config=vision, projection_dim=hidden,
                                   projection_intermediate_dim=2 * hidden)
        processor = tf.CLIPImageProcessor(size={"shortest_edge": image_size},
                                          crop_size={"height": image_size, "width": image_size}, **stats)
    elif family == "vilt":
        config = tf.ViltConfig(**block, vocab_size=vocab, num_hidden_layers=5, image_size=image_size,
                               patch_size=patch, max_position_embeddings=40)
        processor = tf.ViltImageProcessor(size={"shortest_edge": image_size}, size_divisor=patch, **stats)
    elif family == "visualbert":
        config = tf.VisualBertConfig(**block, vocab_size=vocab, num_hidden_layers=5, visual_embedding_dim=2 * hidden)
    elif family == "flava":
        config = tf.FlavaConfig(text_config=dict(text, eos_token_id=None, bos_token_id=None), image_config=vision,
                                multimodal_config=dict(block, num_hidden_layers=1), hidden_size=hidden,
                                projection_dim=hidden)
        processor = tf.FlavaImageProcessor(size={"height": image_size, "width": image_size},
                                           crop_size={"height": image_size, "width": image_size}, **stats)
    else:
        raise ValueError(family)
    tmp = folder.with_name(folder.name + ".tmp")
    with torch.random.fork_rng(devices=[]):  # the same weights every time, and the caller's random state untouched
        torch.manual_seed(0)
        tf.AutoModel.from_config(config).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if processor is not None:
        processor.save_pretrained(tmp)
    tmp.rename(folder)
    return str(folder)


def _tiny(family):
    return lambda: tiny_vlp_path(family)


HUB_EXTRACTORS = {"region": "fasterrcnn_resnet50_fpn", "grid": "resnet50",
                  "patch-embedding": "openai/clip-vit-base-patch32", "patch-vit": "openai/clip-vit-base-patch32"}
TINY_EXTRACTORS = {"region": "fasterrcnn_resnet50_fpn@random", "grid": "tiny-cnn",
                   "patch-embedding": _tiny("clip"), "patch-vit": _tiny("clip")}

VLP_ENCODERS["clip"] = VLPSpec("openai/clip-vit-base-patch16", "CLIP ViT-B/16: two-stream, shallow fusion (hub)")
VLP_ENCODERS["groupvit"] = VLPSpec("nvidia/groupvit-gcc-yfcc", "GroupViT: two-stream, shallow fusion (hub)")
VLP_ENCODERS["vilt"] = VLPSpec("dandelin/vilt-b32-mlm", "ViLT-B/32: single-stream, deep fusion (hub)")
VLP_ENCODERS["visualbert"] = VLPSpec(
    "uclanlp/visualbert-vqa-coco-pre", "VisualBERT: single-stream, deep fusion, on extracted visual tokens (hub; "
    "tokenizer bert-base-uncased)", tokenizer="bert-base-uncased", extractors=HUB_EXTRACTORS)
VLP_ENCODERS["flava"] = VLPSpec("facebook/flava-full", "FLAVA: two-stream, deep fusion (hub)")
for _family in ("clip", "groupvit", "vilt", "visualbert", "flava"):
    VLP_ENCODERS[f"tiny-{_family}"] = VLPSpec(
        _tiny(_family), f"{_family}-shaped, width 64, 32 px, random init (CPU; offline)", pretrained=False,
        extractors=TINY_EXTRACTORS if _family == "visualbert" else {})


def vlp_spec(name):
    """The registered spec, or one for a hub id / local path given directly."""
    if name in VLP_ENCODERS:
        return VLP_ENCODERS[name]
    if not name or not name.strip():
        VLP_ENCODERS[name]  # an empty name: the registry's error lists the names
    return VLPSpec(name, "by path or hub id", tokenizer=None, extractors=HUB_EXTRACTORS)  # from_pretrained finds it


class _Unit(nn.Module):
    """Modules (and parameters) that train together as one "block" (GroupViT: a stage's last layer with the
    grouping that follows it and the stage's group tokens). Holds references only: it is never registered
    in a model, so nothing is saved twice."""

    def __init__(self, *modules, params=()):
        super().__init__()
        self.parts = nn.ModuleList(modules)
        self.params = nn.ParameterList(params)


@dataclass
class Tower:
    name: str
    blocks: list  # bottom first
    heads: list  # above the blocks; they train whenever any block does
    default: int  # blocks trained by default (the paper's choice for this model)


def _inner(module, attr):
    """Some transformers versions wrap a tower (CLIPTextModel.text_model = CLIPTextTransformer); others do not."""
    return getattr(module, attr, module)


def _groupvit_units(vision):
    units = []
    for stage in vision.encoder.stages:
        layers = list(stage.layers)
        extra = [m for m in (getattr(stage, "downsample", None), getattr(stage, "group_projector", None)) if m is not None]
        params = [p for p in (getattr(stage, "group_token", None),) if p is not None]
        units += layers[:-1] + [_Unit(layers[-1], *extra, params=params) if extra or params else layers[-1]]
    return units


class VLPEncoder(nn.Module):
    """A vision-language model -> one vector per (text, picture). `train_blocks`: "default" (the paper's top
    blocks per tower), None (everything) or a number of top blocks for every tower."""

    def __init__(self, name, max_tokens=30, train_blocks="default"):
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        spec = vlp_spec(name)
        source = spec.source() if callable(spec.source) else spec.source
        self.name, self.pretrained, self.spec = name, spec.pretrained, spec
        choices = () if name in VLP_ENCODERS else VLP_ENCODERS.names()  # a typo of a registered name: say which
        config = from_pretrained(AutoConfig.from_pretrained, source, "vision-language model", choices)
        if config.model_type not in FAMILIES:
            raise ConfigError(f"vision-language model {name!r} is a {config.model_type!r} model; the kit takes "
                              f"{', '.join(FAMILIES)} (`mmsr list encoders`)")
        self.family, self.paradigm, default = FAMILIES[config.model_type]
        self.model = from_pretrained(AutoModel.from_pretrained, source, "vision-language model")
        try:
            self.tokenizer = from_pretrained(AutoTokenizer.from_pretrained, spec.tokenizer or source,
                                             "tokenizer of vision-language model")
        except ConfigError as error:  # a VisualBERT folder without its tokenizer, say
            raise ConfigError(f"{error} (VisualBERT checkpoints ship no tokenizer: save bert-base-uncased's "
                              "tokenizer into the model's folder)") from None
        text_config = getattr(config, "text_config", config)
        positions = text_config.max_position_embeddings
        self.max_tokens = min(max_tokens, positions)
        if max_tokens > positions:
            log.info("%s reads at most %d tokens: model.text_len=%d is cut to %d", name, positions, max_tokens, positions)
        self.visual_width = getattr(config, "visual_embedding_dim", None)  # VisualBERT: width of its visual tokens
        self.image_size = None
        if self.family != "visualbert":
            from transformers import AutoImageProcessor

            processor = from_pretrained(AutoImageProcessor.from_pretrained, source, "image processor of "
                                        "vision-language model")
            vision_config = getattr(config, "vision_config", None) or getattr(config, "image_config", None) or config
            self.image_size = vision_config.image_size  # pictures are resized to this (the model's own input size)
            set_pixel_statistics(self, processor.image_mean, processor.image_std)
        self.towers, self.always = self._towers(default)
        if self.family in ("clip", "groupvit"):
            self.width = 2 * config.projection_dim
        elif self.family == "flava":
            self.width = config.multimodal_config.hidden_size
        else:
            self.width = config.hidden_size
        self.set_trainable(train_blocks)

    def _towers(self, default):
        m, f = self.model, self.family
        if f in ("clip", "groupvit"):
            text, vision = _inner(m.text_model, "text_model"), _inner(m.vision_model, "vision_model")
            towers = [Tower("text", list(text.encoder.layers), [text.final_layer_norm, m.text_projection], default)]
            if f == "clip":
                towers.append(Tower("vision", list(vision.encoder.layers), [vision.post_layernorm, m.visual_projection],
                                    default))
            else:
                towers.append(Tower("vision", _groupvit_units(vision), [vision.layernorm, m.visual_projection], default))
            return towers, []
        if f == "vilt":
            return [Tower("joint", list(m.encoder.layer), [m.layernorm, m.pooler], default)], []
        if f == "visualbert":
            return [Tower("joint", list(m.encoder.layer), [m.pooler], default)], []
        text, image = m.text_model, m.image_model  # FLAVA: both unimodal towers, then the whole multimodal encoder
        return ([Tower("text", list(text.encoder.layer), [text.layernorm, m.text_to_mm_projection], default),
                 Tower("image", list(image.encoder.layer), [image.layernorm, m.image_to_mm_projection], default)],
                [m.multimodal_model])

    def set_trainable(self, k="default"):
        """k: "default" (each tower's paper default), None (everything) or a number of top blocks per tower."""
        self.train_blocks = k
        if k is None:
            self.requires_grad_(True)
            return
        self.requires_grad_(False)
        for module in self.trainable_modules():
            module.requires_grad_(True)

    def tower_blocks(self, tower):
        k = tower.default if self.train_blocks == "default" else self.train_blocks
        if not 0 <= k <= len(tower.blocks):
            raise ConfigError(f"cannot train the top {k} blocks of {self.name}'s {tower.name} tower, "
                              f"which has {len(tower.blocks)}")
        return k

    def trainable_modules(self):
        if self.train_blocks is None:
            return [self]
        out = []
        for tower in self.towers:
            k = self.tower_blocks(tower)
            out += tower.blocks[len(tower.blocks) - k :] + (tower.heads if k else [])
        return out + self.always

    def train(self, mode=True):
        return train_top(self, mode)

    def tokenize(self, texts):
        """Texts -> {"input_ids", "attention_mask"}: (n, max_tokens), padded to a fixed width."""
        out = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_tokens,
                             return_tensors="pt")
        return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}

    def _pixels(self, pictures):
        return normalise_pictures(pictures, self)

    def forward(self, input_ids, attention_mask, pictures=None, visual=None):
        """(U, T) token ids and mask, and uint8 pictures (U, 3, S, S) or, for VisualBERT, visual tokens
        ((U, R, visual_width), mask (U, R)) -> (U, width)."""
        m, f = self.model, self.family
        if f == "visualbert":
            if visual is None:
                raise ValueError("VisualBERT reads visual tokens, not pictures")
            tokens, mask = visual
            out = m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids),
                    visual_embeds=tokens, visual_attention_mask=mask.long(),
                    visual_token_type_ids=torch.ones(mask.shape, dtype=torch.long, device=mask.device))
            return out.pooler_output
        x = self._pixels(pictures)
        if f in ("clip", "groupvit"):
            text = m.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            image = m.get_image_features(pixel_values=x)
            pooled = lambda out: out if torch.is_tensor(out) else out.pooler_output  # noqa: E731 (a tensor in transformers 4)
            return torch.cat([pooled(text), pooled(image)], -1)
        if f == "vilt":
            pixel_mask = torch.ones((len(x), *x.shape[-2:]), dtype=torch.long, device=x.device)
            return m(input_ids=input_ids, attention_mask=attention_mask, pixel_values=x, pixel_mask=pixel_mask).pooler_output
        out = m(input_ids=input_ids, attention_mask=attention_mask, pixel_values=x)
        return out.multimodal_output.pooler_output  # FLAVA


# --- VisualBERT's visual inputs: frozen extractors, picture -> visual tokens ---------------------------------------

class VisualFeatures(nn.Module):
    """Base of the frozen extractors: (U, 3, S, S) uint8 -> (tokens (U, R, width), mask (U, R), pooled (U, width)).

    They look like a frozen encoder to the item encoder (`frozen`, `train_blocks = 0`), so their output is
    computed once per item and view and cached. `cache_noisy_views`: a synthetic training view's background
    noise is drawn once, when the cache is filled, and stays with that view. `calls` counts forward passes."""

    train_blocks = 0
    frozen = True
    prefix_cacheable = False
    pretrained = True
    cache_noisy_views = True

    settings = ()  # what else shapes the output besides the weights and the picture (part of the cache key)

    def __init__(self, name):
        super().__init__()
        self.name, self.calls = name, 0  # the name says which input and which extractor: "patch-vit:SOURCE"

    def _freeze(self):
        """Subclasses call this once their modules exist."""
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode=True):
        return super().train(False)  # frozen: always in eval mode

    def forward(self, pictures):
        self.calls += 1
        with torch.no_grad():
            tokens, mask = self.features(pictures)
        weights = mask.unsqueeze(-1).to(tokens.dtype)
        return tokens, mask, (tokens * weights).sum(1) / weights.sum(1).clamp(min=1)


class GridFeatures(VisualFeatures):
    """Grid-based: a CNN's last feature map, one token per cell (ResNet50: 7x7 = 49 at 224 px)."""

    def __init__(self, source, image_size):
        from .vision import VisionEncoder

        super().__init__(f"grid:{source}")
        self.encoder = VisionEncoder(source, image_size, train_blocks=0)
        self.image_size, self.width = self.encoder.image_size, self.encoder.width
        self._freeze()

    def features(self, pictures):
        tokens, mask, _ = self.encoder(pictures)
        return tokens, mask


class CLIPPatchFeatures(VisualFeatures):
    """Patch-based, from CLIP's vision tower: the patch embeddings that enter its first block (patch-embedding:
    "CLIP-ViT without its transformer blocks"), or its output tokens after every block (patch-vit)."""

    def __init__(self, source, through_blocks):
        import transformers
        from transformers import AutoImageProcessor, CLIPVisionModel

        super().__init__(f"{'patch-vit' if through_blocks else 'patch-embedding'}:{source}")
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()  # a whole CLIP's text tower is "unexpected" here: expected
        try:
            self.model = from_pretrained(CLIPVisionModel.from_pretrained, source, "CLIP vision tower")
        finally:
            transformers.logging.set_verbosity(verbosity)
        processor = from_pretrained(AutoImageProcessor.from_pretrained, source, "image processor of CLIP")
        set_pixel_statistics(self, processor.image_mean, processor.image_std)
        self.image_size, self.width = self.model.config.image_size, self.model.config.hidden_size
        self.through_blocks = through_blocks
        self._freeze()

    def features(self, pictures):
        x = normalise_pictures(pictures, self)
        if self.through_blocks:
            tokens = self.model(pixel_values=x).last_hidden_state
        else:
            vision = _inner(self.model, "vision_model")
            tokens = vision.pre_layrnorm(vision.embeddings(x))
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=x.device)


class RegionFeatures(VisualFeatures):
    """Region-based: a torchvision Faster R-CNN's detections (score at least `min_score`, at most `regions`), each
    box pooled from the feature pyramid and passed through the detector's box head (1024-d for ResNet50-FPN).
    Pictures are detected at their item size (min and max size `image_size`); below 224 px (CPU sizes) the region
    proposal network keeps 100 proposals instead of torchvision's 1000, which costs a tenth.

    `source`: a torchvision detection model name with its COCO weights (downloaded by torchvision to TORCH_HOME),
    `NAME@/path/weights.pth` (local weights) or `NAME@random` (random weights: tests, CPU demos). A picture with no
    box above `min_score` has its whole picture as its one region: counted in `whole_picture` and logged."""

    def __init__(self, source, image_size, regions=49, min_score=0.05):
        import torchvision.models.detection as detection

        super().__init__(f"region:{source}")
        self.settings = (regions, min_score, image_size)
        arch, _, weights = source.partition("@")
        if not arch.startswith("fasterrcnn_") or not hasattr(detection, arch):
            names = [n for n in dir(detection) if n.startswith("fasterrcnn_")]
            raise ConfigError(f"region extractor {arch!r} is not a torchvision Faster R-CNN; choose one of: "
                              f"{', '.join(names)}, optionally with @random or @/path/weights.pth")
        build = getattr(detection, arch)
        options = dict(min_size=image_size, max_size=image_size, box_score_thresh=min_score,
                       box_detections_per_img=regions)
        if image_size < 224:
            options.update(rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=100)
        self.detector = build(weights=None, weights_backbone=None, **options)
        if weights and weights != "random":
            if not Path(weights).expanduser().is_file():
                raise ConfigError(f"region extractor {source!r}: no weights file {weights!r}")
            state = torch.load(Path(weights).expanduser(), map_location="cpu", weights_only=True)
            self.detector.load_state_dict(state)
        elif not weights:
            try:
                state = detection.get_model_weights(arch).DEFAULT.get_state_dict(progress=False)
            except Exception as error:  # a download that cannot happen here: many error types, one meaning
                raise missing_model(arch, "region extractor", error,
                                    f"local weights (model.vlp_extractor={arch}@/path/weights.pth) or {arch}@random"
                                    ) from None
            self.detector.load_state_dict(state)
        self.image_size, self.regions = image_size, regions
        self.width = self.detector.roi_heads.box_head.fc7.out_features
        self.whole_picture = 0
        self._freeze()

    def features(self, pictures, chunk=32):
        """A few pictures at a time: each proposal's pooled map takes 50 KB."""
        parts = [self._detect(pictures[s : s + chunk]) for s in range(0, len(pictures), chunk)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _detect(self, pictures):
        d = self.detector
        images, _ = d.transform(list(pictures.float() / 255))
        maps = d.backbone(images.tensors)
        proposals, _ = d.rpn(images, maps)
        detections, _ = d.roi_heads(maps, proposals, images.image_sizes)
        boxes, whole = [], 0
        for det, (h, w) in zip(detections, images.image_sizes):
            b = det["boxes"][: self.regions]
            if not len(b):
                b = torch.tensor([[0.0, 0.0, w, h]], device=b.device)
                whole += 1
            boxes.append(b)
        if whole:
            if not self.whole_picture:
                log.warning("region extractor %s: pictures without a box scoring at least %.2f take their whole "
                            "picture as their one region (counted in whole_picture)", self.name,
                            d.roi_heads.score_thresh)
            self.whole_picture += whole
        pooled = d.roi_heads.box_head(d.roi_heads.box_roi_pool(maps, boxes, images.image_sizes))  # (sum R, width)
        tokens = pooled.new_zeros(len(boxes), self.regions, pooled.shape[-1])
        mask = torch.zeros(len(boxes), self.regions, dtype=torch.bool, device=pooled.device)
        for i, part in enumerate(pooled.split([len(b) for b in boxes])):
            tokens[i, : len(part)], mask[i, : len(part)] = part, True
        return tokens, mask


@dataclass
class VisualInput:
    build: Callable  # (source, image_size) -> VisualFeatures
    note: str


VISUAL_INPUTS = Registry("VisualBERT visual input")
VISUAL_INPUTS["region"] = VisualInput(RegionFeatures, "Faster R-CNN regions, score >= 0.05, at most 49 (torchvision)")
VISUAL_INPUTS["grid"] = VisualInput(GridFeatures, "a CNN's last feature map, one token per cell (ResNet50: 7x7)")
VISUAL_INPUTS["patch-embedding"] = VisualInput(lambda source, size: CLIPPatchFeatures(source, False),
                                               "CLIP-ViT patch embeddings, without its transformer blocks")
VISUAL_INPUTS["patch-vit"] = VisualInput(lambda source, size: CLIPPatchFeatures(source, True),
                                         "CLIP-ViT output tokens, after all its transformer blocks")


def vlp_paradigm(name):
    """The paradigm of a registered VLP, hub id or folder, from its config alone (no weights loaded)."""
    from transformers import AutoConfig

    spec = vlp_spec(name)
    source = spec.source() if callable(spec.source) else spec.source
    model_type = from_pretrained(AutoConfig.from_pretrained, source, "vision-language model").model_type
    return FAMILIES[model_type][1] if model_type in FAMILIES else None


def visual_extractor(vlp_name, visual, extractor="default", image_size=224):
    """VisualBERT's frozen extractor for visual input `visual`: `extractor` ("default": the one registered with
    the VLP; tiny VLPs get tiny extractors) or a source (a Faster R-CNN name, a vision encoder, a CLIP folder)."""
    kind = VISUAL_INPUTS[visual]
    source = vlp_spec(vlp_name).extractors.get(visual, HUB_EXTRACTORS[visual]) if extractor == "default" else extractor
    source = source() if callable(source) else source
    return kind.build(source, image_size)


