"""Write the tiny raw-input fixtures for `mmsr prepare` under tests/data/raw/<format>/, and README.md.

Six formats, each in its published on-disk layout: hm (Kaggle H&M), amazon (Amazon review data 2018,
All_Beauty), microlens (MicroLens-50k), pixelrec (PixelRec Pixel200K), atomic (RecBole atomic files) and
folder (the kit's own plain layout). Every format plants the same problems once (see README.md, which this
script also writes, with the counts computed from what it wrote).

Deterministic: one fixed seed, no clocks, gzip headers with mtime=0 and no file name, JPEGs from PIL at
quality=90. Rerunning rewrites byte-identical files:

    OMP_NUM_THREADS=1 .venv/bin/python tests/data/raw/make_fixtures.py
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SEED = 20240607
DAY = 86400
MIN_VALID = 5  # the kit's user filter: users with fewer valid interactions are dropped
FORMATS = ("hm", "amazon", "microlens", "pixelrec", "atomic", "folder")


# ---------------------------------------------------------------------------------------------------------------
# shared pieces


def utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def jpeg(rng: random.Random, width: int = 16, height: int = 16) -> bytes:
    """A small, decodable JPEG: a vertical gradient between two colours drawn from `rng`."""
    top = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float64)
    bottom = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float64)
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    pixels = np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels.round().astype(np.uint8)), "RGB").save(
        buffer, format="JPEG", quality=90
    )
    return buffer.getvalue()


def write_images(
    rng: random.Random, folder: Path, paths: dict[str, str], missing: str, corrupt: str, corrupt_kind: str,
    size: tuple[int, int] = (16, 16),
) -> int:
    """One JPEG per item at `paths[item]` (relative to `folder`), none for `missing`, an undecodable file for
    `corrupt` (`corrupt_kind`: "truncated" = the first 40 bytes of a real JPEG, "text" = b"not a jpeg").
    Returns the number of files written."""
    written = 0
    for item, rel in paths.items():
        data = jpeg(rng, *size)
        if item == missing:
            continue
        if item == corrupt:
            data = data[:40] if corrupt_kind == "truncated" else b"not a jpeg"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += 1
    return written


def write_csv(path: Path, header: list[str] | None, rows, delimiter: str = ",") -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return len(rows)


def write_json_gz(path: Path, objects) -> int:
    """One JSON object per line, gzip with no file name and mtime=0 in the header."""
    lines = [json.dumps(o) + "\n" for o in objects]
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write("".join(lines).encode("utf-8"))
    return len(lines)


@dataclass
class Row:
    user: str
    item: str
    t: int | None  # unix seconds; None: the planted unparseable timestamp
    kind: str  # ok | unknown_item | duplicate_row | bad_timestamp
    slot: int = 0  # position in the user's own time order


@dataclass
class Plan:
    users: list[str]
    heavy: list[str]  # users meant to keep >= MIN_VALID valid interactions
    items: list[str]  # ids present in the item file
    flagged: dict[str, str]  # problem name -> item id (missing_image, corrupt_image, empty_text, ...)
    unknown: str  # the item id of the unknown_item row (absent from the item file)
    rows: list[Row]  # in file order
    same_day: tuple[str, str, str] | None = None  # (user, item, item) bought on the same day (H&M)
    notes: list[str] = field(default_factory=list)


def make_plan(
    rng: random.Random, users: list[str], items: list[str], heavy_counts: list[int], light_counts: list[int],
    flagged: dict[str, str], unknown: str, t0: int, whole_days: bool, order: str, same_day: bool = False,
) -> Plan:
    """Who interacts with what, when, in which file order, with the planted rows:
    heavy user 0 gets the unknown_item row (a third, time-ordered row), heavy user 1's second row is repeated
    right after itself (duplicate_row), heavy user 2 gets an extra row with an unparseable timestamp right
    after its third row (bad_timestamp). Each heavy user keeps >= MIN_VALID valid interactions even if the
    flagged items (no/corrupt image, empty text) were dropped too, and every item gets a heavy user."""
    assert len(users) == len(heavy_counts) + len(light_counts)
    heavy, light = users[: len(heavy_counts)], users[len(heavy_counts):]
    flagged_items = set(flagged.values())
    while True:
        seqs = {u: rng.sample(items, c) for u, c in zip(heavy, heavy_counts)}
        if set().union(*seqs.values()) != set(items):
            continue
        if any(sum(i in flagged_items for i in s) > len(s) - MIN_VALID for s in seqs.values()):
            continue
        break
    seqs.update({u: rng.sample(items, c) for u, c in zip(light, light_counts)})
    seqs[heavy[0]] = seqs[heavy[0]][:2] + [unknown] + seqs[heavy[0]][2:]

    rows = []
    for u in users:
        seq = seqs[u]
        t = t0 + rng.randrange(40) * DAY + (0 if whole_days else rng.randrange(DAY))
        for slot, item in enumerate(seq):
            if slot:
                if same_day and u == heavy[3] and slot == 3:
                    pass  # the same-day pair: slots 2 and 3 share the date
                else:
                    t += rng.randint(1, 12) * DAY + (0 if whole_days else rng.randrange(DAY))
            rows.append(Row(u, item, t, "unknown_item" if item == unknown else "ok", slot))
    index = {u: k for k, u in enumerate(users)}
    keys = {
        "time": lambda r: (r.t, index[r.user], r.slot),
        "user": lambda r: (index[r.user], r.t, r.slot),
        "item": lambda r: (r.item, r.t, index[r.user]),
    }
    rows.sort(key=keys[order])

    def after(user: str, slot: int, new: Row) -> None:
        at = next(k for k, r in enumerate(rows) if r.user == user and r.slot == slot)
        rows.insert(at + 1, new)

    original = next(r for r in rows if r.user == heavy[1] and r.slot == 1)
    after(heavy[1], 1, Row(original.user, original.item, original.t, "duplicate_row", original.slot))
    spare = sorted(set(items) - set(seqs[heavy[2]]) - flagged_items)
    after(heavy[2], 2, Row(heavy[2], rng.choice(spare), None, "bad_timestamp", 99))
    pair = None
    if same_day:
        u = heavy[3]
        pair = (u, seqs[u][2], seqs[u][3])
    return Plan(users, heavy, items, flagged, unknown, rows, pair)


# ---------------------------------------------------------------------------------------------------------------
# H&M Personalized Fashion Recommendations (Kaggle)

HM_ARTICLE_COLUMNS = (
    "article_id,product_code,prod_name,product_type_no,product_type_name,product_group_name,"
    "graphical_appearance_no,graphical_appearance_name,colour_group_code,colour_group_name,"
    "perceived_colour_value_id,perceived_colour_value_name,perceived_colour_master_id,"
    "perceived_colour_master_name,department_no,department_name,index_code,index_name,index_group_no,"
    "index_group_name,section_no,section_name,garment_group_no,garment_group_name,detail_desc"
).split(",")

# Plausible rows in the published shape (values invented where not remembered; shape is what matters).
HM_ARTICLES = [
    ("0108775015", "0108775", "Strap top", 253, "Vest top", "Garment Upper body", 1010016, "Solid", 9, "Black", 4,
     "Dark", 5, "Black", 1676, "Jersey Basic", "A", "Ladieswear", 1, "Ladieswear", 16, "Womens Everyday Basics",
     1002, "Jersey Basic", "Jersey top with narrow shoulder straps."),
    ("0108775044", "0108775", "Strap top", 253, "Vest top", "Garment Upper body", 1010016, "Solid", 10, "White", 3,
     "Light", 9, "White", 1676, "Jersey Basic", "A", "Ladieswear", 1, "Ladieswear", 16, "Womens Everyday Basics",
     1002, "Jersey Basic", "Jersey top with narrow shoulder straps."),
    ("0110065001", "0110065", "OP T-shirt (Idro)", 306, "Bra", "Underwear", 1010016, "Solid", 9, "Black", 4,
     "Dark", 5, "Black", 1339, "Clean Lingerie", "B", "Lingeries/Tights", 1, "Ladieswear", 61, "Womens Lingerie",
     1017, "Under-, Nightwear",
     "Microfibre T-shirt bra with underwired, moulded, lightly padded cups that shape the bust and provide good "
     "support. Narrow adjustable shoulder straps and a narrow hook-and-eye fastening at the back. Without visible "
     "seams for greater comfort."),
    ("0111565001", "0111565", "20 den 1p Stockings", 304, "Underwear Tights", "Socks & Tights", 1010016, "Solid", 9,
     "Black", 4, "Dark", 5, "Black", 3608, "Tights basic", "B", "Lingeries/Tights", 1, "Ladieswear", 62,
     "Womens Nightwear, Socks & Tigh", 1021, "Socks and Tights",
     "Semi shiny nylon stockings with a wide, reinforced trim at the top. Use with a suspender belt. 20 denier."),
    ("0176209023", "0176209", "Skinny jeans", 272, "Trousers", "Garment Lower body", 1010016, "Solid", 73,
     "Dark Blue", 4, "Dark", 2, "Blue", 1722, "Denim Other Trousers", "D", "Divided", 2, "Divided", 53,
     "Divided Collection", 1016, "Trousers Denim",
     "5-pocket, low-waist jeans in washed, stretch denim with a zip fly and button and skinny legs."),
    ("0189634031", "0189634", "Long sleeve top", 255, "T-shirt", "Garment Upper body", 1010017, "Stripe", 11,
     "Off White", 1, "Dusty Light", 11, "Beige", 3936, "Jersey", "A", "Ladieswear", 1, "Ladieswear", 15,
     "Womens Everyday Collection", 1005, "Jersey Fancy",
     "Long-sleeved top in soft, striped jersey with a round neckline."),
    ("0351484002", "0351484", "Lewis", 59, "Swimwear bottom", "Swimwear", 1010016, "Solid", 9, "Black", 4, "Dark",
     5, "Black", 4242, "Swimwear", "F", "Menswear", 3, "Menswear", 26, "Men Underwear", 1018, "Swimwear",
     "Swim shorts in woven fabric with an elasticated drawstring waist, side pockets and a back pocket with a hook "
     "and loop fastening. Mesh inner shorts."),
    ("0372860001", "0372860", "7p Basic Shaftless", 302, "Socks", "Socks & Tights", 1010016, "Solid", 9, "Black",
     4, "Dark", 5, "Black", 7188, "Socks Bin", "F", "Menswear", 3, "Menswear", 25, "Men Accessories", 1021,
     "Socks and Tights",
     "Shaftless socks in a soft, fine-knit cotton blend with silicone at the heels to keep them in place."),
    ("0408875001", "0408875", "DANNY hoodie", 245, "Hoodie", "Garment Upper body", 1010016, "Solid", 9, "Black", 4,
     "Dark", 5, "Black", 5862, "Young Boy Jersey", "I", "Children Sizes 134-170", 4, "Baby/Children", 46,
     "Young Boy", 1005, "Jersey Fancy",
     "Top in sweatshirt fabric with a lined drawstring hood, kangaroo pocket and ribbing at the cuffs and hem."),
    ("0507909001", "0507909", "Ballerina flats", 68, "Ballerinas", "Shoes", 1010016, "Solid", 9, "Black", 4, "Dark",
     5, "Black", 3931, "Shoes", "C", "Ladies Accessories", 1, "Ladieswear", 64, "Womens Shoes", 1020, "Shoes", ""),
    ("0562245001", "0562245", "Luna skinny RW", 272, "Trousers", "Garment Lower body", 1010016, "Solid", 9,
     "Black", 4, "Dark", 5, "Black", 1772, "Trouser", "D", "Divided", 2, "Divided", 51, "Divided Basics", 1016,
     "Trousers Denim",
     "5-pocket, high-waist jeans in washed superstretch denim with a zip fly and button and super-skinny legs."),
    ("0599580017", "0599580", "Timeless Midrise Brief", 59, "Swimwear bottom", "Swimwear", 1010016, "Solid", 73,
     "Dark Blue", 4, "Dark", 2, "Blue", 1643, "Swimwear", "B", "Lingeries/Tights", 1, "Ladieswear", 60,
     "Womens Swimwear, beachwear", 1018, "Swimwear",
     "Fully lined bikini bottoms with a mid waist and medium coverage at the back."),
]
HM_PRICES_SEK = (9.99, 12.99, 14.99, 17.99, 19.99, 24.99, 29.99, 34.99, 49.99)


def build_hm(rng: random.Random, root: Path) -> dict:
    items = [a[0] for a in HM_ARTICLES]
    flagged = {"missing_image": "0176209023", "corrupt_image": "0351484002", "empty_description": "0507909001"}
    customers = [hashlib.sha256(f"hm-customer-{k}".encode()).hexdigest() for k in range(9)]
    t0 = int(datetime(2018, 9, 20, tzinfo=timezone.utc).timestamp())
    plan = make_plan(rng, customers, items, [6, 5, 6, 7, 5, 6, 5], [3, 2], flagged, "0999999001", t0,
                     whole_days=True, order="time", same_day=True)

    write_csv(root / "articles.csv", HM_ARTICLE_COLUMNS, HM_ARTICLES)
    customer_rows = []
    for k, c in enumerate(customers):
        news = k % 3 == 0
        customer_rows.append([
            c, "1.0" if news else "", "1.0" if news else "", "ACTIVE" if k != 7 else "PRE-CREATE",
            "Regularly" if news else "NONE", rng.randint(19, 66),
            hashlib.sha256(f"hm-postal-{k % 4}".encode()).hexdigest(),
        ])
    write_csv(root / "customers.csv", ["customer_id", "FN", "Active", "club_member_status",
                                       "fashion_news_frequency", "age", "postal_code"], customer_rows)
    price = {a: rng.choice(HM_PRICES_SEK) / 590 for a in items + [plan.unknown]}
    tx = []
    for r in plan.rows:
        day = "2020-13-45" if r.t is None else utc(r.t).strftime("%Y-%m-%d")
        if r.kind == "duplicate_row":
            tx.append(list(tx[-1]))
            continue
        tx.append([day, r.user, r.item, f"{price[r.item]:.16f}".rstrip("0"), rng.choice((1, 2, 2))])
    write_csv(root / "transactions_train.csv", ["t_dat", "customer_id", "article_id", "price", "sales_channel_id"],
              tx)
    n_img = write_images(rng, root, {a: f"images/{a[:3]}/{a}.jpg" for a in items}, flagged["missing_image"],
                         flagged["corrupt_image"], "truncated", size=(12, 16))
    u, a, b = plan.same_day
    return {
        "title": "H&M Personalized Fashion Recommendations (Kaggle)",
        "plan": plan,
        "files": [
            ("articles.csv", f"{len(HM_ARTICLES)} articles + header"),
            ("customers.csv", f"{len(customers)} customers + header"),
            ("transactions_train.csv", f"{len(tx)} transactions + header"),
            ("images/<first 3 digits>/<article_id>.jpg", f"{n_img} files (12x16 JPEG)"),
        ],
        "problems": [
            ("missing_image", 1, f"article `{flagged['missing_image']}`: no `images/{flagged['missing_image'][:3]}/"
                                 f"{flagged['missing_image']}.jpg`"),
            ("corrupt_image", 1, f"`images/{flagged['corrupt_image'][:3]}/{flagged['corrupt_image']}.jpg` is the first "
                                 "40 bytes of a JPEG"),
            ("empty_text", 0, f"none; article `{flagged['empty_description']}` has an empty `detail_desc` only "
                              "(empty description, tags still present: prod_name, product type, colour, ...)"),
            ("unknown_item", 1, f"article `{plan.unknown}` in transactions_train.csv, not in articles.csv"),
            ("duplicate_row", 1, "one transaction line repeated exactly (same day, customer, article, price, "
                                 "channel), right after itself"),
            ("bad_timestamp", 1, "one transaction with `t_dat` = `2020-13-45`"),
        ],
        "notes": [
            "`0108775015` and `0108775044` share product_code `0108775`, prod_name and detail_desc and differ only "
            "in colour (Black / White).",
            f"Same-day pair (normal in H&M, not a planted problem): customer `{u}` bought `{a}` and then `{b}` on "
            "the same `t_dat`; file order gives their order. All other valid transactions of a customer have "
            "distinct, increasing days.",
            "transactions_train.csv is sorted by t_dat (as published); the duplicate sits right after its original "
            "and the bad-date row right after its customer's third transaction.",
        ],
    }


# ---------------------------------------------------------------------------------------------------------------
# Amazon review data 2018, All_Beauty

AMAZON_TITLES = [
    ("Rose Petal Hand Cream 75ml", "Bloomwell", ["Rich hand cream with rose petal extract and shea butter."],
     ["Non-greasy", "Paraben free"]),
    ("Argan Oil Shampoo for Dry Hair", "Maroc Naturals", ["Sulfate free shampoo with cold pressed argan oil."],
     ["Sulfate free", "For dry and damaged hair"]),
    ("Bamboo Nail File Set (4 pieces)", "Nailcraft", ["Double sided files, 100/180 grit."], []),
    ("Lavender Bath Salts, 16 oz", "Calm Ritual", ["Dead Sea salt with lavender essential oil."],
     ["Relaxing scent"]),
    ("Vitamin C Brightening Serum", "Glowlab", ["20% vitamin C serum with hyaluronic acid."],
     ["Brightens", "Hydrates"]),
    ("Boar Bristle Hair Brush", "Oakridge", ["Natural bristles that spread scalp oils along the hair."], []),
    ("Cucumber Eye Gel Pads (30 pairs)", "FreshEye", ["Cooling pads for puffy eyes."], ["Cooling"]),
    ("Unscented Body Lotion 400ml", "Plain & Simple", ["Fragrance free lotion for sensitive skin."],
     ["Dermatologist tested"]),
    ("Tea Tree Face Wash", "Clearleaf", ["Gentle foaming cleanser with tea tree oil."], []),
    ("Coconut Lip Balm, 3 pack", "Islandia", ["Moisturising lip balm with coconut oil."], ["SPF 15"]),
    ("Detangling Wide Tooth Comb", "Oakridge", ["Seamless comb for wet hair."], []),
    ("", "", [], []),  # the empty-text item
]
AMAZON_REVIEWS = [
    ("Five Stars", "Works great, would buy again."),
    ("Nice", "Smells lovely and lasts all day."),
    ("OK", "Does what it says, nothing special."),
    ("Not for me", "Broke out after a week of use."),
    ("Love it", "My go-to product now. Fast shipping too."),
    ("Three Stars", "A bit pricey for the size."),
]
AMAZON_NAMES = ["Amazon Customer", "Jenny K.", "T. Brooks", "mike", "Sandra L. Ortiz", "R. Patel", "Kindle Reader",
                "beautyfan", "Carol"]


def amazon_id(rng: random.Random, first: str, n: int) -> str:
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return first + "".join(rng.choice(chars) for _ in range(n))


def build_amazon(rng: random.Random, root: Path) -> dict:
    items = sorted({amazon_id(rng, "B0", 8) for _ in range(12)})
    assert len(items) == 12
    unknown = amazon_id(rng, "B0", 8)
    users = [amazon_id(rng, "A", 13) for _ in range(9)]
    flagged = {"missing_image": items[3], "corrupt_image": items[7], "empty_text": items[11]}
    dup_meta = items[5]
    t0 = int(datetime(2014, 3, 1, tzinfo=timezone.utc).timestamp())
    plan = make_plan(rng, users, items, [6, 6, 5, 7, 5, 6], [4, 2, 3], flagged, unknown, t0,
                     whole_days=True, order="item")

    ratings, reviews = [], []
    for r in plan.rows:
        if r.kind == "duplicate_row":
            ratings.append(list(ratings[-1]))
            reviews.append(dict(reviews[-1]))
            continue
        overall = float(rng.choice((5, 5, 5, 4, 4, 3, 2, 1)))
        summary, text = rng.choice(AMAZON_REVIEWS)
        review = {"overall": overall, "verified": rng.random() < 0.8}
        if r.t is None:
            review["reviewTime"] = "13 45, 2020"
        else:
            d = utc(r.t)
            review["reviewTime"] = f"{d.month:02d} {d.day}, {d.year}"
        review.update({"reviewerID": r.user, "asin": r.item, "reviewerName": AMAZON_NAMES[plan.users.index(r.user)],
                       "reviewText": text, "summary": summary,
                       "unixReviewTime": "notatime" if r.t is None else r.t})
        reviews.append(review)
        ratings.append([r.item, r.user, f"{overall:.1f}", "notatime" if r.t is None else r.t])
    write_csv(root / "All_Beauty.csv", None, ratings)
    write_json_gz(root / "All_Beauty.json.gz", reviews)

    meta = []
    for asin, (title, brand, description, feature) in zip(items, AMAZON_TITLES):
        empty = asin == flagged["empty_text"]
        code = amazon_id(rng, "", 8) + "L"
        has_image = asin != flagged["missing_image"]
        meta.append({
            "category": [] if empty else ["All Beauty"] if rng.random() < 0.5 else [],
            "tech1": "", "description": description, "fit": "", "title": title, "also_buy": [], "tech2": "",
            "brand": brand, "feature": feature,
            "rank": f"{rng.randint(10_000, 3_000_000):,} in Beauty & Personal Care (",
            "also_view": [],
            "details": {} if empty else {"Shipping Weight:": f"{rng.randint(2, 20)}.{rng.randint(0, 9)} ounces"},
            "main_cat": "" if empty else "All Beauty", "similar_item": "", "date": "",
            "price": f"${rng.randint(3, 40)}.{rng.choice((49, 95, 99))}", "asin": asin,
            "imageURL": [f"https://images-na.ssl-images-amazon.com/images/I/{code}._SS40_.jpg"] if has_image else [],
            "imageURLHighRes": [f"https://images-na.ssl-images-amazon.com/images/I/{code}.jpg"] if has_image else [],
        })
    meta.append(dict(meta[items.index(dup_meta)]))  # Amazon 2018 meta repeats some asins
    write_json_gz(root / "meta_All_Beauty.json.gz", meta)
    n_img = write_images(rng, root, {a: f"images/{a}.jpg" for a in items}, flagged["missing_image"],
                         flagged["corrupt_image"], "truncated")
    return {
        "title": "Amazon review data 2018, category All_Beauty",
        "plan": plan,
        "files": [
            ("All_Beauty.csv", f"{len(ratings)} ratings, no header (item,user,rating,timestamp)"),
            ("All_Beauty.json.gz", f"{len(reviews)} review lines (the same interactions, same order)"),
            ("meta_All_Beauty.json.gz", f"{len(meta)} lines: {len(items)} asins + 1 repeated line"),
            ("images/<asin>.jpg", f"{n_img} files (16x16 JPEG)"),
        ],
        "problems": [
            ("missing_image", 1, f"asin `{flagged['missing_image']}`: no image file, and empty imageURL / "
                                 "imageURLHighRes in its meta"),
            ("corrupt_image", 1, f"`images/{flagged['corrupt_image']}.jpg` is the first 40 bytes of a JPEG"),
            ("empty_text", 1, f"asin `{flagged['empty_text']}`: title, brand, main_cat empty; category, "
                              "description, feature empty lists; details {} (rank and price kept)"),
            ("unknown_item", 1, f"asin `{unknown}` in ratings and reviews, not in the meta file"),
            ("duplicate_row", 1, "one rating line and its review line repeated exactly, right after themselves"),
            ("bad_timestamp", 1, "one rating with timestamp `notatime`; its review has unixReviewTime "
                                 "`\"notatime\"` and reviewTime `13 45, 2020`"),
            ("duplicate_item", 1, f"meta line of asin `{dup_meta}` appears twice (identical; the copy is the last "
                                  "line)"),
        ],
        "notes": [
            "Ratings and reviews are grouped by asin, then time (as published); unixReviewTime values are whole "
            "days (midnight UTC) like the real data, distinct per user.",
            "The 2018 data ships image URLs only; `images/` stands for the covers a user downloaded.",
        ],
    }


# ---------------------------------------------------------------------------------------------------------------
# MicroLens-50k

MICROLENS_TITLES = [
    "Cat knocks a glass off the table in slow motion", "How to fold a fitted sheet in 30 seconds",
    "Street food tour: night market dumplings", "Beginner guitar lesson, chord G to C",
    "Puppy meets the vacuum cleaner for the first time", "Sunset timelapse over the harbour",
    "Three-ingredient pancakes, no flour", "Parkour fails compilation #7",
    "Desk setup tour 2020 \"minimal\" edition", "Grandma reacts to video games",
    "Rainy day lo-fi drawing session", "Tiny kitchen, big breakfast", "",
]


def build_microlens(rng: random.Random, root: Path) -> dict:
    ids = rng.sample(range(1, 19739), 14)
    items = [str(i) for i in sorted(ids[:13])]
    unknown = str(ids[13])
    users = [str(u) for u in rng.sample(range(1, 50001), 9)]
    flagged = {"missing_image": items[2], "corrupt_image": items[9], "empty_text": items[12]}
    t0 = int(datetime(2020, 3, 1, tzinfo=timezone.utc).timestamp())
    plan = make_plan(rng, users, items, [7, 6, 5, 6, 5, 8, 6], [2, 4], flagged, unknown, t0,
                     whole_days=False, order="user")
    pairs = [[r.user, r.item, "notatime" if r.t is None else r.t * 1000] for r in plan.rows]
    write_csv(root / "MicroLens-50k_pairs.csv", ["user", "item", "timestamp"], pairs)
    titles = dict(zip(items, MICROLENS_TITLES))
    write_csv(root / "MicroLens-50k_titles.csv", ["item", "title"], [[i, titles[i]] for i in items])
    n_img = write_images(rng, root, {i: f"MicroLens-50k_covers/{i}.jpg" for i in items}, flagged["missing_image"],
                         flagged["corrupt_image"], "truncated")
    return {
        "title": "MicroLens-50k",
        "plan": plan,
        "files": [
            ("MicroLens-50k_pairs.csv", f"{len(pairs)} pairs + header (timestamp in unix milliseconds)"),
            ("MicroLens-50k_titles.csv", f"{len(items)} titles + header"),
            ("MicroLens-50k_covers/<item>.jpg", f"{n_img} files (16x16 JPEG)"),
        ],
        "problems": [
            ("missing_image", 1, f"item `{flagged['missing_image']}` has no cover"),
            ("corrupt_image", 1, f"`MicroLens-50k_covers/{flagged['corrupt_image']}.jpg` is the first 40 bytes "
                                 "of a JPEG"),
            ("empty_text", 1, f"item `{flagged['empty_text']}` has an empty title"),
            ("unknown_item", 1, f"item `{unknown}` in the pairs, not in the titles"),
            ("duplicate_row", 1, "one pair line repeated exactly, right after itself"),
            ("bad_timestamp", 1, "one pair with timestamp `notatime`"),
        ],
        "notes": ["Pairs are grouped by user, then time. Some titles contain commas and one contains double "
                  "quotes (all CSV-quoted)."],
    }


# ---------------------------------------------------------------------------------------------------------------
# PixelRec (Pixel200K)

PIXELREC_ITEMS = [
    ("原神新角色实机演示", "游戏", "新版本角色技能展示，附带配队思路"),
    ("十分钟学会红烧肉", "美食", "家常做法，少油不腻"),
    ("猫咪第一次见到雪", "萌宠,猫", "记录我家橘猫的反应"),
    ("Python 入门第一课", "知识,编程", "从安装到写出第一个程序"),
    ("周末骑行西湖一圈", "运动,骑行", "路线和补给点分享"),
    ("吉他弹唱《晴天》", "音乐", "原调，附和弦谱"),
    ("手机摄影构图技巧", "数码,摄影", "三分法、引导线和留白"),
    ("宿舍小电锅煮火锅", "美食,生活", ""),
    ("高数期末复习重点", "知识,考试", "极限、导数与积分的常见题型"),
    ("一镜到底的城市夜景", "旅行", "4K 夜景延时拍摄"),
    ("新手养多肉避坑指南", "生活,植物", "浇水频率和光照"),
    ("动画短片：纸飞机", "动画", "原创手绘短片，历时三个月"),
    ("健身小白的第一周", "运动,健身", "每日训练记录"),
    ("", "", ""),
]


def build_pixelrec(rng: random.Random, root: Path) -> dict:
    nums = sorted(rng.sample(range(0, 408374), 15))
    unknown = f"i{nums.pop(rng.randrange(15))}"
    items = [f"i{n}" for n in nums]
    users = [f"u{n}" for n in rng.sample(range(0, 200000), 10)]
    flagged = {"missing_image": items[4], "corrupt_image": items[10], "empty_text": items[13]}
    t0 = int(datetime(2021, 8, 1, tzinfo=timezone.utc).timestamp())
    plan = make_plan(rng, users, items, [5, 6, 7, 5, 6, 6, 5], [3, 2, 2], flagged, unknown, t0,
                     whole_days=False, order="time")
    inter = [[r.item, r.user, "notatime" if r.t is None else r.t] for r in plan.rows]
    write_csv(root / "pixelrec_interaction" / "Pixel200K.csv", ["item_id", "user_id", "timestamp"], inter)
    info = []
    for item, (title, tag, desc) in zip(items, PIXELREC_ITEMS):
        views = rng.randint(200, 500000)
        counts = [rng.randint(0, views // d) for d in (50, 10, 200, 30, 20, 5)]
        info.append([item, views, *counts, title, tag, desc])
    write_csv(root / "pixelrec_iteminfo" / "Pixel200K_items.csv",
              ["item_id", "view_number", "comment_number", "thumbup_number", "share_number", "coin_number",
               "favorite_number", "barrage_number", "title", "tag", "description"], info)
    n_img = write_images(rng, root, {i: f"cover/{i}.jpg" for i in items}, flagged["missing_image"],
                         flagged["corrupt_image"], "truncated")
    return {
        "title": "PixelRec (Pixel200K)",
        "plan": plan,
        "files": [
            ("pixelrec_interaction/Pixel200K.csv", f"{len(inter)} interactions + header (timestamp: unix seconds)"),
            ("pixelrec_iteminfo/Pixel200K_items.csv", f"{len(info)} items + header (UTF-8, Chinese text)"),
            ("cover/<item_id>.jpg", f"{n_img} files (16x16 JPEG)"),
        ],
        "problems": [
            ("missing_image", 1, f"item `{flagged['missing_image']}` has no cover"),
            ("corrupt_image", 1, f"`cover/{flagged['corrupt_image']}.jpg` is the first 40 bytes of a JPEG"),
            ("empty_text", 1, f"item `{flagged['empty_text']}`: title, tag and description all empty"),
            ("unknown_item", 1, f"item `{unknown}` in the interactions, not in the item info"),
            ("duplicate_row", 1, "one interaction line repeated exactly, right after itself"),
            ("bad_timestamp", 1, "one interaction with timestamp `notatime`"),
        ],
        "notes": [
            "Timestamps are integer unix seconds: PixelRec's own loader reads the column with "
            "`dtype={'timestamp': int}` (westlake-repl/PixelRec code/REC/data/dataload.py).",
            "Interactions are sorted by time. One item (not a planted problem) has tags but an empty description.",
        ],
    }


# ---------------------------------------------------------------------------------------------------------------
# RecBole atomic files

ATOMIC_ITEMS = [
    ("Wireless Mouse Silent Click", "Electronics Accessories"), ("Stainless Steel Water Bottle", "Sports Outdoors"),
    ("Cotton Crew Socks 6 Pack", "Clothing Socks"), ("Ceramic Pour Over Coffee Set", "Home Kitchen"),
    ("Mechanical Keyboard Brown Switches", "Electronics Accessories"), ("Yoga Mat Non Slip", "Sports Fitness"),
    ("Paperback Mystery Novel", "Books Fiction"), ("LED Desk Lamp Dimmable", "Home Lighting"),
    ("Trail Running Shoes", "Clothing Shoes Sports"), ("", ""),
]


def build_atomic(rng: random.Random, root: Path) -> dict:
    nums = rng.sample(range(100, 2000), 11)
    items = [str(n) for n in sorted(nums[:10])]
    unknown = str(nums[10])
    users = [str(n) for n in rng.sample(range(1, 1000), 8)]
    flagged = {"missing_image": items[1], "corrupt_image": items[6], "empty_text": items[9]}
    t0 = int(datetime(2019, 1, 10, tzinfo=timezone.utc).timestamp())
    plan = make_plan(rng, users, items, [6, 5, 6, 5, 7, 5], [3, 2], flagged, unknown, t0,
                     whole_days=False, order="user")
    inter = [[r.user, r.item, "notatime" if r.t is None else f"{r.t}"] for r in plan.rows]
    write_csv(root / "atomic.inter", ["user_id:token", "item_id:token", "timestamp:float"], inter, delimiter="\t")
    text = dict(zip(items, ATOMIC_ITEMS))
    write_csv(root / "atomic.item", ["item_id:token", "title:token_seq", "categories:token_seq"],
              [[i, *text[i]] for i in items], delimiter="\t")
    n_img = write_images(rng, root, {i: f"images/{i}.jpg" for i in items}, flagged["missing_image"],
                         flagged["corrupt_image"], "truncated")
    return {
        "title": "RecBole atomic files",
        "plan": plan,
        "files": [
            ("atomic.inter", f"{len(inter)} interactions + header (tab-separated, timestamp unix seconds)"),
            ("atomic.item", f"{len(items)} items + header (tab-separated; token_seq fields space-separated)"),
            ("images/<item_id>.jpg", f"{n_img} files (16x16 JPEG)"),
        ],
        "problems": [
            ("missing_image", 1, f"item `{flagged['missing_image']}` has no image"),
            ("corrupt_image", 1, f"`images/{flagged['corrupt_image']}.jpg` is the first 40 bytes of a JPEG"),
            ("empty_text", 1, f"item `{flagged['empty_text']}`: title and categories both empty"),
            ("unknown_item", 1, f"item `{unknown}` in atomic.inter, not in atomic.item"),
            ("duplicate_row", 1, "one interaction line repeated exactly, right after itself"),
            ("bad_timestamp", 1, "one interaction with timestamp `notatime`"),
        ],
        "notes": ["Interactions are grouped by user, then time. No field contains a tab or a quote."],
    }


# ---------------------------------------------------------------------------------------------------------------
# the kit's plain folder layout

FOLDER_LONG = (
    "A hand thrown stoneware serving bowl glazed in a deep ocean blue that pools darker at the rim and fades to a "
    "soft sandy tone at the base. Each bowl is shaped on the wheel, trimmed by hand and fired twice, so no two are "
    "quite alike. It is wide enough for a family salad, deep enough for pasta, and sturdy enough for daily use in "
    "the oven, the microwave and the dishwasher without losing its shine over the years."
)
FOLDER_ITEMS = [
    "Enamel camping mug, 350 ml, speckled white",
    'Travel mug, "leak-proof" lid, 450 ml',
    "Linen tea towel with a striped border",
    "Cast iron skillet 26 cm, pre-seasoned",
    FOLDER_LONG,
    "Bamboo cutting board",
    "Glass storage jars, set of three",
    "Wooden salad servers",
    "Espresso cups with saucers",
    "Silicone baking mat",
    "",
]


def build_folder(rng: random.Random, root: Path) -> dict:
    items = [f"sku{n:03d}" for n in sorted(rng.sample(range(1, 400), 11))]
    unknown = "sku999"
    users = [f"user{n:02d}" for n in range(1, 10)]
    flagged = {"missing_image": items[7], "corrupt_image": items[2], "empty_text": items[10]}
    t0 = int(datetime(2023, 4, 1, tzinfo=timezone.utc).timestamp())
    plan = make_plan(rng, users, items, [6, 6, 5, 5, 7, 6, 5], [4, 3], flagged, unknown, t0,
                     whole_days=False, order="time")
    inter = [[r.user, r.item, "notatime" if r.t is None else r.t] for r in plan.rows]
    write_csv(root / "interactions.csv", ["user_id", "item_id", "timestamp"], inter)
    text = dict(zip(items, FOLDER_ITEMS))
    write_csv(root / "items.csv", ["item_id", "text"], [[i, text[i]] for i in items])
    n_img = write_images(rng, root, {i: f"images/{i}.jpg" for i in items}, flagged["missing_image"],
                         flagged["corrupt_image"], "text")
    quoted = items[1]
    long_item = items[4]
    return {
        "title": "the kit's plain folder layout",
        "plan": plan,
        "files": [
            ("interactions.csv", f"{len(inter)} interactions + header (timestamp unix seconds)"),
            ("items.csv", f"{len(items)} items + header"),
            ("images/<item_id>.jpg", f"{n_img} files (16x16 JPEG)"),
        ],
        "problems": [
            ("missing_image", 1, f"item `{flagged['missing_image']}` has no image"),
            ("corrupt_image", 1, f"`images/{flagged['corrupt_image']}.jpg` holds the text `not a jpeg`"),
            ("empty_text", 1, f"item `{flagged['empty_text']}` has empty text"),
            ("unknown_item", 1, f"item `{unknown}` in interactions.csv, not in items.csv"),
            ("duplicate_row", 1, "one interaction line repeated exactly, right after itself"),
            ("bad_timestamp", 1, "one interaction with timestamp `notatime`"),
        ],
        "notes": [
            f"Item `{quoted}`'s text has commas and double quotes (CSV-quoted): `{FOLDER_ITEMS[1]}`. Other texts "
            "contain commas too.",
            f"Item `{long_item}`'s text is {len(FOLDER_LONG.split())} words long (for the 50-word cut).",
            "Interactions are sorted by time.",
        ],
    }


# ---------------------------------------------------------------------------------------------------------------
# README


def stats(plan: Plan) -> dict:
    valid: dict[str, list[Row]] = {u: [] for u in plan.users}
    for r in plan.rows:
        if r.kind == "ok":
            valid[r.user].append(r)
    heavy = [u for u in plan.users if len(valid[u]) >= MIN_VALID]
    assert heavy == plan.heavy, (heavy, plan.heavy)
    light = [u for u in plan.users if u not in heavy]
    touched = sorted({r.item for u in heavy for r in valid[u]})
    assert touched == sorted(plan.items)
    flagged = set(plan.flagged.values())
    on_flagged = {name: sum(r.item == item for u in heavy for r in valid[u]) for name, item in plan.flagged.items()}
    after_drop = {u: sum(r.item not in flagged for r in valid[u]) for u in heavy}
    assert min(after_drop.values()) >= MIN_VALID
    for u in plan.users:  # time order is unambiguous apart from the declared same-day pair
        times = [r.t for r in sorted(valid[u], key=lambda r: r.slot)]
        ties = sum(a >= b for a, b in zip(times, times[1:]))
        assert ties == (1 if plan.same_day and u == plan.same_day[0] else 0), (u, times)
    kinds = {k: sum(r.kind == k for r in plan.rows) for k in ("unknown_item", "duplicate_row", "bad_timestamp")}
    assert kinds == {"unknown_item": 1, "duplicate_row": 1, "bad_timestamp": 1}
    planted_users = [next(r.user for r in plan.rows if r.kind == k) for k in kinds]
    assert all(u in heavy for u in planted_users)
    return {"valid": valid, "heavy": heavy, "light": light, "touched": touched, "on_flagged": on_flagged,
            "after_drop": after_drop, "planted_users": dict(zip(kinds, planted_users))}


def readme(results: dict[str, dict]) -> str:
    out = [
        "# Raw-input fixtures for `mmsr prepare`",
        "",
        "Tiny inputs in the published layouts of six dataset formats, each with the same planted problems.",
        "Everything here is written by `make_fixtures.py` (fixed seed; byte-identical on every run; gzip headers",
        "with mtime=0 and no file name). Do not edit by hand; change the script and rerun it:",
        "",
        "    OMP_NUM_THREADS=1 .venv/bin/python tests/data/raw/make_fixtures.py",
        "",
        "Shared design, per format:",
        "",
        f"- 6-7 users keep >= {MIN_VALID} valid interactions, 2-3 users have 2-4 (dropped by a 5-interaction "
        "filter).",
        "- A user's valid interactions have distinct, increasing timestamps (H&M: one declared same-day pair).",
        "- Planted once each (unless stated): missing_image, corrupt_image, empty_text (item problems) and",
        "  unknown_item, duplicate_row, bad_timestamp (interaction rows; each on a different user who keeps",
        f"  >= {MIN_VALID} valid interactions). Amazon also has duplicate_item (a repeated meta line).",
        "- Every item is touched by a user with >= 5 valid interactions, and every such user still has",
        f"  >= {MIN_VALID} interactions even if the missing-image, corrupt-image and empty-text items are dropped",
        "  as well, so the set of kept users does not depend on the image/text policy.",
        "- \"Valid interactions\" below = rows left after removing the unknown_item row, the second copy of the",
        "  duplicate_row and the bad_timestamp row. Counts below are computed by the script from what it wrote.",
        "",
    ]
    for name in FORMATS:
        res = results[name]
        plan, s = res["plan"], res["stats"]
        out += [f"## `{name}/`: {res['title']}", "", "| file | rows |", "| --- | --- |"]
        out += [f"| `{f}` | {rows} |" for f, rows in res["files"]]
        out += ["", "| planted problem | count | where |", "| --- | --- | --- |"]
        out += [f"| {p} | {n} | {where} |" for p, n, where in res["problems"]]
        per_user = ", ".join(f"`{u}` {len(s['valid'][u])}" for u in s["heavy"])
        total = sum(len(s["valid"][u]) for u in s["heavy"])
        light = ", ".join(f"`{u}` ({len(s['valid'][u])})" for u in s["light"])
        planted = "; ".join(f"{k}: `{u}`" for k, u in s["planted_users"].items())
        flagged = ", ".join(f"{k} {n}" for k, n in s["on_flagged"].items())
        out += [
            "",
            f"- Users: {len(plan.users)}; items in the item file: {len(plan.items)}; interaction rows: "
            f"{len(plan.rows)} (valid {sum(len(v) for v in s['valid'].values())} + 3 planted).",
            f"- Users with >= {MIN_VALID} valid interactions: **{len(s['heavy'])}**, with **{total}** valid "
            f"interactions touching **{len(s['touched'])}** distinct items (all items in the item file); per user: "
            f"{per_user}.",
            f"- Users with < {MIN_VALID}: {light}.",
            f"- Planted rows sit on: {planted}.",
            f"- Valid interactions of the kept users on flagged items: {flagged}; with those items dropped too, "
            f"the kept users have {sum(s['after_drop'].values())} interactions "
            f"(min {min(s['after_drop'].values())} per user).",
        ]
        out += [f"- {n}" for n in res["notes"]]
        out.append("")
    return "\n".join(out)


def main() -> None:
    builders = {"hm": build_hm, "amazon": build_amazon, "microlens": build_microlens, "pixelrec": build_pixelrec,
                "atomic": build_atomic, "folder": build_folder}
    results = {}
    for k, name in enumerate(FORMATS):
        root = HERE / name
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        res = builders[name](random.Random(SEED + k), root)
        res["stats"] = stats(res["plan"])
        results[name] = res
    (HERE / "README.md").write_text(readme(results), encoding="utf-8")


if __name__ == "__main__":
    main()
