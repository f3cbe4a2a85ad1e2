"""Readers for `mmsr prepare`: each turns one published layout into a `prepare.Source`.

    hm         Kaggle H&M: articles.csv, customers.csv, transactions_train.csv, images/0xx/0xxxxxxxxx.jpg
    amazon     Amazon reviews 2018: <Category>.csv (item,user,rating,timestamp) or <Category>.json.gz
               (reviews), meta_<Category>.json.gz, pictures in images/<asin>.jpg (you download them)
    microlens  MicroLens / Bili-style: *_pairs.csv (user,item,timestamp) or *_pairs.tsv, *_titles.csv
               (item,title), *covers/<item>.jpg
    pixelrec   PixelRec: an interaction csv (item_id,user_id,timestamp), an item-info csv (item_id, ...,
               title, tag, description), cover/<item_id>.jpg
    atomic     RecBole atomic files: NAME.inter, NAME.item, images/<item_id>.jpg
    folder     the kit's own plain layout (data/README.md): interactions.csv, items.csv, images/

A reader only finds files and says how to read them; `prepare.prepare` does everything else the same
way for all formats. Interactions are streamed with pyarrow's CSV reader, 64 MiB at a time.
"""
import ast
import gzip
import json
import os
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..registry import Registry
from .atomic import IMAGE_SUFFIXES
from .prepare import PrepareError, Source

FORMATS = Registry("format")  # name -> function(source_dir, images=None, interactions=None, category=None) -> Source
BLOCK = 1 << 26


def _need(path, what):
    if not Path(path).is_file():
        raise PrepareError(f"{what}: {path} not found")
    return Path(path)


def _one(folder, pattern, what, given=None):
    """The single file matching `pattern` under `folder` (or `given`), else a clear error."""
    if given:
        return _need(Path(folder) / given if not Path(given).is_absolute() else given, what)
    found = sorted(Path(folder).glob(pattern))
    if len(found) != 1:
        names = [p.name for p in found] or "none"
        raise PrepareError(f"{what}: expected one file matching {pattern!r} in {folder}, found {names}"
                           + ("; pick one with --interactions" if found else ""))
    return found[0]


def _header(path, delimiter=","):
    """A CSV's column names (gzipped or not)."""
    return list(pd.read_csv(path, nrows=0, sep=delimiter, dtype=str).columns)


def csv_chunks(path, rename, names=None, delimiter=",", quote=True):
    """Stream a CSV as pyarrow Tables of string columns renamed by `rename` (raw name -> kit name).

    names: the column names when the file has no header."""
    if names is None:
        columns = _header(path, delimiter)
        missing = [c for c in rename if c not in columns]
        if missing:
            raise PrepareError(f"{path}: no column(s) {missing} (found {columns})")
    read = pacsv.ReadOptions(block_size=BLOCK, column_names=names)
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if quote else False)
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in rename}, include_columns=list(rename),
                                   quoted_strings_can_be_null=False, strings_can_be_null=False)
    with pacsv.open_csv(str(path), read_options=read, parse_options=parse, convert_options=convert) as reader:
        for batch in reader:
            yield pa.Table.from_batches([batch]).rename_columns([rename[c] for c in batch.schema.names])


def read_table(path, delimiter=","):
    """A small CSV (an item file) with every value a string, empty for missing."""
    return pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False)


def join_text(*parts):
    """Non-empty parts joined with '. ' (lists flattened, repeats dropped)."""
    flat = []
    for part in parts:
        for piece in part if isinstance(part, (list, tuple)) else [part]:
            piece = str(piece or "").strip()
            if piece and piece not in flat:
                flat.append(piece)
    return ". ".join(flat)


def pictures_in(folder):
    """item id -> picture path for every picture file directly in `folder` (first by suffix order)."""
    found = {}
    if folder is not None and Path(folder).is_dir():
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            stem, suffix = os.path.splitext(entry.name)
            if suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
                found.setdefault(stem, entry.path)
    return found


def _rel(folder, *paths):
    return [(os.path.relpath(p, folder), p) for p in paths if p is not None]


@FORMATS.register("hm")
def hm(folder, images=None, interactions=None, category=None):
    """Kaggle H&M. Item text: name, category tags (product type, colour, pattern, section, garment group),
    then the description, so that equal descriptions differ (the paper adds tags for this reason)."""
    folder = Path(folder)
    articles_path = _need(folder / "articles.csv", "hm articles")
    transactions = _one(folder, "transactions_train.csv", "hm transactions", interactions)
    articles = read_table(articles_path)
    ids = articles["article_id"].str.strip().str.zfill(10)  # the id is 10 digits; spreadsheets drop the 0
    tags = ["product_type_name", "colour_group_name", "graphical_appearance_name", "section_name",
            "garment_group_name"]
    missing = [c for c in ["article_id", "prod_name", "detail_desc", *tags] if c not in articles.columns]
    if missing:
        raise PrepareError(f"{articles_path}: no column(s) {missing}")
    texts = [join_text(row.prod_name, ", ".join(v for v in (getattr(row, t) for t in tags) if v), row.detail_desc)
             for row in articles.itertuples()]
    pictures = Path(images or folder / "images")
    items = pd.DataFrame({"item_id": ids, "text": texts, "image": [str(pictures / i[:3] / f"{i}.jpg") for i in ids]})

    def chunks():
        for chunk in csv_chunks(transactions, {"t_dat": "timestamp", "customer_id": "user_id",
                                               "article_id": "item_id"}):
            ids = chunk.column("item_id").combine_chunks().dictionary_encode()  # zfill each distinct id once
            padded = pa.array(pd.Series(ids.dictionary.to_pylist(), dtype=object).str.zfill(10), pa.string())
            yield chunk.set_column(chunk.column_names.index("item_id"), "item_id",
                                   pa.DictionaryArray.from_arrays(ids.indices, padded))

    customers = folder / "customers.csv"
    return Source(items, chunks, _rel(folder, articles_path, customers if customers.is_file() else None,
                                      transactions), time_format="%Y-%m-%d")


def _json_lines(path):
    """Objects of a JSON-lines file (.gz or not); the 2014 Amazon files' Python-literal lines too."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                try:
                    yield ast.literal_eval(line)
                except (ValueError, SyntaxError):
                    raise PrepareError(f"{path}: line {number} is neither JSON nor a Python literal") from None


@FORMATS.register("amazon")
def amazon(folder, images=None, interactions=None, category=None):
    """Amazon reviews 2018 (one category). Ratings from <Category>.csv, or the reviews <Category>.json.gz;
    item text: title, brand and categories; pictures from images/<asin>.jpg, which you download (the
    command lists the missing ones with their URLs in missing_images.tsv)."""
    folder = Path(folder)
    meta = _one(folder, f"meta_{category or '*'}.json*", "amazon metadata (meta_<Category>.json.gz)")
    category = category or re.sub(r"^meta_|\.json(\.gz)?$", "", meta.name)
    if interactions is None:
        candidates = [folder / f"{category}.csv", folder / f"{category}.json.gz", folder / f"{category}_5.json.gz",
                      folder / f"{category}.json"]
        interactions = next((p for p in candidates if p.is_file()), None)
        if interactions is None:
            raise PrepareError(f"amazon: none of {[p.name for p in candidates]} in {folder}")
    else:
        interactions = _need(folder / interactions, "amazon interactions")
    rows = []
    for obj in _json_lines(meta):
        urls = obj.get("imageURLHighRes") or obj.get("imageURL") or obj.get("imUrl") or []
        title = re.sub(r"<[^>]*>", " ", str(obj.get("title") or ""))  # some 2018 titles carry HTML
        rows.append((obj.get("asin", ""), join_text(title, obj.get("brand"),
                                                    _flatten(obj.get("category") or obj.get("categories"))),
                     urls[0] if isinstance(urls, list) and urls else (urls or "")))
    items = pd.DataFrame(rows, columns=["item_id", "text", "url"])
    found = pictures_in(images or folder / "images")
    items["image"] = [found.get(i) for i in items["item_id"]]

    if interactions.suffix == ".csv":
        def chunks():
            yield from csv_chunks(interactions, {"item": "item_id", "user": "user_id", "timestamp": "timestamp"},
                                  names=["item", "user", "rating", "timestamp"])
    else:
        def chunks(size=500_000):
            batch = []
            for obj in _json_lines(interactions):
                batch.append((obj.get("reviewerID", ""), obj.get("asin", ""), str(obj.get("unixReviewTime", ""))))
                if len(batch) == size:
                    yield pd.DataFrame(batch, columns=["user_id", "item_id", "timestamp"])
                    batch = []
            if batch:
                yield pd.DataFrame(batch, columns=["user_id", "item_id", "timestamp"])

    return Source(items, chunks, _rel(folder, meta, interactions), notes={"category": category})


def _flatten(value):
    """Amazon categories: a list, or (2014) a list of lists."""
    if not value:
        return []
    return [c for part in value for c in (part if isinstance(part, list) else [part])]


@FORMATS.register("microlens")
def microlens(folder, images=None, interactions=None, category=None):
    """MicroLens (Bili/Kwai-style short videos): item text is the title; covers are <item>.jpg."""
    folder = Path(folder)
    titles = _one(folder, "*titles.csv", "microlens titles (*_titles.csv)")
    try:
        pairs = _one(folder, "*pairs.csv", "microlens interactions", interactions)
    except PrepareError:
        pairs = _one(folder, "*pairs.tsv", "microlens interactions (*_pairs.csv or *_pairs.tsv)")
    table = read_table(titles)
    covers = images or next((p for p in sorted(folder.glob("*covers*")) if p.is_dir()), folder / "covers")
    found = pictures_in(covers)
    items = pd.DataFrame({"item_id": table["item"], "text": table["title"]})
    items["image"] = [found.get(i) for i in items["item_id"]]
    if pairs.suffix == ".csv":
        def chunks():
            yield from csv_chunks(pairs, {"user": "user_id", "item": "item_id", "timestamp": "timestamp"})
    else:  # user \t item item item ... in time order: the position is the timestamp
        def chunks():
            with open(pairs, encoding="utf-8") as f:
                rows = [(user, item, str(t)) for line in f if line.strip()
                        for user, seq in [line.rstrip("\n").split("\t", 1)] for t, item in enumerate(seq.split())]
            yield pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Source(items, chunks, _rel(folder, titles, pairs))


@FORMATS.register("pixelrec")
def pixelrec(folder, images=None, interactions=None, category=None):
    """PixelRec: item text is title, tag and description; covers are <item_id>.jpg in cover/."""
    folder = Path(folder)
    by_kind = {"interactions": [], "items": []}
    for path in sorted(folder.rglob("*.csv")):
        columns = set(_header(path))
        if {"user_id", "item_id", "timestamp"} <= columns:
            by_kind["interactions"].append(path)
        elif {"item_id", "title"} <= columns:
            by_kind["items"].append(path)
    if interactions:
        by_kind["interactions"] = [_need(folder / interactions, "pixelrec interactions")]
    for kind, paths in by_kind.items():
        if len(paths) != 1:
            raise PrepareError(f"pixelrec: expected one {kind} csv under {folder}, found "
                               f"{[str(p.relative_to(folder)) for p in paths] or 'none'}"
                               + ("; pick one with --interactions" if kind == "interactions" and paths else ""))
    table = read_table(by_kind["items"][0])
    texts = [join_text(*(getattr(row, c, "") for c in ("title", "tag", "description"))) for row in table.itertuples()]
    covers = images or next((folder / n for n in ("cover", "covers") if (folder / n).is_dir()), folder / "cover")
    found = pictures_in(covers)
    items = pd.DataFrame({"item_id": table["item_id"], "text": texts, "image": [found.get(i) for i in table["item_id"]]})

    def chunks():
        yield from csv_chunks(by_kind["interactions"][0], {"user_id": "user_id", "item_id": "item_id",
                                                            "timestamp": "timestamp"})
    return Source(items, chunks, _rel(folder, by_kind["items"][0], by_kind["interactions"][0]))


@FORMATS.register("atomic")
def atomic(folder, images=None, interactions=None, category=None):
    """RecBole atomic files: item text joins the .item file's token and token_seq fields."""
    from .atomic import read_atomic

    folder = Path(folder)
    inter = _one(folder, "*.inter", "atomic interactions (NAME.inter)", interactions)
    header = {c.split(":")[0]: c for c in _header(inter, "\t")}
    if not {"user_id", "item_id"} <= set(header):
        raise PrepareError(f"{inter}: needs user_id and item_id columns (found {list(header)})")
    item_file = _one(folder, "*.item", "atomic items (NAME.item)")
    table = read_atomic(item_file)
    text_cols = [c for c, t in table.attrs["types"].items() if c != "item_id" and t in ("token", "token_seq")]
    found = pictures_in(images or folder / "images")
    items = pd.DataFrame({"item_id": table["item_id"],
                          "text": [join_text(*row) for row in table[text_cols].itertuples(index=False)],
                          "image": [found.get(i) for i in table["item_id"]]})
    rename = {header["user_id"]: "user_id", header["item_id"]: "item_id"}
    if "timestamp" in header:
        rename[header["timestamp"]] = "timestamp"

    def chunks():
        offset = 0
        for chunk in csv_chunks(inter, rename, delimiter="\t", quote=False):
            if "timestamp" not in chunk.column_names:  # no time: the file's order is the order
                chunk = chunk.append_column("timestamp", pa.array([str(offset + i) for i in range(len(chunk))]))
                offset += len(chunk)
            yield chunk
    return Source(items, chunks, _rel(folder, item_file, inter))


@FORMATS.register("folder")
def plain_folder(folder, images=None, interactions=None, category=None):
    """The kit's plain layout (data/README.md): interactions.csv (user_id,item_id,timestamp), items.csv
    (item_id and text, or any text columns, joined in order), images/<item_id>.jpg|png."""
    folder = Path(folder)
    inter = _need(folder / (interactions or "interactions.csv"), "folder interactions")
    items_path = _need(folder / "items.csv", "folder items")
    table = read_table(items_path)
    if "item_id" not in table.columns:
        raise PrepareError(f"{items_path}: no item_id column (found {list(table.columns)})")
    text_cols = ["text"] if "text" in table.columns else [c for c in table.columns if c != "item_id"]
    found = pictures_in(images or folder / "images")
    items = pd.DataFrame({"item_id": table["item_id"],
                          "text": [join_text(*row) for row in table[text_cols].itertuples(index=False)],
                          "image": [found.get(i) for i in table["item_id"]]})

    def chunks():
        yield from csv_chunks(inter, {"user_id": "user_id", "item_id": "item_id", "timestamp": "timestamp"})
    return Source(items, chunks, _rel(folder, items_path, inter))
