"""Content item encoders: an item's text and picture -> one vector (MMSR, MMSR-T, MMSR-V).

`ItemContent` prepares every item's encoder inputs once (token ids, uint8 pictures at the encoder's
size), with `views` variants per item when the source can draw them (the synthetic world): training
picks one view per item each time it is encoded (per-encode augmentation), evaluation always view 0.
"""
import collections
import dataclasses
import hashlib
import io
import json
import logging
import os

import datasets
import numpy as np
import PIL.Image
import safetensors.torch
import torch
import torch.nn as nn
import torch.nn.functional as F

from .paths import cache_dir

NEEDS_PICTURES = {"carca++", "morec++", "mmsr", "mmsr_v", "vlp"}  # every mode that reads item pictures
TEXT_ONLY = ["mmsr_t", "fdsa", "vqrec", "idsr", "mostpop"]  # what runs on a dataset without pictures

log = logging.getLogger(__name__)

# Outputs of frozen encoders, shared by the runs of one process (a notebook trains several models on the same
# items): (fingerprint of encoder weights and inputs, device) -> what `_fill` computed. Most recent first, in a budget.
FROZEN_MEMO = collections.OrderedDict()
FROZEN_MEMO_BYTES = 2 << 30


def fingerprint(*parts):
    """sha256 over tensors (their bytes, shapes and dtypes) and plain values."""
    h = hashlib.sha256()
    for part in parts:
        if torch.is_tensor(part):
            t = part.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


def _memo_put(key, value):
    """value: (tensors, on_disk); states in files take no memory here, so they do not count against the budget."""
    FROZEN_MEMO[key] = value
    FROZEN_MEMO.move_to_end(key, last=False)
    size = lambda v: 0 if v[1] else sum(x.numel() * x.element_size() for x in v[0] if x is not None)  # noqa: E731
    while len(FROZEN_MEMO) > 1 and sum(size(v) for v in FROZEN_MEMO.values()) > FROZEN_MEMO_BYTES:
        FROZEN_MEMO.popitem(last=True)


NUMPY_DTYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.bfloat16: np.int16, torch.bool: np.bool_}


def _disk_files(key, count):
    folder = cache_dir() / "frozen"
    return [folder / f"{key}-{i}.npy" for i in range(count)], folder / f"{key}.json"


def _open_disk(key, count):
    """Memory-mapped states stored under `key` by an earlier `_fill` (of this or another run), or None."""
    files, done = _disk_files(key, count)
    if not done.exists():
        return None
    dtypes = json.loads(done.read_text())
    return tuple(None if name is None else torch.from_numpy(np.load(f, mmap_mode="c")).view(getattr(torch, name))
                 for f, name in zip(files, dtypes))


def _allocate(specs, key, device, on_disk):
    """Empty tensors for `specs` ((shape, dtype) or None each): on `device`, or in memory-mapped .npy files
    written as they are filled (finished by `_finish_disk`)."""
    if not on_disk:
        return [None if spec is None else torch.empty(spec[0], dtype=spec[1], device=device) for spec in specs]
    files, _ = _disk_files(key, len(specs))
    files[0].parent.mkdir(parents=True, exist_ok=True)
    out = []
    for f, spec in zip(files, specs):
        if spec is None:
            out.append(None)
            continue
        array = np.lib.format.open_memmap(f.with_name(f.stem + ".partial.npy"), mode="w+",
                                          dtype=NUMPY_DTYPES[spec[1]], shape=spec[0])
        out.append(torch.from_numpy(array).view(spec[1]))
    return out


def _finish_disk(key, out):
    files, done = _disk_files(key, len(out))
    for f, t in zip(files, out):
        if t is not None:
            os.replace(f.with_name(f.stem + ".partial.npy"), f)
    done.write_text(json.dumps([None if t is None else str(t.dtype).removeprefix("torch.") for t in out]))


def _take(states, items, view):
    """Rows (items, view) of cached states, on the items' device, floats as float32."""
    if states.device != items.device:  # memory-mapped on the host: gather there, move the rows only
        rows = states[items.cpu(), view.cpu()].to(items.device, non_blocking=True)
    else:
        rows = states[items, view]
    return rows.float() if rows.is_floating_point() else rows


def picture_store_path(dataset, size):
    """Where `item_pictures` keeps a dataset's pictures at `size`: named by the item table's fingerprint (its
    content) and, for pictures given as file paths, each file's size and modification time."""
    h = hashlib.sha256(f"{dataset.items._fingerprint}-{size}".encode())
    for entry in _picture_entries(dataset):
        if entry is not None and entry.get("bytes") is None and entry.get("path"):
            stat = os.stat(entry["path"]) if os.path.exists(entry["path"]) else None
            h.update(f"{entry['path']}:{stat and (stat.st_size, stat.st_mtime_ns)}".encode())
    return cache_dir() / "pictures" / f"{dataset.name.replace('/', '_')}-{size}px-{h.hexdigest()[:16]}.npy"


def _picture_entries(dataset, batch_size=1024):
    """The item table's pictures undecoded ({"bytes", "path"} or None), a batch at a time: never all in memory."""
    table = dataset.items.select_columns(["image"]).cast_column("image", datasets.Image(decode=False))
    for batch in table.iter(batch_size=batch_size):
        yield from batch["image"]


def _decode(entry, size):
    """A picture entry ({"bytes", "path"} or None) -> (uint8 (size, size, 3) or None, problem or None)."""
    if entry is None or (entry.get("bytes") is None and not entry.get("path")):
        return None, "missing_images"
    try:
        source = io.BytesIO(entry["bytes"]) if entry.get("bytes") is not None else entry["path"]
        with PIL.Image.open(source) as image:
            return np.asarray(image.convert("RGB").resize((size, size))), None
    except (OSError, ValueError, PIL.UnidentifiedImageError) as error:
        log.debug("unreadable picture %s: %s", entry.get("path") or "(bytes)", error)
        return None, "unreadable_images"


def _report(dataset, counts):
    for what, count in counts.items():
        if count:
            log.warning("%s: %d item(s) with %s picture are shown as grey", dataset.name, count,
                        "no" if what == "missing_images" else "an unreadable")
            dataset.notes[what] = count


def item_pictures(dataset, size, store=True):
    """Every item's picture as uint8 (N+1, 3, size, size), row 0 (padding) zeros; a missing or unreadable
    picture is grey, counted in `dataset.notes` and logged.

    Decoded and resized once per dataset and size into the picture store (an .npy file in the cache, see
    `picture_store_path`, with the counts beside it) and memory-mapped from there afterwards: later runs decode
    nothing, and a store larger than memory is read as it is used. `store=False` decodes without the cache.
    """
    if dataset.pictures is not None:
        return prepared_pictures(dataset, size)
    path = picture_store_path(dataset, size) if store else None
    if path is not None and path.exists() and path.with_suffix(".json").exists():
        _report(dataset, json.loads(path.with_suffix(".json").read_text()))
        return torch.from_numpy(np.load(path, mmap_mode="c"))  # copy-on-write: writable, the file never changes
    out = np.full((len(dataset.items) + 1, 3, size, size), 128, dtype=np.uint8)
    out[0] = 0
    counts = {"missing_images": 0, "unreadable_images": 0}
    for i, entry in enumerate(_picture_entries(dataset), start=1):
        picture, problem = _decode(entry, size)
        if problem:
            counts[problem] += 1
        else:
            out[i] = picture.transpose(2, 0, 1)
    _report(dataset, counts)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
        with open(partial, "wb") as f:
            np.save(f, out)
        path.with_suffix(".json").write_text(json.dumps(counts))
        os.replace(partial, path)  # atomic, and last: a crash never leaves half a store behind
    return torch.from_numpy(out)


def prepared_pictures(dataset, size, chunk=1024):
    """A prepared store (`mmsr prepare`) memory-mapped as it is; at another size, resized once into the cache
    (named by the store's size and modification time) and memory-mapped from there."""
    stored = np.load(dataset.pictures, mmap_mode="c")  # (N+1, 3, S, S)
    if stored.shape[-1] == size:
        return torch.from_numpy(stored)
    stat = os.stat(dataset.pictures)
    key = hashlib.sha256(f"{os.path.abspath(dataset.pictures)}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    path = cache_dir() / "pictures" / f"{dataset.name.replace('/', '_')}-{size}px-prepared-{key[:16]}.npy"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(stored), 3, size, size))
        for start in range(0, len(stored), chunk):
            out[start : start + chunk] = resize(torch.from_numpy(np.array(stored[start : start + chunk])), size).numpy()
        out.flush()
        del out
        os.replace(partial, path)
    return torch.from_numpy(np.load(path, mmap_mode="c"))


def resize(images, size):
    """uint8 (n, 3, S, S) -> uint8 (n, 3, size, size)."""
    if images.shape[-1] == size:
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


VIEWS_VERSION = 1  # bump when the views drawn below change, so cached ones are drawn again


def training_views(world, n_items, views, seed, text=None, vision=None, cache=True):
    """Views 1..`views` of items 0..n_items-1 drawn from a synthetic world: {"input_ids", "attention_mask": (N, V, T)}
    for `text`, {"images": (N, V, 3, S, S) uint8, noise-free} for `vision`. One generator seeded by `seed` draws
    every title view, then every picture view. Drawing them costs ~10 s at 2,000 items and 16 views, the same for
    every run on a world, so they are kept under the cache folder's `views/`, named by the world, the seed, the
    views and the tokenizer and picture size (`cache=False`: drawn every time, the reference for tests)."""
    parts = [VIEWS_VERSION, dataclasses.asdict(world.spec), n_items, views, seed,
             text and [text.name, type(text.tokenizer).__name__, len(text.tokenizer), text.max_tokens],
             vision and vision.image_size]
    path = cache_dir() / "views" / f"{hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]}.safetensors"
    if cache and path.is_file():
        return safetensors.torch.load_file(path)
    rng = np.random.default_rng([seed, 11])
    items = np.arange(n_items)
    out = {}
    if text is not None:
        titles = [world.titles(items, rng) for _ in range(views)]
        tokens = text.tokenize([t for view in titles for t in view])  # (V*N, T), view-major
        out = {key: value.view(views, n_items, -1).transpose(0, 1).contiguous() for key, value in tokens.items()}
    if vision is not None:
        pictures = [resize(torch.as_tensor(world.images(items, rng, noise=False)).permute(0, 3, 1, 2), vision.image_size)
                    for _ in range(views)]
        out["images"] = torch.stack(pictures, 1).contiguous()  # (N, V, 3, S, S)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        safetensors.torch.save_file(out, tmp)
        os.replace(tmp, path)  # whole or absent: runs started at once each write their own and one wins
        log.info("item views drawn and kept in %s", path)
    return out


class ItemContent(nn.Module):
    """Encoder inputs of items 1..N (row 0 is padding) as buffers, so they move with the model.

    input_ids, attention_mask: (N+1, V, T); images: (N+1, V, 3, S, S) uint8.
    View 0 is the item table's own title and picture: evaluation always sees it. When the source
    can draw variants (the synthetic world) and views > 0, views 1..`views` are fresh titles and
    noise-free pictures; training picks one per item each time it is encoded and adds background
    noise drawn from a bank not tied to any item (`noise`, int8), so nothing stable about an item's
    view lets an encoder recognise the item itself.
    """

    def __init__(self, data, text=None, vision=None, views=0, seed=0, mode=None, cache=True):
        super().__init__()
        dataset, world = data.dataset, data.dataset.world
        self.views = views if world is not None else 0  # training views besides view 0
        if vision is not None and not dataset.has_images:
            from .registry import ConfigError

            what = f"model.mode={mode} needs pictures and " if mode else ""
            raise ConfigError(f"{what}{dataset.name} has no images: use a text-only mode ({', '.join(TEXT_ONLY)})")
        fresh = training_views(world, data.n_items, self.views, seed, text, vision, cache) if self.views else {}
        if text is not None:
            for key, value in text.tokenize(list(dataset.items["text"])).items():  # view 0: the item table's
                value = value.unsqueeze(1)  # (N, 1, T)
                if key in fresh:
                    value = torch.cat([value, fresh[key]], 1)  # (N, V+1, T)
                self.register_buffer(key, torch.cat([torch.zeros_like(value[:1]), value]), persistent=False)
        if vision is not None:
            size = vision.image_size
            stored = item_pictures(dataset, size)  # (N+1, 3, S, S), row 0 padding
            if self.views:
                images = torch.cat([stored[1:].unsqueeze(1), fresh["images"]], 1)  # (N, V+1, 3, S, S)
                if images.numel() > 2**30:
                    log.warning("item pictures take %.1f GiB (%d views at %d px); data.views=0 keeps one per item",
                                images.numel() / 2**30, images.shape[1], size)
                images = torch.cat([torch.zeros_like(images[:1]), images])
            else:
                images = stored.unsqueeze(1)  # (N+1, 1, 3, S, S): no copy of a memory-mapped store
            self.register_buffer("images", images, persistent=False)
            if self.views:
                bank = torch.as_tensor(world.noise_bank()).permute(0, 3, 1, 2) * 255  # (B, 1, S0, S0) pixel units
                bank = F.interpolate(bank, size=(size, size), mode="nearest")
                self.register_buffer("noise", bank.round().clamp(-127, 127).to(torch.int8), persistent=False)

    def pick_views(self, items, training):
        if training and self.views:
            return torch.randint(1, self.views + 1, items.shape, device=items.device)
        return torch.zeros_like(items)

    def pictures(self, items, view):
        """uint8 (U, 3, S, S): the chosen views, with fresh background noise on the training views."""
        views = self.images.shape[1]
        images = self.images.flatten(0, 1).index_select(0, items * views + view)  # ~8x faster than images[items, view]
        if not self.views:
            return images
        pick = torch.randint(0, len(self.noise), items.shape, device=items.device)
        noise = self.noise.index_select(0, pick)
        noise[view == 0] = 0  # view 0 (the item table's picture) stays as it is
        return images.to(torch.int16).add_(noise).clamp_(0, 255).to(torch.uint8)


class ContentItemEncoder(nn.Module):
    """Item index -> vector from its text (MMSR-T), picture (MMSR-V), or both through a fusion (MMSR).

    A frozen encoder (no trained blocks: model.text_blocks=0 / vision_blocks=0, and no MAE masking) is a
    fixed function of the item: its outputs for every item and view are computed once, on first use, and
    looked up afterwards. An encoder that trains only its top k blocks (text: Hugging Face encoders; vision:
    timm ViT / EfficientNet) gets the same for the states entering those blocks, and runs only the k blocks
    per step. Not for pictures with per-encode noise (synthetic training views): not a fixed function there,
    so those run in full (logged once). `cache_frozen=False` runs everything each
    time (the reference, for tests and benchmarks).
    """

    def __init__(self, content, hidden, text=None, vision=None, fusion=None, dropout=0.1, cache_frozen=True,
                 cache_dtype=torch.float32, cache_memory_bytes=2 << 30, project=True, adaptor="auto"):
        from .adaptors import build_adaptor

        super().__init__()
        self.content, self.text, self.vision, self.fusion = content, text, vision, fusion
        self.cache_frozen, self.cache_dtype, self.cache_memory_bytes = cache_frozen, cache_dtype, cache_memory_bytes
        self._frozen_outputs = {}  # (which, "outputs" | "prefix") -> tensors for every (item, view); see _fill
        self._said_random = set()  # encoders whose frozen part could not be cached (logged once each)
        if fusion is None and project:  # one modality: adapt its pooled vector (project=False: callers use encode)
            encoder = text if text is not None else vision
            self.proj = build_adaptor(adaptor, encoder.width, hidden, dropout, encoder)  # model.adaptor

    def _inputs(self, which, items, view, trim=True):
        """The encoder's arguments for `items` in `view`s: (token ids, mask), cut to the batch's longest text
        unless trim=False, or (pictures,)."""
        if which == "vision":
            return (self.content.pictures(items, view),)
        ids, mask = self.content.input_ids[items, view], self.content.attention_mask[items, view]  # (U, T)
        if trim and ids.device.type == "cpu":  # on a GPU the fixed width costs less than waiting for this number
            width = int(mask.sum(1).max())  # drop the columns that are padding for every item of the batch
            ids, mask = ids[:, :width], mask[:, :width]
        return ids, mask

    def _fixed_inputs(self, which):
        """Whether the encoder's input is a fixed function of (item, view): not for training pictures, which
        get fresh noise per encode; there nothing below the trained blocks is cached."""
        return which == "text" or not self.content.views or getattr(getattr(self, which), "cache_noisy_views", False)

    def _keeps_tokens(self):
        """Whether the cached outputs of a frozen encoder keep token states (fusions that read tokens), or only
        the pooled vector."""
        return getattr(self.fusion, "uses_tokens", False)

    def _memo_key(self, which, what):
        encoder = getattr(self, which)
        inputs = ((self.content.input_ids, self.content.attention_mask, encoder.pooling) if which == "text"
                  else (self.content.images,))
        weights = [t for _, t in sorted(encoder.state_dict().items())]
        return fingerprint(which, what, type(encoder).__name__, encoder.name, getattr(encoder, "settings", ()),
                           encoder.train_blocks, self.cache_dtype,
                           self._keeps_tokens(), *inputs, *weights)

    @torch.no_grad()
    def _fill(self, which, what, device, key, chunk=256):
        """For every item and view, rows item-major: what == "outputs" (a frozen encoder): (tokens, mask, pooled),
        tokens and mask only for fusions that read tokens; what == "prefix": (states entering the trained
        blocks,). Texts at full width, so every item lines up. Floats are kept as `cache_dtype`; on the device
        when they fit `cache_memory_bytes`, else in memory-mapped files in the cache folder under `key` (a later
        run with the same weights and inputs opens them again). Returns (tensors, on_disk)."""
        encoder = getattr(self, which)
        n, views = self._shape(which)
        keep_tokens = self._keeps_tokens()  # coarse fusions and one modality: pooled only
        items = torch.arange(n, device=device).repeat_interleave(views)  # item-major, like (N+1, V)
        view = torch.arange(views, device=device).repeat(n)
        run = encoder.prefix if what == "prefix" else encoder
        training = encoder.training
        encoder.train(False)
        out = on_disk = None
        try:
            for s in range(0, len(items), chunk):
                result = run(*self._inputs(which, items[s : s + chunk], view[s : s + chunk], trim=False))
                parts = (result,) if what == "prefix" else (*(result[:2] if keep_tokens else (None, None)), result[2])
                if out is None:
                    specs = [None if p is None else ((len(items), *p.shape[1:]),
                                                     self.cache_dtype if p.is_floating_point() else p.dtype)
                             for p in parts]
                    nbytes = sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in filter(None, specs))
                    on_disk = nbytes > self.cache_memory_bytes
                    if on_disk:
                        log.info("%s encoder %s: %.1f GiB of frozen states go to memory-mapped files in %s", which,
                                 encoder.name, nbytes / 2**30, cache_dir() / "frozen")
                    out = _allocate(specs, key, device, on_disk)
                for o, p in zip(out, parts):
                    if o is not None:
                        o[s : s + len(p)] = p.to(o.device, o.dtype)
        finally:
            encoder.train(training)
        if on_disk:
            _finish_disk(key, out)
        if what == "prefix":
            log.info("%s encoder %s: the states below its top %d block(s) are computed once for %d items x %d "
                     "views", which, encoder.name, encoder.train_blocks, n - 1, views)
        else:
            log.info("%s encoder %s is frozen: its outputs for %d items x %d views are computed once", which,
                     encoder.name, n - 1, views)
        return tuple(out), on_disk

    def _shape(self, which):
        return self.content.input_ids.shape[:2] if which == "text" else self.content.images.shape[:2]

    def _cached(self, which, what, device):
        """What `_fill` computes, shaped (N+1, V, ...): from this encoder's own reference, the process-wide memo,
        files of an earlier run, or computed now. States in files stay on the host (`_take` moves the rows a step
        needs); those in memory are on the device."""
        cached = self._frozen_outputs.get((which, what))
        if cached is not None and (cached[1] or cached[0][-1].device == device):
            return cached[0]
        key = self._memo_key(which, what)
        found = FROZEN_MEMO.get((key, device)) or FROZEN_MEMO.get((key, "disk"))
        if found is None:
            opened = _open_disk(key, 1 if what == "prefix" else 3)
            n, views = self._shape(which)
            flat, on_disk = (opened, True) if opened is not None else self._fill(which, what, device, key)
            tensors = tuple(None if x is None else x.view(n, views, *x.shape[1:]) for x in flat)
            found = (tensors, on_disk)
            _memo_put((key, "disk" if on_disk else device), found)
        self._frozen_outputs[which, what] = found
        return found[0]

    def encode(self, which, items, view):
        """(tokens, mask, pooled) of `items` in `view`s: from cached outputs (frozen encoder), from cached prefix
        states through the trained blocks (encoders that train their top blocks only), or a full forward."""
        encoder = getattr(self, which)
        cacheable = self.cache_frozen and (encoder.frozen or encoder.prefix_cacheable)
        if self.cache_frozen and getattr(encoder, "mask_ratio", 0) and encoder.train_blocks != 0:
            if which not in self._said_random:  # MAE masking: a random subset of patches enters the first block
                self._said_random.add(which)
                log.info("%s encoder %s: MAE masking (model.mask_ratio=%g) draws patches at random before its "
                         "blocks, so nothing below the trained blocks is cached: the full forward runs every step",
                         which, encoder.name, encoder.mask_ratio)
        if cacheable and not self._fixed_inputs(which):
            if which not in self._said_random:
                self._said_random.add(which)
                log.info("%s encoder %s: training pictures get fresh noise per encode, so its frozen part runs in "
                         "full every step (data.views=0 caches it)", which, encoder.name)
            cacheable = False
        if not cacheable:
            return encoder(*self._inputs(which, items, view))
        if encoder.frozen:
            tokens, mask, pooled = self._cached(which, "outputs", items.device)
            if tokens is None:
                return None, None, _take(pooled, items, view)
            return _take(tokens, items, view), _take(mask, items, view), _take(pooled, items, view)
        (states,) = self._cached(which, "prefix", items.device)
        args = self._inputs(which, items, view)
        states = _take(states, items, view)
        if which == "text":
            states = states[:, : args[0].shape[1]]  # the batch's width
        return encoder(*args, prefix_states=states)

    def forward(self, items):  # (U,) -> (U, D)
        view = self.content.pick_views(items, self.training)
        if self.fusion is None:
            return self.proj(self.pooled(items, view))
        return self.fusion(*[self.encode(which, items, view) for which in ("text", "vision")])

    def pooled(self, items, view):
        """(U, width): the one encoder's pooled vector, what the adaptor (`proj`) reads."""
        return self.encode("text" if self.text is not None else "vision", items, view)[2]

    @torch.no_grad()
    def fit_adaptor(self, chunk=1024):
        """An adaptor with statistics (`whiten`) computes them once, from every catalogue item's pooled vector
        (the evaluation view, evaluation mode); they are buffers, saved with the run's weights."""
        adaptor = getattr(self, "proj", None)
        if not getattr(adaptor, "needs_fit", False):
            return
        training = self.training
        self.eval()
        try:
            device = next(self.buffers()).device
            n = self.content.input_ids.shape[0] if hasattr(self.content, "input_ids") else self.content.images.shape[0]
            items = torch.arange(1, n, device=device)
            adaptor.fit(torch.cat([self.pooled(part, torch.zeros_like(part)).float() for part in items.split(chunk)]))
        finally:
            self.train(training)
        log.info("adaptor %s: statistics of %d items' vectors computed once", type(adaptor).__name__, n - 1)

    def encoder_parameters(self):
        """Parameters of the pretrained encoders (train.encoder_lr); encoders trained from scratch are not among them."""
        return [p for m in (self.text, self.vision) if m is not None and m.pretrained for p in m.parameters()]


class VLPItemEncoder(ContentItemEncoder):
    """Item index -> vector through one vision-language model (mode vlp): its vector for the item's text and
    picture, projected to the recommender's width.

    VisualBERT reads visual tokens from a frozen extractor (`extractor`) instead of pixels: they come from the
    frozen-output cache of `ContentItemEncoder` (computed once per item and view, in memory or on disk), then pass
    a trained linear map to VisualBERT's visual width.
    """

    def __init__(self, content, hidden, vlp, extractor=None, dropout=0.1, adaptor="auto", **cache):
        from .adaptors import build_adaptor

        super().__init__(content, hidden, text=None, vision=extractor, fusion=None, dropout=dropout, project=False,
                         **cache)
        self.vlp = vlp
        if extractor is not None:
            self.visual_proj = nn.Linear(extractor.width, vlp.visual_width)
        self.proj = build_adaptor(adaptor, vlp.width, hidden, dropout, vlp)  # model.adaptor

    def _keeps_tokens(self):
        return True  # VisualBERT attends over every visual token

    def forward(self, items):  # (U,) -> (U, D)
        return self.proj(self.pooled(items, self.content.pick_views(items, self.training)))

    def pooled(self, items, view):
        """(U, width): the VLP's vector of each item's text and picture, what the adaptor reads."""
        ids, mask = self._inputs("text", items, view)
        if self.vision is not None:
            tokens, token_mask, _ = self.encode("vision", items, view)
            return self.vlp(ids, mask, visual=(self.visual_proj(tokens), token_mask))
        return self.vlp(ids, mask, pictures=self._inputs("vision", items, view)[0])

    def encoder_parameters(self):
        return list(self.vlp.parameters()) if self.vlp.pretrained else []
