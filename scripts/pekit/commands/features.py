"""`pekit features mmh|lmdb`: region features for the converted MMH dataset, and their LMDB."""

import sys

from ..core import argtypes
from ..facts.vocabulary import DATASETS, MMH
from ..features.frcnn import extract_mmh, from_model_dir


def register(subparsers):
    parser = subparsers.add_parser("features", help="extract region features (MMF's FRCNN)")
    sub = parser.add_subparsers(dest="dataset", metavar="DATASET")
    sub.required = True
    mmh = sub.add_parser(MMH, help="100 boxes x 2048-d per MMH image, resumable")
    mmh.add_argument("--data-dir", help="MMF data dir (default: $MMF_DATA_DIR, else MMF's)")
    mmh.add_argument("--mmf-src", help="MMF checkout holding tools/ (default: the kit's)")
    mmh.add_argument(
        "--model-dir",
        help="folder with the FRCNN config.yaml and pytorch_model.bin (VG ResNet-101 C4; "
        "default: where `pekit assets fetch` puts them in the data dir)",
    )
    mmh.add_argument("--batch-size", type=argtypes.optional(argtypes.positive_int, 8), default=8)
    mmh.add_argument("--num-boxes", type=argtypes.optional(argtypes.positive_int, 100), default=100)
    mmh.add_argument(
        "--device",
        type=argtypes.optional(argtypes.torch_device),
        help="torch device: cpu, cuda, cuda:N or mps (default: cuda if available)",
    )
    mmh.add_argument(
        "--limit",
        type=argtypes.optional(argtypes.positive_int),
        help="extract at most this many images this run",
    )
    mmh.set_defaults(func=run_mmh)
    lmdb = sub.add_parser(
        "lmdb",
        help="pack a features folder into one LMDB that MMF reads (faster loading)",
        description="Write <features>.lmdb beside a folder of <name>.npy + <name>_info.npy in "
        "the layout of MMF's LMDBFeatureReader. Default: the converted MMH dataset's features.",
    )
    lmdb.add_argument("--src", help="features folder (default: mmh/defaults/features)")
    lmdb.add_argument("--out", help="LMDB path ending .lmdb (default: <src>.lmdb)")
    lmdb.add_argument("--data-dir", help="MMF data dir (default: $MMF_DATA_DIR, else MMF's)")
    lmdb.add_argument(
        "--force",
        action="store_true",
        help="rebuild an LMDB this command wrote (one it did not is refused)",
    )
    lmdb.set_defaults(func=run_lmdb)


def run_mmh(args):
    extractor = from_model_dir(
        args.model_dir, args.mmf_src, args.device, args.num_boxes, args.data_dir
    )
    s = extract_mmh(extractor, args.data_dir, args.batch_size, args.limit)
    print(
        f"mmh features in {s['out']}: {s['extracted']} extracted, {s['already_done']} already "
        f"there, {len(s['failed'])} failed, {s['total']} images in all"
    )
    for name, why in s["failed"][:20]:
        print(f"  failed {name}: {why}", file=sys.stderr)
    return 1 if s["failed"] else 0


def run_lmdb(args):
    from pathlib import Path

    from ..data.paths import dataset_dir
    from ..features import lmdb

    src = (
        Path(args.src)
        if args.src
        else dataset_dir(DATASETS[MMH].mmf_name, args.data_dir) / "features"
    )

    def show(done, total):
        print(f"\rlmdb: {done}/{total}", end="", file=sys.stderr, flush=True)

    s = lmdb.convert(src, args.out, force=args.force, progress=show)
    print(file=sys.stderr)
    print(f"wrote {s['out']}: {s['count']} feature records")
    return 0
