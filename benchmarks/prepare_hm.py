"""`mmsr prepare hm` at full size: wall time and peak memory on an input shaped like the Kaggle H&M data.

    python benchmarks/prepare_hm.py                       # full size: ~4 GB of input under /tmp/hm-bench
    python benchmarks/prepare_hm.py --scale 0.01          # 1% of every count, seconds
    python benchmarks/prepare_hm.py --scale 0.1 --workers 2 -- --some-prepare-flag   # after --: passed through

Not part of CI (it writes GBs and keeps both cores busy for minutes); run it by hand on the machine you care about.
Goal: the full size (105,542 articles, 1,371,980 customers, 31,788,324 transactions, ~105k images) prepares in
under 10 minutes and under 8 GiB (peak RSS of the whole process tree) on a 2-core, 24 GiB machine.

What it does:
1. `generate` writes an input in exactly the layout of the Kaggle "H&M Personalized Fashion Recommendations" data
   (`articles.csv`, `customers.csv`, `transactions_train.csv`, `images/<first 3 digits>/<article_id>.jpg`) with
   the real counts times `--scale`: ids and columns as in the real files (10-digit article ids with their leading
   zero, 64-hex customer ids, prices like 0.0508305084745763), transactions sorted by date and, within a day, by
   customer (as the real file), heavy-tailed (log-normal) customer activity and article popularity, ~0.4% of the
   articles without a picture and ~0.4% without a description (as the real data). Pictures are tiny JPEGs
   (`image_px` square, one per colour group, encoded once). Deterministic for a seed; a folder that already
   holds a complete generation for the same (scale, seed, image_px) is reused (its marker file is written last).
   At full size: ~4 GB on disk (3.4 GB of transactions; ~105k tiny files), ~2 minutes, under 1 GiB of memory.
2. It runs the prepare command (`prepare_command` below: the one place to adjust its command line) as a
   subprocess, measuring its wall time, its CPU time, the peak RSS of its largest single process (`os.wait4`'s
   ru_maxrss, which covers the child and its waited-for descendants one at a time) and the peak of the summed RSS
   (and PSS, which counts pages shared by forked workers once) of the child and all its descendants, sampled every
   0.2 s from /proc.
It prints one table (input sizes, generate seconds, prepare wall seconds, peak memory, output sizes) and, on its
last line, the same numbers as one JSON object; it exits 1 (after printing the prepare command's stderr tail)
when the prepare command fails.
"""
import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np

# The real data's counts (Kaggle H&M, transactions_train.csv up to 2020-09-22).
N_ARTICLES = 105_542
N_PRODUCTS = 47_224
N_CUSTOMERS = 1_371_980
N_POSTAL_CODES = 352_899
N_TRANSACTIONS = 31_788_324
FIRST_DAY, LAST_DAY = "2018-09-20", "2020-09-22"  # 734 days
NO_IMAGE_SHARE = 0.0042  # 442 of the real articles have no picture
NO_DESC_SHARE = 0.0039  # 416 have no detail_desc

FORMAT = 1  # bump when the generated data changes, so older generations are not reused
MARKER = ".generated.json"
CHUNK_ROWS = 1_000_000  # transactions are written about this many rows at a time (fixed: part of determinism)
BENCH_ROOT = Path("/tmp/hm-bench")

ARTICLE_COLUMNS = ("article_id,product_code,prod_name,product_type_no,product_type_name,product_group_name,"
                   "graphical_appearance_no,graphical_appearance_name,colour_group_code,colour_group_name,"
                   "perceived_colour_value_id,perceived_colour_value_name,perceived_colour_master_id,"
                   "perceived_colour_master_name,department_no,department_name,index_code,index_name,"
                   "index_group_no,index_group_name,section_no,section_name,garment_group_no,garment_group_name,"
                   "detail_desc").split(",")
CUSTOMER_COLUMNS = "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code".split(",")
TRANSACTION_COLUMNS = "t_dat,customer_id,article_id,price,sales_channel_id".split(",")


def prepare_command(folder, out, args):
    """The command under test (adjust here): argv list, run from the repository root."""
    cmd = [sys.executable, "-m", "mmsr_kit.cli", "prepare", "hm", str(folder), str(out),
           "--image-size", str(args.image_size), "--sample-users", str(args.sample_users), "--seed", "0"]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    return cmd + list(args.extra)


# ---------------------------------------------------------------------------------------------------- vocabulary
PRODUCT_TYPES = [  # (product_type_no, product_type_name, product_group_name)
    (253, "Vest top", "Garment Upper body"), (252, "Sweater", "Garment Upper body"),
    (255, "T-shirt", "Garment Upper body"), (254, "Top", "Garment Upper body"),
    (259, "Shirt", "Garment Upper body"), (258, "Blouse", "Garment Upper body"),
    (245, "Hoodie", "Garment Upper body"), (264, "Jacket", "Garment Upper body"),
    (262, "Cardigan", "Garment Upper body"), (270, "Coat", "Garment Upper body"),
    (272, "Trousers", "Garment Lower body"), (274, "Shorts", "Garment Lower body"),
    (275, "Skirt", "Garment Lower body"), (273, "Leggings/Tights", "Garment Lower body"),
    (265, "Dress", "Garment Full body"), (267, "Jumpsuit/Playsuit", "Garment Full body"),
    (306, "Bra", "Underwear"), (286, "Underwear bottom", "Underwear"), (302, "Socks", "Socks & Tights"),
    (304, "Underwear Tights", "Socks & Tights"), (59, "Swimwear bottom", "Swimwear"), (60, "Bikini top", "Swimwear"),
    (87, "Boots", "Shoes"), (88, "Sneakers", "Shoes"), (66, "Earring", "Accessories"), (72, "Bag", "Accessories"),
    (69, "Hat/beanie", "Accessories"), (68, "Scarf", "Accessories"), (298, "Hair/alice band", "Accessories"),
    (283, "Pyjama set", "Nightwear"), (515, "Umbrella", "Items"), (521, "Fine cosmetics", "Cosmetic"),
]
APPEARANCES = [(1010016, "Solid"), (1010001, "All over pattern"), (1010017, "Stripe"), (1010004, "Check"),
               (1010010, "Melange"), (1010021, "Lace"), (1010023, "Denim"), (1010005, "Colour blocking"),
               (1010014, "Placement print"), (1010008, "Front print"), (1010026, "Other pattern"),
               (1010019, "Transparent"), (-1, "Unknown")]
COLOUR_VALUES = {1: "Bright", 2: "Medium Dusty", 3: "Light", 4: "Dark", 5: "Dusty Light", 6: "Medium", 7: "Undefined"}
COLOUR_MASTERS = {5: "Black", 9: "White", 2: "Blue", 12: "Grey", 11: "Beige", 4: "Pink", 18: "Red", 19: "Green",
                  13: "Khaki green", 8: "Yellowish Brown", 14: "Orange", 3: "Lilac Purple", 10: "Yellow", 7: "Metal"}
COLOURS = [  # (colour_group_code, colour_group_name, perceived_colour_value_id, perceived_colour_master_id, rgb)
    (9, "Black", 4, 5, (20, 20, 20)), (10, "White", 3, 9, (245, 245, 245)), (73, "Dark Blue", 4, 2, (25, 35, 90)),
    (7, "Grey", 2, 12, (128, 128, 128)), (71, "Light Blue", 3, 2, (150, 190, 230)),
    (13, "Beige", 5, 11, (215, 195, 160)),
    (72, "Blue", 6, 2, (40, 80, 190)), (52, "Pink", 5, 4, (235, 160, 185)), (42, "Red", 1, 18, (200, 30, 40)),
    (11, "Off White", 3, 9, (240, 235, 220)), (93, "Dark Green", 4, 19, (20, 80, 40)),
    (12, "Light Beige", 3, 11, (230, 215, 190)), (43, "Dark Red", 4, 18, (120, 20, 30)),
    (51, "Light Pink", 3, 4, (250, 200, 215)), (8, "Dark Grey", 4, 12, (70, 70, 70)),
    (6, "Light Grey", 3, 12, (200, 200, 200)), (19, "Greenish Khaki", 2, 13, (120, 120, 70)),
    (17, "Yellowish Brown", 2, 8, (160, 110, 50)), (53, "Dark Pink", 6, 4, (200, 60, 120)),
    (23, "Dark Yellow", 6, 10, (210, 170, 20)), (33, "Orange", 1, 14, (240, 130, 30)),
    (90, "Green", 6, 19, (40, 150, 60)), (62, "Light Purple", 3, 3, (200, 170, 230)),
    (22, "Yellow", 1, 10, (250, 220, 40)), (3, "Silver", 7, 7, (190, 190, 200)), (5, "Gold", 7, 7, (200, 160, 60)),
]
INDEXES = [  # (index_code, index_name, index_group_no, index_group_name)
    ("A", "Ladieswear", 1, "Ladieswear"), ("B", "Lingeries/Tights", 1, "Ladieswear"),
    ("C", "Ladies Accessories", 1, "Ladieswear"), ("D", "Divided", 2, "Divided"), ("F", "Menswear", 3, "Menswear"),
    ("G", "Baby Sizes 50-98", 4, "Baby/Children"), ("H", "Children Sizes 92-140", 4, "Baby/Children"),
    ("I", "Children Sizes 134-170", 4, "Baby/Children"), ("J", "Children Accessories, Swimwear", 4, "Baby/Children"),
    ("S", "Sport", 26, "Sport"),
]
SECTIONS = [(16, "Womens Everyday Basics"), (61, "Womens Lingerie"), (62, "Womens Nightwear, Socks & Tigh"),
            (44, "Baby Essentials & Complements"), (26, "Men Underwear"), (53, "Divided Collection"),
            (18, "Womens Trend"), (11, "Womens Tailoring"), (21, "Contemporary Casual"), (5, "Kids Outerwear"),
            (31, "Mens Outerwear"), (15, "Womens Everyday Collection"), (66, "Ladies H&M Sport"),
            (20, "Contemporary Smart"), (8, "Mens Accessories"), (2, "H&M+"), (52, "Divided Basics"),
            (76, "Kids Girl"), (77, "Kids Boy"), (64, "Womens Shoes")]
GARMENT_GROUPS = [(1002, "Jersey Basic"), (1017, "Under-, Nightwear"), (1005, "Jersey Fancy"), (1009, "Trousers"),
                  (1019, "Accessories"), (1013, "Dresses Ladies"), (1003, "Knitwear"), (1010, "Blouses"),
                  (1001, "Unknown"), (1023, "Special Offers"), (1020, "Shoes"), (1016, "Trousers Denim"),
                  (1025, "Shorts"), (1018, "Swimwear"), (1007, "Outdoor"), (1021, "Socks and Tights"),
                  (1006, "Woven/Jersey/Knitted mix Baby"), (1008, "Dressed"), (1012, "Skirts")]
DEPARTMENT_NAMES = ["Jersey Basic", "Clean Lingerie", "Tights basic", "Baby basics", "Shopbasket Socks",
                    "Casual Lingerie", "Trousers", "Blouse", "Dresses", "Knitwear", "Swimwear", "Outdoor", "Shoes",
                    "Jewellery", "Bags", "Sport Bottoms", "Jersey fancy", "Denim Trousers", "Shirt", "Tops Knitwear",
                    "Kids Boy Jersey Basic", "Kids Girl Dresses", "Men Underwear", "Accessories Boys", "Nightwear",
                    "Expressive Lingerie", "Divided Basics", "Campaigns", "Small Accessories", "Heavy Basic Jersey"]
NAME_WORDS = ["Strap", "Timeless", "Slim", "Jade", "Luna", "Tilda", "Ben", "Marley", "Sara", "Perrie", "Skinny",
              "Basic", "Cosy", "Hanna", "Ringo", "Pluto", "Mama", "Tanktop", "Wide", "Rib", "Lace", "Soft", "Boxy",
              "Henry", "Greta", "Oslo", "Malmo", "Nova", "Iris", "Stina", "2p", "3p", "5p", "HW", "Push"]
DESC_WORDS = ["jersey", "top", "with", "narrow", "shoulder", "straps", "a", "and", "in", "soft", "cotton", "blend",
              "fabric", "lined", "front", "back", "pockets", "an", "elasticated", "waist", "drawstring", "long",
              "short", "sleeves", "round", "neckline", "buttons", "at", "the", "cuffs", "hem", "slightly", "longer",
              "fitted", "relaxed", "fit", "ribbing", "around", "neck", "zip", "side", "seams", "printed", "motif",
              "wide", "legs", "regular", "high", "V-neck", "lace", "trims", "adjustable", "padded", "cups",
              "wire", "support", "woven", "viscose", "knit", "fine", "denim", "washed", "look", "hood", "lining"]


def _rng(seed, name, *more):
    return np.random.default_rng([seed, zlib.crc32(name.encode()), *more])


def counts_for(scale):
    def n(full):
        return max(1, round(full * scale))

    return {"articles": n(N_ARTICLES), "products": min(n(N_PRODUCTS), n(N_ARTICLES)), "customers": n(N_CUSTOMERS),
            "postal_codes": n(N_POSTAL_CODES), "transactions": n(N_TRANSACTIONS)}


def _hex_ids(rng, n):
    """n random 64-char lowercase hex ids as an S64 array."""
    raw = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((n, 64), dtype=np.uint8)
    out[:, 0::2] = digits[raw >> 4]
    out[:, 1::2] = digits[raw & 15]
    return out.view("S64").ravel()


def _lognormal_cdf(rng, n, sigma, floor=0.0, cap=np.inf):
    """Cumulative shares of n heavy-tailed weights (floor + log-normal, capped at `cap` times its median), for
    inverse-cdf sampling with searchsorted."""
    cdf = np.cumsum(floor + np.minimum(rng.lognormal(0.0, sigma, n), cap))
    return cdf / cdf[-1]


def _sample(rng, cdf, size):
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def _csv_rows(columns):
    """CSV bytes of rows from equal-length fixed-width byte arrays (numpy 'S', NUL-padded; no commas inside)."""
    n = len(columns[0])
    widths = [c.dtype.itemsize for c in columns]
    mat = np.zeros((n, sum(widths) + len(columns)), dtype=np.uint8)
    at = 0
    for column, width in zip(columns, widths):
        mat[:, at:at + width] = np.ascontiguousarray(column).view(np.uint8).reshape(n, width)
        at += width
        mat[:, at] = ord(",")
        at += 1
    mat[:, -1] = ord("\n")
    return mat[mat != 0].tobytes()  # drop the NUL padding


def _s(values):
    return np.array([v.encode() if isinstance(v, str) else v for v in values], dtype="S")


# ------------------------------------------------------------------------------------------------------ articles
def _articles(rng, n_articles, n_products):
    """Article table: rows as lists of strings (sorted by article_id), and the colour index of each article."""
    codes = np.sort(rng.choice(np.arange(108_775, 959_462), size=n_products, replace=False))
    per_product = np.ones(n_products, dtype=np.int64)
    np.add.at(per_product, rng.integers(0, n_products, n_articles - n_products), 1)
    product = np.repeat(np.arange(n_products), per_product)
    gaps = rng.geometric(0.45, n_articles)  # suffixes 001, 002, 005 ...: increasing within a product
    starts = np.cumsum(per_product) - per_product
    csum = np.cumsum(gaps)
    suffix = csum - np.repeat(csum[starts] - gaps[starts], per_product)
    suffix = np.minimum(suffix, 999)  # (never reached in practice: a product has a handful of articles)
    # product-level attributes
    p_type = rng.integers(0, len(PRODUCT_TYPES), n_products)
    p_index = rng.integers(0, len(INDEXES), n_products)
    p_section = rng.integers(0, len(SECTIONS), n_products)
    p_garment = rng.integers(0, len(GARMENT_GROUPS), n_products)
    departments = [(no, DEPARTMENT_NAMES[i % len(DEPARTMENT_NAMES)]) for i, no in
                   enumerate(rng.choice(np.arange(1000, 10000), size=2 * len(DEPARTMENT_NAMES), replace=False))]
    p_dept = rng.integers(0, len(departments), n_products)
    p_name = rng.integers(0, len(NAME_WORDS), (n_products, 2))
    p_name_len = rng.integers(1, 3, n_products)
    # descriptions: 10-40 words, commas in about half, a quoted word in a few, none for ~0.4% of the articles
    lengths = rng.integers(10, 41, n_products)
    words = rng.integers(0, len(DESC_WORDS), lengths.sum())
    comma_after = rng.random(lengths.sum()) < 0.04
    quoted = rng.random(n_products) < 0.01
    descs, at = [], 0
    for p in range(n_products):
        span = slice(at, at + lengths[p])
        ws = [DESC_WORDS[w] + ("," if c else "") for w, c in zip(words[span], comma_after[span])]
        at += lengths[p]
        ws[-1] = ws[-1].rstrip(",")
        if quoted[p]:
            ws[len(ws) // 2] = f'"{ws[len(ws) // 2].rstrip(",")}"'  # a quoted word: doubled quotes in the CSV
        text = " ".join(ws)
        descs.append(text[0].upper() + text[1:] + ".")
    # article-level attributes
    colour = rng.integers(0, len(COLOURS), n_articles)
    appearance = np.where(rng.random(n_articles) < 0.45, 0, rng.integers(0, len(APPEARANCES), n_articles))
    no_desc = rng.random(n_articles) < NO_DESC_SHARE
    rows = []
    for a in range(n_articles):
        p = product[a]
        code = f"{codes[p]:07d}"
        ptype_no, ptype, pgroup = PRODUCT_TYPES[p_type[p]]
        words2 = [NAME_WORDS[w] for w in p_name[p, :p_name_len[p]]]
        name = " ".join(words2 + [ptype.split("/")[0].lower()])
        app_no, app = APPEARANCES[appearance[a]]
        c_code, c_name, c_value, c_master, _ = COLOURS[colour[a]]
        dept_no, dept = departments[p_dept[p]]
        i_code, i_name, ig_no, ig_name = INDEXES[p_index[p]]
        s_no, s_name = SECTIONS[p_section[p]]
        g_no, g_name = GARMENT_GROUPS[p_garment[p]]
        rows.append([f"{code}{suffix[a]:03d}", code, name, ptype_no, ptype, pgroup, app_no, app, f"{c_code:02d}",
                     c_name, c_value, COLOUR_VALUES[c_value], c_master, COLOUR_MASTERS[c_master], dept_no, dept,
                     i_code, i_name, ig_no, ig_name, s_no, s_name, g_no, g_name, "" if no_desc[a] else descs[p]])
    return rows, colour


def _write_articles(path, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # QUOTE_MINIMAL: fields with commas or quotes get quoted
    writer.writerow(ARTICLE_COLUMNS)
    writer.writerows(rows)
    Path(path).write_text(buffer.getvalue(), encoding="utf-8")


# ----------------------------------------------------------------------------------------------------- customers
def _write_customers(path, rng, customer_ids, n_postal):
    n = len(customer_ids)
    fn = rng.random(n) < 0.348
    active = fn & (rng.random(n) < 0.97)
    club = _s(["ACTIVE", "PRE-CREATE", "LEFT CLUB", ""])[
        np.searchsorted(np.cumsum([0.928, 0.0677, 0.0003]), rng.random(n), side="right")]
    news = np.where(fn, np.where(rng.random(n) < 0.998, 1, 2), 0)
    news[rng.random(n) < 0.0117] = 3
    news = _s(["NONE", "Regularly", "Monthly", ""])[news]
    young = rng.random(n) < 0.55  # two modes, as the real ages (early twenties and around fifty)
    age = np.clip(np.where(young, rng.normal(25, 5, n), rng.normal(50, 10, n)), 16, 99).astype(np.int64)
    ages = np.char.mod("%d", np.arange(100)).astype("S2")[age]
    ages[rng.random(n) < 0.0116] = b""
    postal_ids = _hex_ids(rng, n_postal)
    postal = _sample(rng, _lognormal_cdf(rng, n_postal, 1.0), n)
    postal[rng.random(n) < 0.088] = 0  # one postal code holds ~9% of the real customers
    flags = np.array([b"", b"1.0"], dtype="S3")
    with open(path, "wb") as f:
        f.write((",".join(CUSTOMER_COLUMNS) + "\n").encode())
        for lo in range(0, n, 500_000):
            hi = min(n, lo + 500_000)
            f.write(_csv_rows([customer_ids[lo:hi], flags[fn[lo:hi].astype(np.int8)],
                               flags[active[lo:hi].astype(np.int8)], club[lo:hi], news[lo:hi], ages[lo:hi],
                               postal_ids[postal[lo:hi]]]))


# -------------------------------------------------------------------------------------------------------- images
def _write_images(folder, article_ids, colour, rng, image_px):
    import PIL.Image

    jpegs = []
    for *_, rgb in COLOURS:  # one tiny JPEG per colour group, encoded once
        picture = np.empty((image_px, image_px, 3), dtype=np.uint8)
        picture[:] = rgb
        picture[: image_px // 2, : image_px // 2] = [255 - v for v in rgb]  # not flat: a corner in the opposite colour
        buffer = io.BytesIO()
        PIL.Image.fromarray(picture).save(buffer, format="JPEG", quality=90)
        jpegs.append(buffer.getvalue())
    missing = rng.random(len(article_ids)) < NO_IMAGE_SHARE
    written, made = 0, set()
    for article_id, c, skip in zip(article_ids, colour, missing):
        if skip:
            continue
        sub = folder / "images" / article_id[:3]
        if article_id[:3] not in made:
            sub.mkdir(parents=True, exist_ok=True)
            made.add(article_id[:3])
        with open(sub / f"{article_id}.jpg", "wb") as f:
            f.write(jpegs[c])
        written += 1
    return written


# -------------------------------------------------------------------------------------------------- transactions
def _day_counts(rng, total):
    days = (np.datetime64(LAST_DAY) - np.datetime64(FIRST_DAY)).astype(int) + 1
    t = np.arange(days)
    dates = np.datetime64(FIRST_DAY) + t
    weight = 1.0 + 0.35 * np.sin(2 * np.pi * (t - 250) / 365.25) + 0.1 * np.sin(2 * np.pi * t / 7)
    weight *= rng.lognormal(0.0, 0.15, days)
    for spike, factor in (("2018-11-23", 3.0), ("2019-11-29", 4.0), ("2019-06-20", 2.0), ("2020-06-25", 2.0)):
        weight[dates == np.datetime64(spike)] *= factor
    return dates.astype(str).astype("S10"), rng.multinomial(total, weight / weight.sum())


def _transaction_rows(rng, day, date_strings, customer_ids, customer_cdf, article_ids, article_cdf, article_prices):
    """CSV bytes of the transactions of one chunk of whole days (`day`: the day of each row, sorted)."""
    n = len(day)
    if n == 0:
        return b""
    # baskets: a customer buys 1 + geometric (mean ~3.3) rows at once, through one channel
    sizes = 1 + rng.geometric(0.43, n)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    basket = np.repeat(np.arange(len(sizes)), sizes)[:n]
    customer = _sample(rng, customer_cdf, len(sizes))[basket]
    channel = np.where(rng.random(len(sizes)) < 0.705, 1, 0)[basket]
    article = _sample(rng, article_cdf, n)
    again = (rng.random(n) < 0.12) & (np.r_[False, basket[1:] == basket[:-1]])  # several of one article
    article = article[np.maximum.accumulate(np.where(again, 0, np.arange(n)))]
    variant = np.searchsorted([0.8, 0.95], rng.random(n), side="right")  # full price, sale, clearance
    order = np.lexsort((customer, day))  # stable: by date, then customer (as the real file); baskets keep their order
    day, customer, article, variant, channel = (a[order] for a in (day, customer, article, variant, channel))
    return _csv_rows([date_strings[day], customer_ids[customer], article_ids[article],
                      article_prices[article, variant], np.array([b"1", b"2"], dtype="S1")[channel]])


def _write_transactions(path, seed, total, customer_ids, article_ids, article_prices):
    rng = _rng(seed, "transactions")
    date_strings, per_day = _day_counts(rng, total)
    # at full size, as the real data: rows per customer median ~13 (real 9), mean 23, max ~1,900, ~95% of the
    # customers buy something (real 99%); rows per article median ~100, max ~50k, ~99.8% sold (real 99%)
    customer_cdf = _lognormal_cdf(rng, len(customer_ids), 1.2, floor=0.5, cap=200)
    article_cdf = _lognormal_cdf(rng, len(article_ids), 1.5)
    # chunks of whole days (~CHUNK_ROWS rows each), so sorting within a chunk sorts the file
    bounds, rows, first = [], 0, 0
    for d, c in enumerate(per_day):
        rows += c
        if rows >= CHUNK_ROWS or d == len(per_day) - 1:
            bounds.append((first, d + 1))
            first, rows = d + 1, 0
    written = 0
    with open(path, "wb") as f:
        f.write((",".join(TRANSACTION_COLUMNS) + "\n").encode())
        for chunk, (d0, d1) in enumerate(bounds):
            days = np.repeat(np.arange(d0, d1), per_day[d0:d1])
            f.write(_transaction_rows(_rng(seed, "transactions", chunk), days, date_strings, customer_ids,
                                      customer_cdf, article_ids, article_cdf, article_prices))
            written += len(days)
    assert written == total, (written, total)
    return written


def _prices(rng, n_articles):
    """(n_articles, 3) price strings: full, sale and clearance; SEK / 590 printed to 15 digits like the real file."""
    tiers = np.array([4.99, 5.99, 6.99, 7.99, 8.99, 9.99, 12.99, 14.99, 17.99, 19.99, 24.99, 29.99, 34.99, 39.99,
                      49.99, 59.99, 69.99, 79.99, 99.99, 129.99, 149.99, 199.99, 299.99])
    weight = np.exp(-0.18 * np.arange(len(tiers)))
    full = np.searchsorted(np.cumsum(weight / weight.sum()), rng.random(n_articles), side="right")
    full = np.minimum(full, len(tiers) - 1)
    tier = np.stack([full, np.maximum(full - 2, 0), np.maximum(full - 5, 0)], axis=1)
    prices = np.char.mod("%.15g", tiers[tier] / 590)
    assert max(len(p) for p in prices.ravel()) < 24
    return prices.astype("S24")


# ---------------------------------------------------------------------------------------------------- generation
def _marker(folder):
    try:
        return json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def generate(folder, scale=1.0, seed=0, image_px=8):
    """Write an H&M-shaped input (see the module docstring) into `folder`; reuse it when it is already there.

    Returns the marker: scale, seed, image_px, counts, rows per file and seconds per part.
    """
    folder = Path(folder)
    key = {"format": FORMAT, "scale": float(scale), "seed": int(seed), "image_px": int(image_px)}
    marker = _marker(folder)
    if marker is not None and all(marker.get(k) == v for k, v in key.items()) and all(
            (folder / name).is_file() and (folder / name).stat().st_size == size
            for name, size in marker["bytes"].items()):
        return {**marker, "reused": True}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    shutil.rmtree(folder / "images", ignore_errors=True)
    counts = counts_for(scale)
    seconds, t = {}, time.perf_counter()

    rows, colour = _articles(_rng(seed, "articles"), counts["articles"], counts["products"])
    _write_articles(folder / "articles.csv", rows)
    article_ids = [r[0] for r in rows]
    del rows
    seconds["articles"], t = time.perf_counter() - t, time.perf_counter()

    rng = _rng(seed, "customers")
    customer_ids = np.sort(_hex_ids(rng, counts["customers"]))  # the real file is sorted by customer_id
    _write_customers(folder / "customers.csv", rng, customer_ids, counts["postal_codes"])
    seconds["customers"], t = time.perf_counter() - t, time.perf_counter()

    images = _write_images(folder, article_ids, colour, _rng(seed, "images"), image_px)
    seconds["images"], t = time.perf_counter() - t, time.perf_counter()

    prices = _prices(_rng(seed, "prices"), counts["articles"])
    _write_transactions(folder / "transactions_train.csv", seed, counts["transactions"], customer_ids,
                        np.array(article_ids, dtype="S10"), prices)
    seconds["transactions"] = time.perf_counter() - t

    files = ("articles.csv", "customers.csv", "transactions_train.csv")
    marker = {**key, "counts": counts, "images": images,
              "rows": {"articles.csv": counts["articles"], "customers.csv": counts["customers"],
                       "transactions_train.csv": counts["transactions"]},
              "bytes": {name: (folder / name).stat().st_size for name in files},
              "seconds": {k: round(v, 2) for k, v in seconds.items()}}
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1))
    os.replace(tmp, folder / MARKER)  # last: its presence means the generation is complete
    return {**marker, "reused": False}


# --------------------------------------------------------------------------------------------------- measurement
def _proc_tree(root):
    """Pids of `root` and its descendants (from /proc/*/stat)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _kib(path, field):
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeSampler(threading.Thread):
    """Peak of the summed VmRSS (and PSS) of a process and its descendants, sampled every `every` seconds."""

    def __init__(self, pid, every=0.2):
        super().__init__(daemon=True)
        self.pid, self.every, self.done = pid, every, threading.Event()
        self.peak_rss_kib = self.peak_pss_kib = self.max_procs = self.samples = 0

    def run(self):
        while not self.done.is_set():
            tree = _proc_tree(self.pid)
            rss = sum(_kib(f"/proc/{p}/status", b"VmRSS:") for p in tree)
            pss = sum(_kib(f"/proc/{p}/smaps_rollup", b"Pss:") for p in tree)
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            self.max_procs = max(self.max_procs, len(tree))
            self.samples += 1
            self.done.wait(self.every)


def measure(cmd, log_prefix, cwd=None):
    """Run `cmd` in `cwd`: wall and CPU seconds, exit code, peak memory; its output goes to LOG_PREFIX.std{out,err}."""
    out_log, err_log = Path(f"{log_prefix}.stdout"), Path(f"{log_prefix}.stderr")
    with open(out_log, "wb") as out, open(err_log, "wb") as err:
        t = time.perf_counter()
        try:
            child = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd)
        except OSError as error:
            err.write(f"could not start {cmd[0]}: {error}\n".encode())
            return {"rc": 127, "wall_s": 0.0, "cpu_s": 0.0, "peak_rss_main_kib": 0, "peak_rss_tree_kib": 0,
                    "peak_pss_tree_kib": 0, "max_procs": 0, "stdout": str(out_log), "stderr": str(err_log)}
        sampler = TreeSampler(child.pid)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t
        sampler.done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return {"rc": child.returncode, "wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_main_kib": usage.ru_maxrss, "peak_rss_tree_kib": sampler.peak_rss_kib,
            "peak_pss_tree_kib": sampler.peak_pss_kib, "max_procs": sampler.max_procs, "samples": sampler.samples,
            "stdout": str(out_log), "stderr": str(err_log)}


def _folder_size(folder):
    files = size = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except OSError:
                pass
    return files, size


def _output_sizes(out):
    """Top-level entries of the output folder: name -> (files, bytes)."""
    out = Path(out)
    if not out.is_dir():
        return {}
    sizes = {}
    for entry in sorted(out.iterdir()):
        sizes[entry.name + ("/" if entry.is_dir() else "")] = (
            _folder_size(entry) if entry.is_dir() else (1, entry.lstat().st_size))
    return sizes


def _tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _last_json(path):
    """The prepare command's last stdout line when it is a JSON object (its own report), else None."""
    tail = _tail(path, 1).strip()
    try:
        value = json.loads(tail)
        return value if isinstance(value, dict) else None
    except ValueError:
        return None


def _mib(kib):
    return f"{kib / 1024:,.0f} MiB"


def _bytes(n):
    return f"{n / 2 ** 20:,.1f} MiB" if n < 2 ** 30 else f"{n / 2 ** 30:,.2f} GiB"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Arguments after -- go to the prepare command unchanged.")
    parser.add_argument("--scale", type=float, default=1.0, help="share of the real counts (default 1: full size)")
    parser.add_argument("--folder", help="the generated input (default /tmp/hm-bench/raw-SCALE; reused when complete)")
    parser.add_argument("--out", help="the prepare command's output (default /tmp/hm-bench/out-SCALE; emptied first)")
    parser.add_argument("--workers", type=int, help="passed to the prepare command (default: not passed)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--sample-users", type=int,
                        help="passed to the prepare command; default 200000 x scale, rounded; 0 = all")
    parser.add_argument("--seed", type=int, default=0, help="of the generated data")
    parser.add_argument("--image-px", type=int, default=8, help="side of the generated JPEGs")
    parser.add_argument("--generate-only", action="store_true", help="write the input, print its sizes, stop")
    parser.add_argument("--replace-out", action="store_true",
                        help="delete an existing --out outside /tmp/hm-bench before running")
    args = parser.parse_args(argv)
    args.extra = extra
    if args.sample_users is None:
        args.sample_users = max(1, round(200_000 * args.scale))
    folder = Path(args.folder or BENCH_ROOT / f"raw-{args.scale:g}")
    out = Path(args.out or BENCH_ROOT / f"out-{args.scale:g}")
    if not args.generate_only and out.exists() and not (args.replace_out or BENCH_ROOT in out.resolve().parents):
        parser.error(f"--out {out} exists: remove it or pass --replace-out")

    t = time.perf_counter()
    info = generate(folder, scale=args.scale, seed=args.seed, image_px=args.image_px)
    generate_s = time.perf_counter() - t
    disk_kib = int(subprocess.run(["du", "-sk", str(folder)], capture_output=True, text=True).stdout.split()[0] or 0)
    report = {"scale": args.scale, "folder": str(folder), "input_rows": info["rows"], "input_bytes": info["bytes"],
              "input_images": info["images"], "input_disk_kib": disk_kib, "generate_s": round(generate_s, 2),
              "generate_reused": info["reused"], "generate_parts_s": info["seconds"]}
    lines = [("input", str(folder))]
    for name in info["rows"]:
        lines.append((f"  {name}", f"{info['rows'][name]:>12,} rows  {_bytes(info['bytes'][name]):>12}"))
    lines.append(("  images/", f"{info['images']:>12,} JPEGs"))
    lines.append(("  on disk (du)", _bytes(disk_kib * 1024)))
    lines.append(("generate", f"{generate_s:.1f} s" + (
        f" (reused; written in {sum(info['seconds'].values()):.1f} s)" if info["reused"] else "")))

    failed = False
    if not args.generate_only:
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = prepare_command(folder, out, args)
        repo = Path(__file__).resolve().parent.parent  # run from the repository root, so mmsr_kit imports
        run = measure(cmd, out.parent / f"{out.name}.log", cwd=repo)
        out_sizes = _output_sizes(out)
        out_files = sum(files for files, _ in out_sizes.values())
        out_bytes = sum(size for _, size in out_sizes.values())
        failed = run["rc"] != 0
        report.update({"prepare_cmd": cmd, "prepare_rc": run["rc"], "prepare_wall_s": run["wall_s"],
                       "prepare_cpu_s": run["cpu_s"], "peak_rss_main_kib": run["peak_rss_main_kib"],
                       "peak_rss_tree_kib": run["peak_rss_tree_kib"], "peak_pss_tree_kib": run["peak_pss_tree_kib"],
                       "max_procs": run["max_procs"], "out": str(out), "output_files": out_files,
                       "output_bytes": out_bytes,
                       "output": {k: {"files": f, "bytes": b} for k, (f, b) in out_sizes.items()},
                       "prepare_report": _last_json(run["stdout"])})
        lines.append(("prepare", " ".join(map(str, cmd[1:]))))
        lines.append(("  exit code", str(run["rc"]) + ("  FAILED" if failed else "")))
        lines.append(("  wall", f"{run['wall_s']:.1f} s  (CPU {run['cpu_s']:.1f} s, "
                                f"up to {run['max_procs']} processes)"))
        lines.append(("  peak RSS, main", _mib(run["peak_rss_main_kib"]) + "  (ru_maxrss: largest single process)"))
        lines.append(("  peak RSS, tree", _mib(run["peak_rss_tree_kib"]) + f"  (PSS {_mib(run['peak_pss_tree_kib'])})"))
        lines.append(("output", f"{out}  {out_files:,} files  {_bytes(out_bytes)}"))
        for name, (files, size) in list(out_sizes.items())[:20]:
            lines.append((f"  {name}", f"{files:>12,} files  {_bytes(size):>12}"))
        lines.append(("logs", f"{run['stdout']}  {run['stderr']}"))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    if failed:
        print(f"\nprepare failed (exit {report['prepare_rc']}); last lines of its stderr:\n"
              f"{_tail(run['stderr'])}", file=sys.stderr)
    sys.stdout.flush()
    print(json.dumps(report))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
