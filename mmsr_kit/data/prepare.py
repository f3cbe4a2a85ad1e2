"""`mmsr prepare FORMAT SOURCE_DIR OUT_DIR`: a real dataset as published -> the folder the kit trains on.

    OUT_DIR/
      items/                 the item table (item_id, text) as a `datasets` Arrow folder, items sorted by id
      interactions.parquet   user_id, item_id, timestamp; sorted by user id, then time, then input order
      images-224px.npy       uint8 (n_items + 1, 3, S, S): row i is the i-th item's picture, row 0 padding;
                             training memory-maps it, so no JPEG is decoded again
      missing_images.tsv     the kept items without a usable picture (item_id, problem, url where known)
      manifest.json          every option, input sizes and sha256, what each step kept, every problem with
                             examples, the paper's Table 1 statistics, and each output's sha256

The paper's preprocessing, as options with its defaults: users with fewer than 5 interactions are
dropped, then `sample_users` users are drawn with `seed`; texts are cut to 50 words; pictures are
resized to 224x224. Interactions are streamed in chunks (H&M's 31 million rows fit in a few GiB).
Rerunning with the same inputs and options writes byte-identical files.

Bad input is counted, logged with examples and summarised in the manifest; each kind has a fallback
(`PROBLEMS`) unless `strict` names it, which makes it an error. The format readers live in `formats.py`.
"""
import dataclasses
import hashlib
import io
import json
import logging
import multiprocessing
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Callable, Optional

import datasets
import numpy as np
import pandas as pd
import PIL.Image
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..registry import ConfigError, unknown_name_message
from .tables import item_table

log = logging.getLogger(__name__)

# kind of bad input -> what happens to it unless --strict makes it an error
PROBLEMS = {
    "bad_row": "the interaction is dropped (empty user or item id)",
    "bad_timestamp": "the interaction is dropped",
    "unknown_item": "the interaction is dropped (its item is not in the item file)",
    "duplicate_row": "kept once (same user, item and timestamp)",
    "duplicate_item": "the item's first row is kept",
    "empty_text": "kept with an empty text; its picture still describes it",
    "missing_image": "a grey picture",
    "corrupt_image": "a grey picture",
}
GREY = 128
N_EXAMPLES = 5


class PrepareError(ConfigError):
    """Bad input that `--strict` made an error, or inputs that cannot be read at all."""


@dataclass
class PrepareOptions:
    min_interactions: int = 5  # users with fewer (valid) interactions are dropped (the paper's 5)
    sample_users: int = 0  # then this many users are drawn at random (0: keep all; the paper: 100K-200K)
    seed: int = 0  # the draw of users
    max_words: int = 50  # item texts are cut to this many words (the paper's 50)
    image_size: int = 224  # pictures are resized to this square (the paper's 224)
    cold_threshold: int = 10  # for the statistics: items with fewer training occurrences are cold
    strict: tuple = ()  # kinds of bad input (PROBLEMS) that are errors; "all" for every kind
    workers: int = 0  # processes decoding pictures (0: one per CPU)

    def __post_init__(self):
        self.strict = tuple(sorted(set(self.strict)))
        for kind in self.strict:
            if kind != "all" and kind not in PROBLEMS:
                raise ConfigError(unknown_name_message("kind of bad input", kind, [*PROBLEMS, "all"]))
        for name in ("min_interactions", "max_words", "image_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1 (got {getattr(self, name)})")


@dataclass
class Source:
    """What a format reader hands to `prepare`.

    items: DataFrame with item_id, text, image (a file path or None) and optionally url (where the picture
        can be downloaded; listed for missing pictures).
    interactions: called once, yields chunks (pyarrow Tables or DataFrames) with user_id, item_id, timestamp.
    time_format: strptime format of the timestamps, or None: numbers are kept as they are, other strings are
        read as ISO 8601 dates (seconds since 1970).
    files: (name shown in the manifest, path) of each input file, checksummed in the manifest; pictures are
        checksummed as they are read.
    """

    items: pd.DataFrame
    interactions: Callable
    files: list
    time_format: Optional[str] = None
    notes: dict = field(default_factory=dict)  # format-specific facts for the manifest


class Problems:
    """Counts and examples of bad input; `done(kind)` logs it and raises when --strict names it."""

    def __init__(self, strict):
        self.strict = set(PROBLEMS) if "all" in strict else set(strict)
        self.counts = dict.fromkeys(PROBLEMS, 0)
        self.examples = {kind: [] for kind in PROBLEMS}

    def add(self, kind, count, examples=()):
        self.counts[kind] += int(count)
        room = N_EXAMPLES - len(self.examples[kind])
        self.examples[kind].extend(list(examples)[:max(room, 0)])

    def done(self, kind):
        count = self.counts[kind]
        if not count:
            return
        if kind in self.strict:
            raise PrepareError(f"{count} case(s) of {kind}, e.g. {self.examples[kind]}; without --strict {kind} "
                               f"the fallback would be: {PROBLEMS[kind]}")
        log.warning("%d case(s) of %s (%s), e.g. %s", count, kind, PROBLEMS[kind], self.examples[kind])

    def summary(self):
        return {kind: {"count": self.counts[kind], "handling": "error" if kind in self.strict else PROBLEMS[kind],
                       "examples": self.examples[kind]} for kind in PROBLEMS}


def file_digest(path, block=1 << 23):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def cut_words(text, max_words):
    return " ".join(str(text).split()[:max_words])


# ---------------------------------------------------------------- items


def clean_items(items, options, problems):
    """Sorted by id, one row per id, texts cut; returns the table and a dict id -> row."""
    items = items.copy()
    items["item_id"] = items["item_id"].astype(str).str.strip()
    items = items[items["item_id"] != ""]
    repeated = items["item_id"].duplicated()
    problems.add("duplicate_item", repeated.sum(), items.loc[repeated, "item_id"].head(N_EXAMPLES))
    problems.done("duplicate_item")
    items = items[~repeated].sort_values("item_id", kind="stable").reset_index(drop=True)
    items["text"] = [cut_words(t, options.max_words) if isinstance(t, str) else "" for t in items["text"]]
    images = items["image"] if "image" in items.columns else [None] * len(items)
    items["image"] = pd.Series([p if isinstance(p, str) and p else None for p in images], dtype=object)
    items["url"] = [u if isinstance(u, str) else "" for u in items.get("url", [""] * len(items))]
    return items, {item: row for row, item in enumerate(items["item_id"])}


# ---------------------------------------------------------------- interactions


def parse_times(values, time_format=None):
    """Strings -> float64 (NaN where unparsable): by `time_format`, else numbers as they are, else ISO 8601."""
    s = pd.Series(values, dtype=object).str.strip()
    if time_format:
        return _seconds(pd.to_datetime(s, format=time_format, errors="coerce", utc=True))
    out = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    rest = np.isnan(out) & s.notna().to_numpy() & (s != "").to_numpy()
    if rest.any():
        out[rest] = _seconds(pd.to_datetime(s[rest], errors="coerce", utc=True, format="ISO8601"))
    return out


def _seconds(t):
    """A datetime Series (NaT allowed) -> float64 seconds since 1970."""
    t = pd.Series(t)
    seconds = (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.to_numpy(dtype=np.float64, na_value=np.nan)


def _column(chunk, name):
    """A chunk's column as a pyarrow string (or dictionary of strings) array, nulls kept."""
    column = chunk.column(name).combine_chunks() if isinstance(chunk, pa.Table) else pa.array(chunk[name])
    if pa.types.is_string(column.type) or pa.types.is_dictionary(column.type):
        return column
    return column.cast(pa.string())


def _encode(column, lookup, grow):
    """Strings -> codes through `lookup` (str -> int); -1 for null or empty, -2 for unknown (when not `grow`)."""
    encoded = column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
    names = encoded.dictionary.to_pylist()
    if grow:
        codes = np.array([-1 if not name else lookup.setdefault(name, len(lookup)) for name in names], np.int64)
    else:
        codes = np.array([-1 if not name else lookup.get(name, -2) for name in names], np.int64)
    index = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.where(index >= 0, codes[np.maximum(index, 0)] if len(codes) else -1, -1), names, index


class InteractionReader:
    """Streams the interaction chunks into three arrays (user code, item row, time), counting bad rows."""

    def __init__(self, item_rows, time_format, problems):
        self.item_rows, self.time_format, self.problems = item_rows, time_format, problems
        self.users = {}  # user id -> code, in order of first appearance
        self.parts = []
        self.rows_read = 0

    def add(self, chunk):
        for name in ("user_id", "item_id", "timestamp"):
            if name not in (chunk.column_names if isinstance(chunk, pa.Table) else chunk.columns):
                raise PrepareError(f"interactions lack a {name} column")
        users, _, _ = _encode(_column(chunk, "user_id"), self.users, grow=True)
        items, item_names, item_index = _encode(_column(chunk, "item_id"), self.item_rows, grow=False)
        times_column = _column(chunk, "timestamp")
        times_column = times_column if pa.types.is_dictionary(times_column.type) else times_column.dictionary_encode()
        parsed = parse_times(times_column.dictionary.to_pylist(), self.time_format)
        time_index = times_column.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        times = np.where(time_index >= 0, parsed[np.maximum(time_index, 0)] if len(parsed) else np.nan, np.nan)
        self.rows_read += len(users)

        bad_row = (users < 0) | (items == -1)
        unknown = ~bad_row & (items == -2)
        bad_time = ~bad_row & ~unknown & np.isnan(times)
        first = self.rows_read - len(users) + 1  # the chunk's first row, counting data rows from 1
        self.problems.add("bad_row", bad_row.sum(), [f"row {first + int(r)}" for r in np.flatnonzero(bad_row)[:N_EXAMPLES]])
        self.problems.add("unknown_item", unknown.sum(),
                          dict.fromkeys(item_names[i] for i in item_index[unknown][:50]))
        if bad_time.any():
            raw = times_column.dictionary.to_pylist()
            self.problems.add("bad_timestamp", bad_time.sum(),
                              dict.fromkeys(raw[i] if i >= 0 else None for i in time_index[bad_time][:50]))
        ok = ~(bad_row | unknown | bad_time)
        self.parts.append((users[ok].astype(np.int32), items[ok].astype(np.int32), times[ok]))

    def arrays(self):
        for kind in ("bad_row", "unknown_item", "bad_timestamp"):
            self.problems.done(kind)
        if not self.parts:
            raise PrepareError("no interactions were read")
        user, item, time = (np.concatenate(column) for column in zip(*self.parts))
        self.parts = []
        return user, item, time


def drop_duplicates(user, item, time, user_names, item_ids, problems):
    """Exact repeats of (user, item, time) are kept once: the first in input order."""
    repeat = pd.DataFrame({"user": user, "item": item, "time": time}, copy=False).duplicated().to_numpy()  # hashed
    rows = np.flatnonzero(repeat)
    problems.add("duplicate_row", len(rows), [[user_names[user[r]], item_ids[item[r]], float(time[r])]
                                              for r in rows[:N_EXAMPLES]])
    problems.done("duplicate_row")
    return ~repeat


def choose_users(counts, user_names, options):
    """Users with at least min_interactions, then `sample_users` of them (drawn from the id-sorted list)."""
    enough = np.flatnonzero(counts >= options.min_interactions)
    ranked = enough[pc.sort_indices(pa.array([user_names[u] for u in enough], pa.string())).to_numpy()]
    if options.sample_users and options.sample_users < len(ranked):
        pick = np.random.default_rng(options.seed).choice(len(ranked), size=options.sample_users, replace=False)
        ranked = ranked[np.sort(pick)]
    elif options.sample_users:
        log.warning("sample_users=%d but only %d users have %d+ interactions: all are kept", options.sample_users,
                    len(ranked), options.min_interactions)
    return enough, ranked


def table1(user, item, n_users, n_items, cold_threshold):
    """The paper's Table 1 for interactions sorted by user then time (user codes 0..n_users-1, items 0..)."""
    counts = np.bincount(user, minlength=n_users)
    ends = np.cumsum(counts)
    heldout = np.zeros(len(user), bool)  # the last two of each user: validation and test targets
    heldout[ends - 1] = True
    heldout[(ends - 2)[counts >= 2]] = True
    train_counts = np.bincount(item[~heldout], minlength=n_items)
    first = np.zeros(len(user), bool)  # each user's first item: no prefix before it
    first[(ends - counts)[counts > 0]] = True
    return {
        "users": int(n_users), "items": int(n_items), "interactions": int(len(user)),
        "avg_length": round(float(len(user) / max(n_users, 1)), 4),
        "sparsity": round(1 - len(user) / max(n_users * n_items, 1), 6),
        "cold": int((train_counts[item[heldout]] < cold_threshold).sum()),  # held-out positions (the kit's `cold`)
        "cold_paper": int((train_counts[item[~first]] < cold_threshold).sum()),  # every position (`cold_paper`)
    }


# ---------------------------------------------------------------- pictures


def load_picture(path, size):
    """A picture file -> (uint8 (3, size, size) or None, problem or None, sha256 of the file or None)."""
    if not isinstance(path, str) or not os.path.isfile(path):
        return None, "missing_image", None
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when that is still >= size
            picture = np.asarray(image.convert("RGB").resize((size, size), PIL.Image.BICUBIC))
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError) as error:
        log.debug("unreadable picture %s: %s", path, error)
        return None, "corrupt_image", digest
    return picture.transpose(2, 0, 1), None, digest


def _picture_job(job):
    """Decode one picture and write its row into the store at its offset (workers write in parallel, nothing large
    goes back through a pipe); returns (problem, sha256 of the file, bytes of the file)."""
    path, size, store, offset = job
    picture, problem, digest = load_picture(path, size)
    fd = os.open(store, os.O_WRONLY)
    try:
        os.pwrite(fd, np.full((3, size, size), GREY, np.uint8).tobytes() if picture is None else picture.tobytes(),
                  offset)
    finally:
        os.close(fd)
    return problem, digest, os.path.getsize(path) if digest else 0


def write_pictures(path, items, size, workers, problems):
    """Decode and resize every item's picture into one .npy of uint8 (n + 1, 3, size, size), row 0 padding.

    Returns the checksum record of the picture files that were read, and the items without a usable picture."""
    n, row_bytes = len(items), 3 * size * size
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n + 1, 3, size, size)})
        start = f.tell() + row_bytes  # row 0 (padding) stays zeros
        f.truncate(start + n * row_bytes)
    jobs = [(p, size, str(path), start + row * row_bytes) for row, p in enumerate(items["image"])]
    workers = workers or os.cpu_count() or 1
    pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 and n > 1 else None
    h, present, total, missing = hashlib.sha256(), 0, 0, []
    try:
        results = pool.imap(_picture_job, jobs, chunksize=64) if pool else map(_picture_job, jobs)
        for item, url, (problem, digest, nbytes) in zip(items["item_id"], items["url"], results):
            if digest is not None:
                present, total = present + 1, total + nbytes
                h.update(f"{item}\t{digest}\n".encode())
            if problem:
                problems.add(problem, 1, [item])
                missing.append((item, problem, url))
    finally:
        if pool:
            pool.close()
            pool.join()
    return {"files": present, "bytes": total, "sha256": h.hexdigest()}, missing


# ---------------------------------------------------------------- the whole step


class Clock:
    """Logs the seconds each step took (never written into the outputs, which must not change between runs)."""

    def __init__(self):
        self.start = self.last = perf_counter()

    def lap(self, what):
        now = perf_counter()
        log.info("%s (%.1f s, %.1f s in all)", what, now - self.last, now - self.start)
        self.last = now


def prepare(source, out_dir, options=None, fmt="", force=False):
    """Run a format's Source through the pipeline into `out_dir`; returns the manifest (also written there)."""
    options = options or PrepareOptions()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise PrepareError(f"{out_dir} exists and is not empty (pass --force to replace it)")
    problems = Problems(options.strict)
    items, item_rows = clean_items(source.items, options, problems)
    clock = Clock()
    log.info("%d items in the item file; reading interactions", len(items))

    reader = InteractionReader(item_rows, source.time_format, problems)
    for chunk in source.interactions():
        reader.add(chunk)
    user, item, time = reader.arrays()
    clock.lap(f"read {reader.rows_read:,} interaction rows")
    user_names = list(reader.users)
    del reader.users
    steps = {"rows_read": reader.rows_read, "rows_valid": int(len(user)), "users_read": len(user_names)}

    keep = drop_duplicates(user, item, time, user_names, items["item_id"], problems)
    user, item, time = user[keep], item[keep], time[keep]
    counts = np.bincount(user, minlength=len(user_names))
    enough, chosen = choose_users(counts, user_names, options)
    steps.update(rows_unique=int(len(user)), users_with_enough=int(len(enough)), users_kept=int(len(chosen)))

    rank = np.full(len(user_names), -1, np.int64)  # kept users in id order: 0, 1, ...
    rank[chosen] = np.arange(len(chosen))
    rows = np.flatnonzero(rank[user] >= 0)
    user, item, time = rank[user[rows]], item[rows], time[rows]
    if not len(user):
        raise PrepareError(f"no user has {options.min_interactions} or more valid interactions "
                           f"({steps['rows_unique']:,} rows of {steps['users_read']:,} users read)")
    times = pd.factorize(time, sort=True)[0]  # dense rank of each time
    order = np.argsort(user * (times.max() + 1) + times, kind="stable")
    user, item, time = user[order], item[order], time[order]  # by user, then time; ties keep input order
    kept_items = np.flatnonzero(np.bincount(item, minlength=len(items)))  # kept items in id order
    renumber = np.full(len(items), -1, np.int64)
    renumber[kept_items] = np.arange(len(kept_items))
    item = renumber[item]
    items = items.iloc[kept_items].reset_index(drop=True)
    steps.update(rows_kept=int(len(user)), items_kept=int(len(items)))
    clock.lap(f"duplicates, filter, sample and sort: {len(chosen):,} users, {len(items):,} items kept")

    empty = items["text"].str.strip() == ""
    problems.add("empty_text", empty.sum(), items.loc[empty, "item_id"].head(N_EXAMPLES))
    problems.done("empty_text")

    tmp = out_dir.with_name(f".{out_dir.name}.partial-{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    try:
        pictures = f"images-{options.image_size}px.npy"
        images_in, missing = write_pictures(tmp / pictures, items, options.image_size, options.workers, problems)
        problems.done("missing_image")
        problems.done("corrupt_image")
        clock.lap(f"{len(items):,} pictures at {options.image_size} px")
        with open(tmp / "missing_images.tsv", "w") as f:
            f.write("item_id\tproblem\turl\n")
            f.writelines(f"{i}\t{p}\t{u}\n" for i, p, u in missing)
        datasets.disable_progress_bars()
        try:
            item_table(items["item_id"], items["text"]).save_to_disk(str(tmp / "items"))
        finally:
            datasets.enable_progress_bars()
        users_sorted = [user_names[u] for u in chosen]
        table = pa.table({
            "user_id": pa.DictionaryArray.from_arrays(pa.array(user, pa.int32()), pa.array(users_sorted, pa.string())),
            "item_id": pa.DictionaryArray.from_arrays(pa.array(item, pa.int32()), pa.array(items["item_id"], pa.string())),
            "timestamp": pa.array(time, pa.float64()),
        })
        pq.write_table(table, tmp / "interactions.parquet", compression="zstd", row_group_size=1 << 20)
        manifest = {
            "format": fmt,
            "options": dataclasses.asdict(options) | {"strict": list(options.strict), "workers": None},
            "inputs": {"files": [{"path": str(rel), "bytes": os.path.getsize(path), "sha256": file_digest(path)}
                                 for rel, path in source.files], "images": images_in},
            "source": source.notes,
            "steps": steps,
            "problems": problems.summary(),
            "statistics": table1(user, item, len(chosen), len(items), options.cold_threshold),
            "outputs": {"pictures": pictures, "files": {
                str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": file_digest(p)}
                for p in sorted(tmp.rglob("*")) if p.is_file()}},
        }
        clock.lap("tables written, outputs checksummed")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def load_prepared(folder):
    """A folder written by `prepare` -> RecDataset whose pictures are the memory-mapped store."""
    from datasets import load_from_disk

    from .tables import RecDataset, interaction_table

    folder = Path(folder).expanduser()
    manifest = json.loads((folder / "manifest.json").read_text())
    inter = pd.read_parquet(folder / "interactions.parquet")
    interactions = interaction_table(inter["user_id"].astype(str).to_numpy(), inter["item_id"].astype(str).to_numpy(),
                                     inter["timestamp"].to_numpy())
    pictures = folder / manifest["outputs"]["pictures"]
    dataset = RecDataset(folder.name, load_from_disk(str(folder / "items")), interactions,
                         pictures=str(pictures) if pictures.is_file() else None)
    dataset.notes.update({f"prepare_{kind}": p["count"] for kind, p in manifest["problems"].items() if p["count"]})
    return dataset
