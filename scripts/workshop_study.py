"""The `workshop`-preset runs behind notebooks 05-07 (cold start, new items, transfer, bag of tricks) from the command
line, for numbers to quote: every run goes to one results log under a tag, and each table is printed from the log.

    python scripts/workshop_study.py cold --epochs 30 --seeds 0 1 --results runs/study.jsonl
    python scripts/workshop_study.py new --epochs 30 --seeds 0 1 --results runs/study.jsonl
    python scripts/workshop_study.py transfer --epochs 30 --seeds 0 1 --results runs/study.jsonl --work runs/transfer
    python scripts/workshop_study.py tricks --epochs 20 --seeds 0 --results runs/study.jsonl [--tricks "text length"]
    python scripts/workshop_study.py cold --from-log TAG --results runs/study.jsonl   # print again, no training

The settings are the notebooks' full (non-FAST) ones, with epochs and seeds from the command line.
"""
import argparse
import logging
import time

from mmsr_kit import load_split, make_config
from mmsr_kit.compare import compare, popularity_table, render, table_from_log, transfer_pivot, transfer_study
from mmsr_kit.evaluate import chance_metrics

ENCODERS = {"model.text_encoder": "bag", "model.vision_encoder": "tiny-cnn", "model.fusion": "concat"}
MODES = {"IDSR": {"model.mode": "idsr"}, "MMSR-T": {"model.mode": "mmsr_t"}, "MMSR-V": {"model.mode": "mmsr_v"},
         "MMSR": {"model.mode": "mmsr"}}
SHOP, VIDEO = {"data.domain": "shop"}, {"data.domain": "video", "data.world_seed": 1}


def show(title, table, model="MMSR"):
    print(f"\n## {title}\n{render(table, model=model).to_string()}", flush=True)


def cold(args, base, tag):
    if not args.from_log:
        compare("workshop", base, args.seeds, MODES, results=args.results, tag=tag)
    show(f"Table 8 in small, cold test set ({tag})", table_from_log(tag, args.results, split="cold"))
    show("whole test set", table_from_log(tag, args.results))
    print("\n## test HR@10 by popularity bucket\n", popularity_table(tag, args.results).round(4).to_string())


def new(args, base, tag):
    base = {**base, "data.new_items": 0.1}
    if not args.from_log:
        compare("workshop", base, args.seeds, MODES, results=args.results, tag=tag)
    data = load_split(make_config("workshop", overrides=base).data)
    for split, cases in (("new_among_new", data.new_among_new), ("new", data.new_test)):
        floor = chance_metrics(cases, data.n_items)
        show(f"new items, {split} ({len(cases)} cases; chance HR@10 {floor['hr@10']:.4f}, NDCG@10 "
             f"{floor['ndcg@10']:.4f})", table_from_log(tag, args.results, split=split))


def transfer(args, base, tag):
    for name, sources, targets in (
        ("source", {f"shop-{n}": {**SHOP, "data.n_users": n} for n in (500, 1000, 2500)},
         {"video-250": {**VIDEO, "data.n_users": 250}}),
        ("target", {"shop-2500": {**SHOP, "data.n_users": 2500}},
         {f"video-{n}": {**VIDEO, "data.n_users": n} for n in (250, 500, 1000)}),
    ):
        part = f"{tag}-{name}"
        if args.from_log:
            table = table_from_log(part, args.results)
        else:
            table, _ = transfer_study("workshop", sources, targets, args.work, overrides=base, seeds=args.seeds,
                                      results=args.results, tag=part)
        for metric in ("hr@10", "ndcg@10"):
            print(f"\n## scaling the {name} ({part}): test {metric} on the target, mean over seeds\n",
                  transfer_pivot(table, metric).round(4).to_string(), flush=True)


def tricks(args, base, tag):
    from mmsr_kit.sweep import TRICKS, by_mode, sweep_trick

    base = {key: value for key, value in base.items() if key not in ENCODERS}  # each trick names its encoders
    for name, trick in TRICKS.items():
        if args.tricks and name not in args.tricks:
            continue
        part = f"{tag}-{name.replace(' ', '-')}"
        table = (table_from_log(part, args.results) if args.from_log else
                 sweep_trick(name, "workshop", overrides=base, seeds=args.seeds, results=args.results, tag=part))
        print(f"\n## Table {trick.table} in small: {name} ({part})\n",
              by_mode(table, trick.knobs, trick.modes).round(4).to_string(), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=["cold", "new", "transfer", "tricks"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--results", default="runs/study.jsonl")
    parser.add_argument("--work", default="runs/transfer", help="transfer: where the source runs are written")
    parser.add_argument("--from-log", metavar="TAG", help="print the tables of an earlier run of this study")
    parser.add_argument("--tricks", nargs="+", help="tricks: only these (default: all four)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    tag = args.from_log or f"workshop-{args.study}-{args.epochs}ep-{time.strftime('%Y%m%d-%H%M%S')}"
    base = {"train.epochs": args.epochs, **ENCODERS}
    {"cold": cold, "new": new, "transfer": transfer, "tricks": tricks}[args.study](args, base, tag)


if __name__ == "__main__":
    main()
