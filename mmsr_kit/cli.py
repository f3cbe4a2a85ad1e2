"""The `mmsr` command.

    mmsr list [what]                       registered names, one per line under a heading
    mmsr train --preset NAME [--config FILE] [--set key=value ...] [--out DIR] [--results FILE]
    mmsr train --resume RUN_DIR            continue a run written with --out from its latest checkpoint
    mmsr train ... --init-from RUN_DIR     start from a finished run's weights (transfer; ID tables never)
    mmsr compare --preset NAME [--seeds ...] [--models ...]      Table 5: baselines and MMSR over seeds
    mmsr sweep --preset NAME --grid KEY=V1,V2 [--modes ...] | --trick NAME     Tables 11-14: a grid of values
    mmsr prepare FORMAT SOURCE_DIR OUT_DIR [--sample-users N ...]  a real dataset -> a folder to train on
    mmsr report [--results FILE] [--out report.html]            Tables 2-14 from the results log as one HTML page
    mmsr recommend RUN_DIR --history ID,ID [-k 10] [--new-items items.csv --images DIR]   top k of a finished run
    mmsr export RUN_DIR OUT                                     every catalogue item's vector, ids, a faiss index

`mmsr train` prints the run's metrics as one JSON object on its last line of stdout; `compare` and `sweep` print
their table, then its means as one JSON object on the last line; `prepare` its Table 1 statistics and problem
counts; `report` the page's path, its rows per table, and those counts as one JSON object on the last line;
`recommend` its table, then the items, scores and which are new as one JSON object; `export` what it wrote.
"""
import argparse
import json
import logging
import os
import sys

from .registry import ConfigError


def registries():
    """What `mmsr list` can show: heading -> sorted names (later issues add encoders, fusions ...)."""
    from . import config, data, modes, sequence  # noqa: F401  (fill the registries)
    from .adaptors import ADAPTORS
    from .encoders import TEXT_ENCODERS, VISION_ENCODERS
    from .encoders.vlp import VISUAL_INPUTS, VLP_ENCODERS
    from .fusion import FUSIONS
    from .baselines import BASELINES
    from .data.formats import FORMATS
    from .registry import DATASETS, MODES, SEQUENCES

    return {
        "datasets": DATASETS.names(),
        "sequences": SEQUENCES.names(),
        "modes": MODES.names(),
        "baselines": list(BASELINES),
        "text encoders": TEXT_ENCODERS.names(),
        "vision encoders": VISION_ENCODERS.names(),
        "vision-language encoders": VLP_ENCODERS.names(),
        "visualbert visual-input encoders": VISUAL_INPUTS.names(),
        "fusions": FUSIONS.names(),
        "adaptors": ["auto", *ADAPTORS.names()],
        "presets": config.PRESETS.names(),
        "prepare formats": FORMATS.names(),
    }


def cmd_list(args):
    tables = registries()
    words = {w for heading in tables for w in heading.split()}  # `mmsr list encoders` shows text and vision
    if args.what and args.what not in words:
        from .registry import unknown_name_message

        raise ConfigError(unknown_name_message("heading", args.what, sorted(words)))
    for heading, names in tables.items():
        if args.what is None or args.what in heading.split():
            print(f"{heading}:")
            for name in names:
                print(f"  {name}")


def cmd_train(args):
    from pathlib import Path

    from .config import from_yaml, make_config, parse_sets
    from .train import fit

    if args.resume:
        if args.set or args.config or args.out or args.init_from or args.report_to:
            raise ConfigError("--resume RUN_DIR continues that run with its own config.yaml and output folder: "
                              "it takes no --set, --config, --out, --init-from or --report-to")
        if not (Path(args.resume) / "config.yaml").is_file():
            raise ConfigError(f"--resume {args.resume}: no config.yaml there (not a run folder written by --out)")
        cfg, out = from_yaml(Path(args.resume) / "config.yaml"), args.resume
    else:
        sets = parse_sets(args.set)
        if args.init_from:
            sets["train.init_from"] = args.init_from
        if args.report_to:
            sets["train.report_to"] = args.report_to
        cfg, out = make_config(args.preset, file=args.config, overrides=sets), args.out
    run = fit(cfg, out_dir=out, results=False if args.no_log else args.results, progress=not args.quiet,
              resume=bool(args.resume))
    if run.main_process:
        print(json.dumps(run.metrics))


def cmd_compare(args):
    from .compare import TABLE5, compare, render, table_from_log
    from .config import parse_sets
    from .registry import unknown_name_message

    unknown = [m for m in args.models or [] if m not in TABLE5]
    if unknown:
        raise ConfigError(unknown_name_message("model", unknown[0], list(TABLE5)))
    models = {m: TABLE5[m] for m in args.models} if args.models else None
    if args.from_log:
        if not args.tag:
            raise ConfigError("mmsr compare --from-log needs --tag (the comparison's name in the results log)")
        table = table_from_log(args.tag, args.results)
    else:
        table = compare(args.preset, parse_sets(args.set), args.seeds, models, results=args.results, tag=args.tag,
                        progress=not args.quiet, workers=args.workers)
    seeds = sorted(set(table.attrs["seeds"].values()))
    print(f"test metrics, mean ± std over {'/'.join(map(str, seeds))} seeds; ** best, _ second best")
    print(render(table).to_string())
    means = table.xs("mean", axis=1, level=1)
    print(json.dumps({label: row.round(6).to_dict() for label, row in means.iterrows()}))


def cmd_sweep(args):
    from .compare import METRICS, render
    from .config import parse_sets
    from .registry import unknown_name_message
    from .sweep import TRICKS, Trick, pivot, sweep

    if args.metric not in METRICS:
        raise ConfigError(unknown_name_message("metric", args.metric, METRICS))
    if not args.grid and not args.trick:
        raise ConfigError("mmsr sweep needs --grid KEY=V1,V2,... (once per key) or --trick NAME")
    bad = [g for g in args.grid if "=" not in g]
    if bad:
        raise ConfigError(f"--grid expects KEY=V1,V2,..., got {bad[0]!r}")
    trick = TRICKS[args.trick] if args.trick else Trick({}, [])
    knobs = {key: [v.strip() for v in values.split(",")] for key, values in parse_sets(args.grid).items()}
    knobs = knobs or trick.knobs
    modes = args.modes or trick.modes
    table = sweep(args.preset, knobs, {**trick.overrides, **parse_sets(args.set)}, args.seeds, modes,
                  results=args.results, tag=args.tag, progress=not args.quiet)
    print(f"test metrics, mean ± std over {len(args.seeds)} seeds; ** best, _ second best")
    print(render(table).to_string())
    if len(knobs) == 2:  # Table 12: rows the first key's values, columns the second's
        for mode in modes or [None]:
            print(f"\n{mode or 'every run'}, test {args.metric} (mean):\n{pivot(table, knobs, args.metric, mode)}")
    means = table.xs("mean", axis=1, level=1)
    print(json.dumps({label: row.round(6).to_dict() for label, row in means.iterrows()}))


def cmd_prepare(args):
    import time

    from .data.formats import FORMATS
    from .data.prepare import PrepareOptions, prepare

    options = PrepareOptions(min_interactions=args.min_interactions, sample_users=args.sample_users, seed=args.seed,
                             max_words=args.max_words, image_size=args.image_size, cold_threshold=args.cold_threshold,
                             strict=("all",) if args.strict == [] else tuple(args.strict or ()), workers=args.workers)
    reader = FORMATS[args.format]
    if not os.path.isdir(args.source):
        raise FileNotFoundError(f"source folder {args.source!r} does not exist")
    start = time.perf_counter()
    source = reader(args.source, images=args.images, interactions=args.interactions, category=args.category)
    manifest = prepare(source, args.out, options, fmt=args.format, force=args.force)
    problems = {kind: p["count"] for kind, p in manifest["problems"].items() if p["count"]}
    print(f"prepared {args.format} from {args.source} into {args.out} in {time.perf_counter() - start:.1f} s")
    for key, value in manifest["steps"].items():
        print(f"  {key:>18}: {value:,}")
    for kind, count in problems.items():
        print(f"  {kind:>18}: {count:,} ({manifest['problems'][kind]['handling']})")
    if problems.get("missing_image") or problems.get("corrupt_image"):
        print(f"  the items without a usable picture: {os.path.join(args.out, 'missing_images.tsv')}")
    print(json.dumps({"out": args.out, **manifest["statistics"], "problems": problems}))


def cmd_report(args):
    from .report import build_report

    counts = build_report(args.results, args.out)
    print(f"wrote {args.out}")
    for table, rows in counts.items():
        print(f"  {table}: {rows} rows")
    print(json.dumps(counts))


def new_items(path, images=None):
    """`--new-items items.csv` (item_id,text, as `mmsr prepare folder` reads it) and `--images DIR`
    (DIR/<item_id>.jpg, .png ...; none found: grey) -> (ids, texts, pictures)."""
    from pathlib import Path

    from .data.formats import pictures_in, read_table

    table = read_table(Path(path).expanduser())
    if table.empty or not {"item_id", "text"} <= set(table.columns):
        raise ConfigError(f"--new-items {path}: expected a CSV with the columns item_id,text and a row per item")
    found = pictures_in(Path(images).expanduser() if images else None)
    ids = list(table["item_id"])
    return ids, list(table["text"]), [found.get(i) for i in ids]


def cmd_recommend(args):
    from .serve import load_run

    run = load_run(args.run, device=args.device)
    if args.new_items:
        run.add_items(*new_items(args.new_items, args.images))
    history = [item.strip() for item in args.history.split(",") if item.strip()]
    top = run.recommend(history, k=args.k, exclude_history=not args.keep_history)
    print(top.to_string(index=False, formatters={"title": lambda t: t[:60]}))
    print(json.dumps({"history": history, "items": top["item_id"].tolist(),
                      "scores": [round(float(x), 6) for x in top["score"]], "new": top["new"].tolist(),
                      "grey_pictures": run.grey_pictures}))


def cmd_export(args):
    from pathlib import Path

    import numpy as np

    from .neighbours import save_index
    from .serve import load_run

    run = load_run(args.run, device=args.device)
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    vectors = run.catalogue_vectors()[1:].cpu().numpy()  # item index i is row i - 1, as in items.tsv
    np.save(out / "vectors.npy", vectors)
    (out / "items.tsv").write_text("item_id\ttitle\n" + "".join(
        f"{i}\t{' '.join(str(t).split())}\n" for i, t in zip(run.item_ids, run.titles)))
    save_index(run.faiss_index(), out / "items.faiss")  # faiss.read_index: inner-product search over the rows
    print(f"wrote {out}/vectors.npy ({vectors.shape[0]} items x {vectors.shape[1]}), {out}/items.tsv and "
          f"{out}/items.faiss")
    print(json.dumps({"out": str(out), "items": int(vectors.shape[0]), "width": int(vectors.shape[1])}))


def build_parser():
    parser = argparse.ArgumentParser(prog="mmsr", description="ID-agnostic multi-modal sequential recommendation kit")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="print registered names (datasets, sequences, modes, presets ...)")
    p.add_argument("what", nargs="?", help="one heading only, e.g. `sequences`")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("train", help="train and evaluate one configuration")
    p.add_argument("--preset", default="workshop", help="smoke (seconds), workshop (minutes on a CPU), paper (GPU)")
    p.add_argument("--config", help="a YAML file of overrides (e.g. a run's config.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one key, e.g. train.epochs=5")
    p.add_argument("--out", help="write config.yaml, checkpoints, metrics.json, history.json and model.safetensors here")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run that was written with --out from its latest "
                   "checkpoint (after a crash or a kill)")
    p.add_argument("--init-from", metavar="RUN_DIR", help="start from that finished run's weights (transfer): "
                   "encoders, fusion and sequence model; ID tables never (train.init_parts picks parts)")
    p.add_argument("--results", help="the results log to append to (default: results/results.jsonl)")
    p.add_argument("--no-log", action="store_true", help="do not append to the results log")
    p.add_argument("--report-to", metavar="TRACKER", help="log losses, metrics and learning rates per epoch to "
                   "tensorboard (or any tracker Accelerate supports that is installed, or all) under OUT/logs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("compare", help="Table 5: baselines and MMSR, several seeds each, mean ± std")
    p.add_argument("--preset", default="workshop")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one key for every model")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--models", nargs="+", help="a subset of: GRU4Rec NextItNet SASRec FDSA CARCA++ VQRec MoRec++ MMSR")
    p.add_argument("--results", help="the results log (default: results/results.jsonl)")
    p.add_argument("--tag", help="name of this comparison in the log (default: compare-DATE-TIME)")
    p.add_argument("--from-log", action="store_true", help="no training: the table of --tag from the results log")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--workers", type=int, default=1, help="runs trained at once, each in its own process with an "
                   "equal share of the threads (2 on a 2-core CPU: ~1.5x the runs per minute)")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("sweep", help="Tables 11-14: a grid of config values, each point per mode and seed, mean ± std")
    p.add_argument("--preset", default="workshop")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one key for every point")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="one knob and its values (typed like --set); several: their Cartesian product")
    p.add_argument("--trick", help="a study of the bag of tricks: fine-tuning, learning rates, text length, mask ratio "
                   "(its grid, modes and overrides; --grid, --modes and --set replace them)")
    p.add_argument("--modes", nargs="+", help="train each point once per mode, e.g. mmsr_t mmsr")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--metric", default="hr@10", help="the cells of a two-key grid's pivot")
    p.add_argument("--results", help="the results log (default: results/results.jsonl)")
    p.add_argument("--tag", help="name of this sweep in the log (default: sweep-DATE-TIME)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("prepare", help="a real dataset as published -> a folder `mmsr train --set data.name=OUT_DIR` "
                       "trains on (see data/README.md)")
    p.add_argument("format", help="hm, amazon, microlens, pixelrec, atomic or folder (`mmsr list formats`)")
    p.add_argument("source", help="the folder holding the files as published")
    p.add_argument("out", help="the folder to write (items/, interactions.parquet, images-*.npy, manifest.json)")
    p.add_argument("--min-interactions", type=int, default=5, help="drop users with fewer (the paper: 5)")
    p.add_argument("--sample-users", type=int, default=0, help="then keep this many users at random (0: all)")
    p.add_argument("--seed", type=int, default=0, help="the draw of --sample-users")
    p.add_argument("--max-words", type=int, default=50, help="cut item texts to this many words (the paper: 50)")
    p.add_argument("--image-size", type=int, default=224, help="resize pictures to this square (the paper: 224)")
    p.add_argument("--cold-threshold", type=int, default=10, help="for the statistics' #cold (the paper: 10)")
    p.add_argument("--strict", nargs="*", metavar="KIND", help="make these kinds of bad input errors instead of "
                   "fallbacks (no KIND: all): bad_row bad_timestamp unknown_item duplicate_row duplicate_item "
                   "empty_text missing_image corrupt_image")
    p.add_argument("--images", help="the folder of item pictures, if not where the format keeps them")
    p.add_argument("--interactions", help="the interaction file, where the format allows several")
    p.add_argument("--category", help="amazon: the category, when the folder holds several")
    p.add_argument("--workers", type=int, default=0, help="processes decoding pictures (default: one per CPU)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=cmd_prepare)
    def run_parser(name, help):  # recommend and export read a finished run, on a device
        p = sub.add_parser(name, help=help)
        p.add_argument("run", help="a run folder written by `mmsr train --out` (config.yaml, model.safetensors)")
        p.add_argument("--device", default="cpu", help="cpu or cuda")
        return p

    p = run_parser("recommend", "the top k items of a finished run for a history (item ids), new items too")
    p.add_argument("--history", required=True, help="item ids the user interacted with, oldest first: ID,ID,...")
    p.add_argument("-k", type=int, default=10, help="how many items (default 10)")
    p.add_argument("--new-items", metavar="CSV", help="items the run never saw (item_id,text), ranked with the "
                   "catalogue; a content run only (MMSR, MMSR-T, MMSR-V, VLP, MoRec++)")
    p.add_argument("--images", metavar="DIR", help="the new items' pictures: DIR/<item_id>.jpg (or .png ...)")
    p.add_argument("--keep-history", action="store_true", help="rank the history's items too")
    p.set_defaults(func=cmd_recommend)
    p = run_parser("export", "every catalogue item's vector of a finished run: OUT/vectors.npy, OUT/items.tsv, and "
                   "a faiss index over them, OUT/items.faiss")
    p.add_argument("out", help="the folder to write")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("report", help="Tables 2-14 from the results log as one self-contained HTML page")
    p.add_argument("--results", help="the results log (default: results/results.jsonl)")
    p.add_argument("--out", default="report.html", help="the page to write (default: report.html)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        args.func(args)
    except (ConfigError, FileNotFoundError) as error:
        if os.environ.get("MMSR_DEBUG"):
            raise
        parser.exit(2, f"mmsr: error: {error}\n")
    except FloatingPointError as error:  # a diverged run: the step and the last good checkpoint, no traceback
        if os.environ.get("MMSR_DEBUG"):
            raise
        parser.exit(1, f"mmsr: error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
