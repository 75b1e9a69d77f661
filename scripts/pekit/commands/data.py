"""`pekit data hmd SRC` and `pekit data mmh SRC`."""

import sys

from ..data.hmd import EXPECT_COUNTS, layout_hmd
from ..data.mmh import IMAGE_MODES, LABEL_RULES, MISSING_IMAGE_ACTIONS, convert_mmh, format_balance
from ..data.paths import data_dir_line
from ..facts.vocabulary import DATASETS, HMD, MMH


def register(subparsers):
    parser = subparsers.add_parser("data", help="lay out HMD / convert MMHS150K for MMF")
    sub = parser.add_subparsers(dest="dataset", metavar="DATASET")
    sub.required = True

    hmd = sub.add_parser(HMD, help="lay out a Hateful Memes copy (challenge zip or folder)")
    hmd.add_argument("src", metavar="SRC", help="challenge zip, or folder with img/ + 5 jsonl")
    _data_dir_option(hmd)
    hmd.add_argument("--password", help="password of the challenge zip")
    hmd.add_argument(
        "--expect-counts",
        choices=EXPECT_COUNTS,
        default="strict",
        help="strict: refuse anything but the full phase-2 split sizes (default); none: a subset",
    )
    hmd.set_defaults(func=run_hmd)

    mmh = sub.add_parser(MMH, help="convert MMHS150K into MMF annotations for `mmh`")
    mmh.add_argument("src", metavar="SRC", help="MMHS150K folder (MMHS150K_GT.json, splits/, ...)")
    _data_dir_option(mmh)
    mmh.add_argument(
        "--label-rule",
        choices=sorted(LABEL_RULES),
        default="any",
        help="any: hate if any annotator says so (default, matches the paper); "
        "majority: at least 2 of 3 (the dataset authors' rule)",
    )
    mmh.add_argument(
        "--missing-images",
        choices=MISSING_IMAGE_ACTIONS,
        default="fail",
        help="fail (default) or skip tweets whose image is missing",
    )
    mmh.add_argument(
        "--images",
        choices=IMAGE_MODES,
        default="link",
        help="link (default) or copy SRC/img_resized into the data dir, or leave it out",
    )
    mmh.set_defaults(func=run_mmh)


def _data_dir_option(parser):
    parser.add_argument(
        "--data-dir",
        help="MMF data dir (default: $MMF_DATA_DIR, else MMF's <cache_dir>/data)",
    )


def run_hmd(args):
    s = layout_hmd(args.src, args.data_dir, args.password, args.expect_counts)
    print(f"{DATASETS[HMD].mmf_name} laid out in {s['out']}")
    print(f"data: {data_dir_line(args.data_dir)}")
    for split, n in s["counts"].items():
        print(f"  {split:<12} {n:6d}")
    print(f"images: {s['images_present']} present, {s['images_copied']} copied this run")
    if s["images_missing"]:
        print(
            f"images missing: {s['images_missing']} (e.g. {', '.join(s['missing_examples'])}); "
            "VisualBERT/ViLBERT read MMF's released region features, so images are optional "
            "for them",
            file=sys.stderr,
        )
    return 0


def run_mmh(args):
    s = convert_mmh(
        args.src,
        args.data_dir,
        label_rule=args.label_rule,
        missing_images=args.missing_images,
        images=args.images,
    )
    print(f"mmh converted into {s['out']} (label rule: {s['label_rule']})")
    print(f"data: {data_dir_line(args.data_dir)}")
    for line in format_balance(s["balance"]):
        print("  " + line)
    skipped = sum(s["skipped"].values())
    if skipped:
        print(f"skipped {skipped} tweets without images: {s['skipped']}", file=sys.stderr)
    for w in s["warnings"]:
        print("warning: " + w, file=sys.stderr)
    return 0
