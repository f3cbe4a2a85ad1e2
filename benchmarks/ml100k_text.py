"""MovieLens-100k, text only (issue 20): IDSR against MMSR-T with the real MiniLM-L6 kept frozen behind each adaptor
(`model.adaptor`) and, on a GPU, with its top 2 blocks trained (the frozen prefix computed once per item). One
command, nothing from the internet:

    python benchmarks/ml100k_text.py          # here: IDSR and frozen MiniLM x 4 adaptors, 3 seeds (~25 min on 2 cores)
    python benchmarks/ml100k_text.py --gpu    # CUDA: the same, and MiniLM's top 2 blocks trained (linear and the
                                              # default adaptor), 3 seeds each
    python benchmarks/ml100k_text.py --from-log data/reference/03_architectures.jsonl \
        --tag reference-03-ml100k-adaptors   # no training: the table of a log's runs (this one: README's)
    python benchmarks/ml100k_text.py --tiny   # plumbing: the smoke world, 1 epoch, 1 seed (what the tests run)

The workshop preset, 40 epochs. Every run is a line of the results log (`--results`) with its config, so
`mmsr train --config` repeats it. The table, one row per configuration: test HR@10 and NDCG@10 (mean ± std over
the seeds), the ratio to IDSR's HR@10, HR@10 per popularity bucket of the target (training occurrences), cold
HR@10 with its hits over all seeds, and training seconds per epoch (one thread each with --workers 2).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from mmsr_kit.adaptors import ADAPTORS, FROZEN_DEFAULT  # noqa: E402
from mmsr_kit.compare import compare  # noqa: E402
from mmsr_kit.data.split import POPULARITY_BUCKETS  # noqa: E402
from mmsr_kit.results import read_records  # noqa: E402

MINILM = {"model.mode": "mmsr_t", "model.text_encoder": "minilm"}


def models(gpu, adaptors):
    out = {"IDSR": {"model.mode": "idsr"}}
    out.update({f"MMSR-T minilm frozen, {a}": {**MINILM, "model.text_blocks": "0", "model.adaptor": a} for a in adaptors})
    if gpu:  # a trained encoder: what `auto` gives it (linear), and the frozen encoders' default beside it
        out.update({f"MMSR-T minilm top 2, {a}": {**MINILM, "model.text_blocks": "2", "model.adaptor": a}
                    for a in dict.fromkeys(["linear", FROZEN_DEFAULT])})
    return out


def row_name(config):
    """A log line's row: its mode, and for MMSR-T the encoder's trained blocks and the adaptor."""
    m = config["model"]
    if m["mode"] != "mmsr_t":
        return m["mode"].upper()
    blocks = "frozen" if str(m["text_blocks"]) == "0" else f"top {m['text_blocks']}"
    return f"MMSR-T {m['text_encoder']} {blocks}, {m.get('adaptor', 'linear')}"


def mean_std(values):
    if len(values) == 1:
        return f"{values[0]:.4f} (1 seed)"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(lines):
    """Markdown rows of `lines` (results-log records), grouped by configuration (all but the seed), IDSR first."""
    rows = {}
    for line in lines:
        rows.setdefault(row_name(line["config"]), []).append(line["metrics"])
    if not rows:
        raise SystemExit("no runs in that log")
    rows = dict(sorted(rows.items(), key=lambda row: row[0] != "IDSR"))
    idsr = statistics.mean(m["test"]["hr@10"] for m in rows["IDSR"]) if "IDSR" in rows else None
    first = next(iter(rows.values()))[0]
    buckets = [name for name, _, _ in POPULARITY_BUCKETS if first["popularity"].get(name, {}).get("n")]
    head = (["item vectors", "seeds", "test HR@10", "test NDCG@10", "vs IDSR"] + [f"HR@10 {b}" for b in buckets]
            + ["cold HR@10", "cold hits", "s / epoch"])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, runs in rows.items():
        hr = [m["test"]["hr@10"] for m in runs]
        cells = [name, str(len(runs)), mean_std(hr), mean_std([m["test"]["ndcg@10"] for m in runs]),
                 f"{statistics.mean(hr) / idsr:.2f}x" if idsr else "-"]
        cells += [f"{statistics.mean(m['popularity'][b]['hr@10'] for m in runs):.3f}" for b in buckets]
        if first["cold"]["n"]:
            hits = sum(round(m["cold"]["hr@10"] * m["cold"]["n"]) for m in runs)
            cells += [mean_std([m["cold"]["hr@10"] for m in runs]), f"{hits} of {sum(m['cold']['n'] for m in runs)}"]
        else:
            cells += ["-", "no cold cases"]
        cells.append(f"{statistics.mean(m['train_time_s'] / m['epochs_run'] for m in runs):.1f}")
        out.append("| " + " | ".join(cells) + " |")
    cases = ", ".join(f"{b}: {first['popularity'][b]['n']}" for b in buckets)
    out.append(f"\n{first['test']['n']} test cases per seed (per popularity bucket of the target: {cases}); cold: "
               f"{first['cold']['n']} per seed (a hit or two there is noise); device {first.get('device', '?')}")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="on CUDA, with MiniLM's top 2 blocks trained too")
    parser.add_argument("--tiny", action="store_true", help="the smoke world, 1 epoch, 1 seed: plumbing only")
    parser.add_argument("--from-log", help="no training: the table of this results log's runs")
    parser.add_argument("--tag", help="with --from-log: only the runs of this comparison (`compare.tag`)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (--tiny: 0)")
    parser.add_argument("--epochs", type=int, default=None, help="default 40 (--tiny: 1)")
    parser.add_argument("--adaptors", nargs="+", default=None, help="default: every registered adaptor")
    parser.add_argument("--workers", type=int, default=None, help="runs at once (default 2 on a CPU, 1 on a GPU)")
    parser.add_argument("--results", default=None, help="the results log (default: benchmarks/logs/ml100k-DATE.jsonl)")
    args = parser.parse_args(argv)
    if args.from_log:
        lines = read_records(args.from_log)
        print(table([line for line in lines if args.tag in (None, line.get("compare", {}).get("tag"))]))
        return
    if args.gpu:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--gpu needs a CUDA device; without one, leave it out (frozen encoders only)")
    base = ({"data.name": "synthetic", "data.views": 0} if args.tiny else {"data.name": "ml-100k"})
    base["train.epochs"] = args.epochs or (1 if args.tiny else 40)
    if args.gpu:
        base["train.device"] = "cuda"  # else the default (auto), as the reference lines were made
    preset = "smoke" if args.tiny else "workshop"
    seeds = args.seeds or ([0] if args.tiny else [0, 1, 2])
    adaptors = args.adaptors or ADAPTORS.names()
    results = args.results or f"benchmarks/logs/ml100k-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    tag = f"ml100k-text-{time.strftime('%Y%m%d-%H%M%S')}"
    workers = args.workers or (1 if args.gpu else 2)
    start = time.perf_counter()
    compare(preset, base, seeds=seeds, models=models(args.gpu, adaptors), results=results, tag=tag, workers=workers)
    lines = [line for line in read_records(results) if line.get("compare", {}).get("tag") == tag]
    print(table(lines))
    print(f"\n{len(lines)} runs in {(time.perf_counter() - start) / 60:.1f} min, {workers} at a time; "
          f"log {results} (tag {tag}); the table again: python benchmarks/ml100k_text.py --from-log {results}")


if __name__ == "__main__":
    main()
