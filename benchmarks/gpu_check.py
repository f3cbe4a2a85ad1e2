"""The speed check on a GPU, one command, nothing from the internet (under 8 minutes on one H100):

    python benchmarks/gpu_check.py            # base size: needs a CUDA device
    python benchmarks/gpu_check.py --tiny     # the same steps at CPU size (what CI runs)
    python benchmarks/gpu_check.py --cpu      # base size on a CPU: the kit's default path only, batch 8, 1 step

Base size, random weights: a BERT-base-like text encoder (12 blocks, width 768, BERT's vocabulary) and a
ViT-B/16 at 224 px (timm), the top 2 blocks of each trained, merge-attention-1 fusion, SASRec, width 768,
batch 64, sequences of 20, on the synthetic world (2,000 items; pictures resized to 224 px; no per-encode views,
as on real data).

1. Training, the reference path (every occurrence encoded, every layer run, fp32) then the kit's default
   (each distinct item once, the states below the trained blocks computed once per item, bf16 autocast).
   If the reference does not fit in memory at batch 64 it is retried at 32, 16, ... and the batch is shown.
   Per path: sequences/s, item encodes/s, peak memory, the floating-point operations of one step (counted by
   torch's FlopCounterMode: what actually runs, forward and backward) and their rate against the card's dense
   bf16 peak (model-FLOP utilisation; the reference runs fp32, so its figure is against the same bf16 peak).
2. Evaluation: `benchmarks/eval_speed.py` at 100k items (with the naive loop) and 1M items (kit only), width 768.
"""
import argparse
import contextlib
import gc
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
import eval_speed  # noqa: E402
from train_speed import Runner, fixed_batches, sync  # noqa: E402

from mmsr_kit import load_split, make_config  # noqa: E402
from mmsr_kit.data.batches import TrainWindows  # noqa: E402

# dense bf16 peaks, TFLOP/s (vendor figures, without sparsity)
PEAKS = {"H200": 989, "H100 SXM": 989, "H100 80GB HBM3": 989, "H100 PCIe": 756, "H100": 989, "A100": 312, "L40S": 362,
         "A10": 125, "L4": 121}


def bf16_peak(device, override):
    if override:
        return override * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAKS.items():
        if key in name:
            return tflops * 1e12
    return None


def encoders(folder, tiny):
    """A local BERT-like folder (random weights, MiniLM's BERT vocabulary) and a ViT as timm NAME@weights."""
    import timm
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, BertConfig, BertModel

    from mmsr_kit.encoders.text import minilm_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    size = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=2, intermediate_size=128) if tiny else {}
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **size)).save_pretrained(folder / "bert")
    tokenizer.save_pretrained(folder / "bert")
    if tiny:
        return str(folder / "bert"), "tiny-vit"  # 2 blocks, 8 px patches at 32 px
    weights = folder / "vit.safetensors"
    save_file(timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0).state_dict(), weights)
    return str(folder / "bert"), f"timm:vit_base_patch16_224@{weights}"


def config(text, vision, tiny, device, batch_size):
    overrides = {
        "model.mode": "mmsr", "model.text_encoder": text, "model.vision_encoder": vision,
        "model.fusion": "merge_attention_1", "model.sequence": "sasrec", "model.text_blocks": "2",
        "model.vision_blocks": "2", "model.hidden": 64 if tiny else 768, "model.text_len": 30,
        "data.max_len": 20, "data.views": 0, "data.image_size": 32, "data.n_items": 300 if tiny else 2000,
        "data.n_users": 400 if tiny else 2500, "train.batch_size": batch_size, "train.device": device.type,
    }
    return make_config("smoke" if tiny else "paper", overrides=overrides)


def measure(cfg, data, device, every, cache, steps, count_flops=True):
    """(sequences/s, encodes/s, first step s, peak MiB, FLOP per step or nan, step s) of one path."""
    bs = cfg.train.batch_size
    batches = fixed_batches(data, bs, steps + 2)
    path = Runner(cfg, data, device, every, cache)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    first = path.timed_step(batches[0])  # fills the caches of the kit's default
    seconds = [path.timed_step(b) for b in batches[1 : steps + 1]]
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    flops = float("nan")
    if count_flops:  # one more step, counted
        with FlopCounterMode(display=False) as counter:
            path.step(batches[steps + 1])
        flops = counter.get_total_flops()
    step = statistics.median(seconds)
    encodes = statistics.median(path.encodes(b) for b in batches[1 : steps + 1])
    del path
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return bs / step, encodes / step, first, peak, flops, step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU-sized encoders and data: the same steps in seconds")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak, if not known")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--batch", type=int, default=None, help="sequences per step (default 64; --tiny, --cpu: 8)")
    parser.add_argument("--cpu", action="store_true",
                        help="base size on a CPU: the kit's default path only (the reference would take hours), "
                             "1 timed step, no FLOP count, no evaluation: what the paper preset costs a laptop")
    args = parser.parse_args(argv)
    device = torch.device("cpu" if args.cpu else "cuda" if torch.cuda.is_available() else "cpu")
    if not args.tiny and not args.cpu and device.type != "cuda":
        raise SystemExit("the base-size check needs a CUDA device; --tiny runs it at CPU size, --cpu at base size")
    steps = args.steps or (2 if args.tiny else 1 if args.cpu else 5)
    paths = (("kit default", False, True),) if args.cpu else (("reference", True, False), ("kit default", False, True))
    peak = bf16_peak(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}, bf16 peak "
          f"{'unknown (--peak-tflops)' if peak is None else f'{peak / 1e12:.0f} TFLOP/s'}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        text, vision = encoders(Path(tmp), args.tiny)
        rows = {}
        for label, every, cache in paths:
            batch_size = args.batch or (8 if args.tiny or args.cpu else 64)  # on a CPU: 8, to stay within a laptop's memory
            while True:
                cfg = config(text, vision, args.tiny, device, batch_size)
                data = load_split(cfg.data)
                try:
                    rows[label] = (batch_size, *measure(cfg, data, device, every, cache, steps, not args.cpu))
                    break
                except torch.cuda.OutOfMemoryError:
                    if batch_size == 1:
                        raise
                gc.collect()  # out of memory: free what the failed attempt held, then half the batch
                torch.cuda.empty_cache()
                print(f"{label}: out of memory at batch {batch_size}, trying {batch_size // 2}", flush=True)
                batch_size //= 2
            print(f"{label}: measured ({time.perf_counter() - start:.0f} s so far)", flush=True)
    print(f"\ntraining: {'tiny' if args.tiny else 'BERT-base-like + ViT-B/16 @224'}, merge_attention_1, SASRec, "
          f"sequences of 20, {steps} timed steps (median)")
    print(f"{'path':<13}{'batch':>6}{'seq/s':>9}{'encodes/s':>11}{'step s':>8}{'first s':>9}{'peak MiB':>10}"
          f"{'TFLOP/step':>12}{'TFLOP/s':>9}{'MFU':>7}")
    for label, (bs, seq, enc, first, mem, flops, step) in rows.items():
        rate = flops / step
        mfu = f"{100 * rate / peak:>6.1f}%" if peak else f"{'-':>7}"
        memory = f"{mem:>10.0f}" if mem == mem else f"{'-':>10}"  # nan on a CPU
        print(f"{label:<13}{bs:>6}{seq:>9.1f}{enc:>11.0f}{step:>8.3f}{first:>9.2f}{memory}{flops / 1e12:>12.3f}"
              f"{rate / 1e12:>9.2f}{mfu}")
    if "reference" in rows:
        ratio = rows["kit default"][1] / rows["reference"][1]
        print(f"speed-up (sequences/s, kit default / reference): {ratio:.1f}x", flush=True)
    else:
        windows = len(TrainWindows(data))
        step_s = rows["kit default"][-1]
        print(f"an epoch of this world: {windows} training windows = {math.ceil(windows / batch_size)} steps of "
              f"{batch_size}: about {math.ceil(windows / batch_size) * step_s / 3600:.1f} h at this step time "
              "(each step encodes its batch's distinct items; their frozen states are computed once, the 'first s')")
    if not args.skip_eval and not args.cpu:
        print()
        items = ["20000", "50000"] if args.tiny else ["100000", "1000000"]
        with contextlib.redirect_stderr(sys.stdout):
            eval_speed.main(["--items", *items, "--users", "300" if args.tiny else "2000", "--hidden",
                             "64" if args.tiny else "768", "--device", device.type, "--skip-naive-above", items[0]])
    print(f"\ngpu_check done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
