"""Pictures per second at 224 px: the kit's picture store vs decoding JPEG files per occurrence, side by side.

    python benchmarks/data_speed.py [--items 400] [--occurrences 2048] [--size 224]

Item pictures (synthetic-world covers, saved as 320 px JPEGs, quality 90, as a dataset would ship them) are
fetched for the same random item occurrences, in batches of 64, as float tensors ready for an encoder:
- "JPEG, PIL": per occurrence open, decode, convert to RGB, resize to 224 (a peer's Dataset.__getitem__);
- "JPEG, torchvision": per occurrence read the bytes, `decode_jpeg`, resize (antialiased);
- "kit store": rows gathered from the picture store (every item decoded and resized once into a memory-mapped
  uint8 file, `mmsr_kit.items.item_pictures`), then converted to float.
The store's one-off build time is printed apart.
"""
import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torchvision.io
import torchvision.transforms.v2.functional as TF

from mmsr_kit.data.synthetic import SyntheticWorld, WorldSpec
from mmsr_kit.data.tables import RecDataset, interaction_table, item_table
from mmsr_kit.items import item_pictures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--occurrences", type=int, default=2048)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="mmsr-jpegs-"))
    before = os.environ.get("MMSR_CACHE")
    os.environ["MMSR_CACHE"] = str(folder / "cache")  # the store goes with the temporary JPEGs
    try:
        measure(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if before is None:
            del os.environ["MMSR_CACHE"]
        else:
            os.environ["MMSR_CACHE"] = before


def measure(args, folder):
    world = SyntheticWorld(WorldSpec(n_items=args.items, n_users=10, image_size=64))
    paths = []
    for i, picture in enumerate(world.images(np.arange(args.items))):
        path = folder / f"{i}.jpg"
        PIL.Image.fromarray(picture).resize((320, 320), PIL.Image.BICUBIC).save(path, quality=90)
        paths.append(str(path))
    ids = [str(i) for i in range(args.items)]
    dataset = RecDataset("jpegs", item_table(ids, ids, paths), interaction_table(ids, ids, list(range(args.items))))
    occurrences = np.random.default_rng(0).integers(0, args.items, args.occurrences)
    batches = [occurrences[s : s + args.batch] for s in range(0, len(occurrences), args.batch)]
    size = args.size

    def pil(batch):
        return torch.stack([torch.from_numpy(np.array(PIL.Image.open(paths[i]).convert("RGB").resize((size, size))))
                            .permute(2, 0, 1) for i in batch]).float().div_(255)

    def tv(batch):
        return torch.stack([TF.resize(torchvision.io.decode_jpeg(torchvision.io.read_file(paths[i])), [size, size],
                                      antialias=True) for i in batch]).float().div_(255)

    start = time.perf_counter()
    store = item_pictures(dataset, size)  # decodes every item once, writes the store
    build = time.perf_counter() - start
    store = item_pictures(dataset, size)  # what every later run gets: memory-mapped

    def kit(batch):
        return store[torch.as_tensor(batch) + 1].float().div_(255)  # row 0 is padding

    rows = {}
    for name, fetch in (("JPEG, PIL", pil), ("JPEG, torchvision", tv), ("kit store", kit)):
        fetch(batches[0])
        start = time.perf_counter()
        for batch in batches:
            fetch(batch)
        rows[name] = args.occurrences / (time.perf_counter() - start)
    print(f"{args.items} items as 320 px JPEGs, {args.occurrences} occurrences at {size} px, batches of {args.batch}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'path':<20}{'pictures/s':>12}{'vs PIL':>9}")
    for name, speed in rows.items():
        print(f"{name:<20}{speed:>12.0f}{speed / rows['JPEG, PIL']:>8.1f}x")
    print(f"store built once in {build:.2f} s ({args.items / build:.0f} items/s); "
          f"{store.numel() / 2**20:.0f} MiB on disk")


if __name__ == "__main__":
    main()
