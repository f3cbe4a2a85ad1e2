"""A synthetic multimodal world: items with attributes, titles and pictures; users with tastes.

What each modality carries (the point of the world):
- text only:  category, material
- image only: shape, pattern
- both:       colour
Users prefer one value per attribute. Each next item is drawn with probability
    popularity(i)^pop_weight * exp(taste_weight * match(user, i) + sequence_weight * sim(prev, i))
without repeats, where popularity is Zipf over a random order of the items; so content
explains much of the behaviour, and a long tail of rarely seen (cold) items exists.

Two domains share the attribute vocabulary but not items: `shop` (clean product shots,
shop-like titles) and `video` (cluttered covers with overlay bars, video-like titles).

Each item has a canonical title and picture (what evaluation sees) and, through
`SyntheticWorld.titles` / `SyntheticWorld.images` with a random generator, fresh views
(synonyms, filler words, geometry, colour jitter, pattern phase, background noise):
per-encode augmentation that keeps content encoders from memorising item identity.
"""
from dataclasses import dataclass

import numpy as np

ATTRIBUTES = ("category", "colour", "shape", "material", "pattern")
CATEGORIES = [
    ["bag", "handbag", "tote"], ["shoe", "sneaker", "trainer"], ["hat", "cap", "beanie"],
    ["shirt", "top", "tee"], ["dress", "gown", "frock"], ["jacket", "coat", "blazer"],
    ["scarf", "shawl", "wrap"], ["belt", "strap", "sash"],
]
COLOURS = [
    ["red", "crimson", "scarlet"], ["green", "emerald", "lime"], ["blue", "navy", "azure"],
    ["yellow", "golden", "lemon"], ["purple", "violet", "plum"], ["orange", "amber", "tangerine"],
    ["pink", "rose", "blush"], ["cyan", "teal", "turquoise"],
]
RGB = np.array([
    [0.85, 0.15, 0.15], [0.15, 0.70, 0.20], [0.15, 0.25, 0.85], [0.90, 0.85, 0.15],
    [0.55, 0.20, 0.70], [0.95, 0.55, 0.10], [0.95, 0.50, 0.70], [0.10, 0.75, 0.75],
], dtype=np.float32)
SHAPES = ["circle", "square", "triangle", "diamond", "cross", "ring"]
MATERIALS = [
    ["cotton", "cotton-blend"], ["leather", "hide", "suede"], ["wool", "woollen", "knit"],
    ["silk", "satin"], ["denim", "jean"], ["linen", "flax"],
]
PATTERNS = ["solid", "striped", "dotted", "checked"]
SIZES = (len(CATEGORIES), len(COLOURS), len(SHAPES), len(MATERIALS), len(PATTERNS))

FILLER = {
    "shop": (
        "new classic modern casual elegant soft light premium everyday slim relaxed "
        "vintage urban summer winter essential basic trendy chic cosy smart sporty "
        "limited edition style fit comfort quality season sale gift design original "
        "handmade natural fresh bold simple signature iconic lightweight durable warm "
        "cool practical timeless favourite select deluxe studio city weekend travel "
        "outdoor indoor unisex womens mens kids"
    ).split(),
    "video": (
        "watch haul review unboxing vlog tutorial how to try on styling tips best "
        "top ten my first look honest reaction challenge day in life guide diy quick "
        "easy budget luxury worth it ranking testing favourite compilation trends "
        "update shopping weekly daily story behind scenes outfit ideas season must have "
        "part series live episode edit show full"
    ).split(),
}


@dataclass
class WorldSpec:
    n_items: int = 2000
    n_users: int = 2500
    domain: str = "shop"
    seed: int = 0
    image_size: int = 32
    min_len: int = 8  # shortest user sequence
    max_len: int = 30  # longest user sequence
    zipf: float = 0.7  # popularity exponent
    pop_weight: float = 1.0
    taste_weight: float = 1.5
    sequence_weight: float = 1.0
    noise: float = 0.15  # pixel noise sigma of the background
    noise_bank: int = 512  # background noise images shared by all items (not tied to any item)


class SyntheticWorld:
    """Items, users and their interactions, all a function of `spec`."""

    def __init__(self, spec: WorldSpec):
        self.spec = spec
        # Domains differ in items: offset the seed so shop and video never share items.
        domain_salt = {"shop": 0, "video": 1}[spec.domain]
        self.rng_seed = [spec.seed, domain_salt]
        rng = np.random.default_rng(self.rng_seed)
        self.attrs = np.stack([rng.integers(0, n, spec.n_items) for n in SIZES], axis=1)  # (N, 5)
        ranks = rng.permutation(spec.n_items) + 1
        self.popularity = ranks.astype(np.float64) ** -spec.zipf
        self.popularity /= self.popularity.sum()
        self.tastes = np.stack([rng.integers(0, n, spec.n_users) for n in SIZES], axis=1)  # (U, 5)
        self._canonical_words = rng.integers(0, 1 << 30, spec.n_items)  # seeds of the canonical title
        self._canonical_view = rng.integers(0, 1 << 30, spec.n_items)  # seeds of the canonical picture
        self._noise_rng_seed = [spec.seed, domain_salt, 7]
        self._noise = None

    # ----- behaviour -----
    def logits(self, users, prev, sim=None):
        """Unnormalised log-probabilities of every item as the next one: (len(users), N).

        `sim` is the (N, N) count of shared attributes, passed in when called in a loop.
        """
        s = self.spec
        match = np.zeros((len(users), s.n_items), dtype=np.float32)
        for a in range(len(SIZES)):
            match += self.tastes[users, a][:, None] == self.attrs[None, :, a]  # (B, N)
        logit = s.pop_weight * np.log(self.popularity).astype(np.float32)[None, :] + s.taste_weight * match
        if prev is not None:
            sim = self.similarity() if sim is None else sim
            logit = logit + s.sequence_weight * sim[prev]
        return logit

    def similarity(self):
        """Shared attributes of every pair of items: (N, N) float32."""
        sim = np.zeros((self.spec.n_items, self.spec.n_items), dtype=np.float32)
        for a in range(len(SIZES)):
            sim += self.attrs[:, None, a] == self.attrs[None, :, a]
        return sim

    def sequences(self, chunk=1024):
        """Each user's chronological item indices (0-based), sampled without repeats."""
        s = self.spec
        rng = np.random.default_rng(self.rng_seed + [1])
        lengths = rng.integers(s.min_len, s.max_len + 1, s.n_users)
        out = np.full((s.n_users, s.max_len), -1, dtype=np.int64)
        sim = self.similarity() * s.sequence_weight
        for start in range(0, s.n_users, chunk):
            users = np.arange(start, min(start + chunk, s.n_users))
            rows = np.arange(len(users))
            base = self.logits(users, None)  # (B, N): popularity and taste, fixed per user
            prev = None
            for t in range(s.max_len):
                logit = base if prev is None else base + sim[prev]
                nxt = np.argmax(logit - np.log(rng.exponential(size=logit.shape)), axis=1)  # Gumbel-max draw
                out[users, t] = nxt
                base[rows, nxt] = -np.inf  # no repeats
                prev = nxt
        return [out[u, : lengths[u]] for u in range(s.n_users)]

    # ----- text -----
    def titles(self, items, rng=None):
        """Titles of `items`; canonical when rng is None, else freshly sampled synonyms and filler."""
        filler = FILLER[self.spec.domain]
        titles = []
        for item in np.asarray(items):
            r = rng if rng is not None else np.random.default_rng(self._canonical_words[item])
            cat, col, _, mat, _ = self.attrs[item]
            words = [r.choice(COLOURS[col]), r.choice(MATERIALS[mat]), r.choice(CATEGORIES[cat])]
            extra = list(r.choice(filler, size=r.integers(2, 5), replace=False))
            cut = r.integers(0, len(extra) + 1)
            title = extra[:cut] + words + extra[cut:]
            if self.spec.domain == "video":
                title = title[:cut] + ["|"] + title[cut:] if cut else title
            titles.append(" ".join(title))
        return titles

    # ----- images -----
    def noise_bank(self):
        if self._noise is None:
            s = self.spec
            r = np.random.default_rng(self._noise_rng_seed)
            self._noise = (r.standard_normal((s.noise_bank, s.image_size, s.image_size, 1)) * s.noise).astype(np.float32)
        return self._noise

    def images(self, items, rng=None, chunk=256, noise=True):
        """uint8 pictures (n, S, S, 3) of `items`; canonical when rng is None, else fresh views.

        noise=False leaves the background noise out, for augmentation that adds it per encode
        (a view with its noise baked in is one more thing to recognise an item by).
        """
        items = np.asarray(items)
        out = np.empty((len(items), self.spec.image_size, self.spec.image_size, 3), dtype=np.uint8)
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            if rng is None:
                params = [self._view_params(np.random.default_rng(self._canonical_view[i]), 1) for i in part]
                params = {k: np.concatenate([p[k] for p in params]) for k in params[0]}
            else:
                params = self._view_params(rng, len(part))
            out[start : start + chunk] = self._render(part, params, noise)
        return out

    def _view_params(self, rng, n):
        return {
            "cx": rng.uniform(-0.15, 0.15, n), "cy": rng.uniform(-0.15, 0.15, n),
            "scale": rng.uniform(0.45, 0.65, n), "jitter": rng.uniform(-0.06, 0.06, (n, 3)),
            "phase": rng.uniform(0, 2 * np.pi, n), "noise": rng.integers(0, self.spec.noise_bank, n),
            "clutter": rng.uniform(0, 1, (n, 4)),
        }

    def new_item(self, category="scarf", colour="red", shape="circle", material="silk", pattern="solid", seed=0):
        """A title and a picture (uint8 (S, S, 3), its canonical kind: no background noise) of an item this world
        does not hold, from its attributes by name (`CATEGORIES`, `COLOURS` and `MATERIALS` by their first word,
        `SHAPES`, `PATTERNS`); `seed` draws its filler words and the picture's geometry."""
        names = ([c[0] for c in CATEGORIES], [c[0] for c in COLOURS], SHAPES, [m[0] for m in MATERIALS], PATTERNS)
        attrs = []
        for attribute, value, choices in zip(ATTRIBUTES, (category, colour, shape, material, pattern), names):
            if value not in choices:
                raise ValueError(f"unknown {attribute} {value!r}; choose one of: {', '.join(choices)}")
            attrs.append(choices.index(value))
        rng = np.random.default_rng(seed)
        words = [COLOURS[attrs[1]][0], MATERIALS[attrs[3]][0], CATEGORIES[attrs[0]][0]]
        title = " ".join([*rng.choice(FILLER[self.spec.domain], size=2, replace=False), *words])
        picture = self._render(None, self._view_params(rng, 1), noise=False, attrs=np.array([attrs]))[0]
        return title, picture

    def _render(self, items, p, noise=True, attrs=None):
        """Pictures of `items` (or of attribute rows `attrs`, (n, 5)) with view parameters `p`."""
        s = self.spec.image_size
        attrs = self.attrs[items] if attrs is None else attrs
        n = len(attrs)
        axis = np.linspace(-1, 1, s, dtype=np.float32)
        yy, xx = np.meshgrid(axis, axis, indexing="ij")  # (S, S)
        dx = xx[None] - p["cx"][:, None, None].astype(np.float32)  # (n, S, S)
        dy = yy[None] - p["cy"][:, None, None].astype(np.float32)
        r = p["scale"][:, None, None].astype(np.float32)
        _, colour, shape, _, pattern = attrs.T
        dist = np.sqrt(dx**2 + dy**2)
        masks = {
            0: dist < r,
            1: np.maximum(abs(dx), abs(dy)) < 0.85 * r,
            2: (dy < 0.8 * r) & (abs(dx) < (dy + 0.8 * r) * 0.625),
            3: abs(dx) + abs(dy) < r,
            4: ((abs(dx) < 0.3 * r) & (abs(dy) < r)) | ((abs(dy) < 0.3 * r) & (abs(dx) < r)),
            5: (dist < r) & (dist > 0.55 * r),
        }
        mask = np.zeros((n, s, s), dtype=bool)
        for k, m in masks.items():
            mask[shape == k] = m[shape == k]
        freq = 3.5 * np.pi / r
        phase = p["phase"][:, None, None]
        shade = np.ones((n, s, s), dtype=np.float32)
        stripes = np.sin(dx * freq + phase) > 0
        dots = (np.sin(dx * freq + phase) > 0.5) & (np.sin(dy * freq + phase) > 0.5)
        checks = (np.sin(dx * freq + phase) > 0) ^ (np.sin(dy * freq) > 0)
        for k, m in ((1, stripes), (2, dots), (3, checks)):
            shade[pattern == k] = np.where(m[pattern == k], 0.45, 1.0)
        rgb = np.clip(RGB[colour] + p["jitter"].astype(np.float32), 0, 1)  # (n, 3)
        obj = shade[..., None] * rgb[:, None, None, :]  # (n, S, S, 3)
        background = self._background(n, p, yy, xx)
        img = np.where(mask[..., None], obj, background)
        if noise:
            img = img + self.noise_bank()[p["noise"]]
        return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)

    def _background(self, n, p, yy, xx):
        s = self.spec.image_size
        bg = np.full((n, s, s, 3), 0.92, dtype=np.float32)
        if self.spec.domain == "video":
            # Cluttered covers: a tinted backdrop, a dark caption bar and a bright badge.
            c = p["clutter"].astype(np.float32)
            bg = bg * (0.45 + 0.4 * c[:, None, None, :3])
            bar = (yy > 0.55 + 0.3 * c[:, 3:4, None] - 0.15)[..., None]
            bg = np.where(bar, 0.15, bg)
            badge = ((abs(xx + 0.75) < 0.2) & (abs(yy + 0.75) < 0.15))[None, ..., None]
            bg = np.where(badge, 0.98, bg)
        return bg
