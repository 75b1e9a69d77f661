"""Time `pekit data mmh` on a full-size synthetic MMHS150K (150K tweets); prints the figure.

    python3 scripts/bench_mmh_convert.py [--keep DIR]

Not a test: the target is at most 30 s on 2 cores. Generation time is not counted.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pekit.data.mmh import convert_mmh  # noqa: E402
from pekit.facts.datasets import dataset_facts  # noqa: E402

WORDS = "the a hate love you me they that is not what why how meme lol so just".split()


def generate(root, seed=0, ocr_share=0.4):
    rng = random.Random(seed)
    facts = dataset_facts("mmh")
    sizes = facts["splits"]
    n = sum(sizes.values())
    ids = [str(1_000_000_000_000_000_000 + i * 7919) for i in range(n)]
    os.makedirs(os.path.join(root, "img_resized"))
    os.makedirs(os.path.join(root, "img_txt"))
    os.makedirs(os.path.join(root, "splits"))
    gt = {}
    for tid in ids:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25)))
        gt[tid] = {
            "img_url": f"http://pbs.twimg.com/media/{tid}.jpg",
            "labels": [rng.choice((0, 0, 1, 2, 3, 4, 5)) for _ in range(3)],
            "tweet_url": f"https://twitter.com/user/status/{tid}",
            "tweet_text": text + " https://t.co/" + tid[-10:],
            "labels_str": ["NotHate", "Racist", "Sexist"],
        }
        open(os.path.join(root, "img_resized", tid + ".jpg"), "wb").close()
        if rng.random() < ocr_share:
            with open(os.path.join(root, "img_txt", tid + ".json"), "w") as f:
                json.dump({"img_text": " ".join(rng.choice(WORDS) for _ in range(8))}, f)
    with open(os.path.join(root, facts["gt_file"]), "w") as f:
        json.dump(gt, f)
    rng.shuffle(ids)
    start = 0
    for split in ("train", "val", "test"):
        part = ids[start : start + sizes[split]]
        start += sizes[split]
        with open(os.path.join(root, "splits", facts["split_files"][split]), "w") as f:
            f.write("\n".join(part) + "\n")
    return n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="generate into this (empty or new) folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or tmp
        src = os.path.join(base, "MMHS150K")
        t0 = time.perf_counter()
        n = generate(src)
        print(f"generated {n} synthetic tweets in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        summary = convert_mmh(src, data_dir=os.path.join(base, "mmf_data"), show_progress=True)
        elapsed = time.perf_counter() - t0
        converted = sum(b["total"] for b in summary["balance"].values())
        print(
            f"converted {converted} tweets in {elapsed:.2f} s ({converted / elapsed:.0f} per s; "
            f"target <= 30 s on 2 cores; cpus here: {os.cpu_count()})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
