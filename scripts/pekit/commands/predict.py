"""`pekit predict`: score new memes with a trained run (workflows/predict.py)."""

from __future__ import annotations

import sys

from ..core import argtypes


def register(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="score new memes with a run's model (MMF's own evaluation)",
        description="Score memes with a finished run: its best checkpoint, another checkpoint "
        "(--checkpoint), or exported adapters on their base (--adapters, --base). Give one meme "
        "(--image, --text) or a table (--table: JSONL or CSV with id, image or img, text; images "
        "relative to --images, default the table's folder). Region features come from MMF's "
        "Faster R-CNN (the fetched frcnn-vg-finetuned weights, or --frcnn-dir), or from a "
        "folder of the dataset's features (--features: <image name>.npy). Writes id, proba, "
        "label as JSONL or CSV (by --out's suffix) in one atomic write.",
    )
    p.add_argument("--run", required=True, type=argtypes.path, help="a finished run folder")
    p.add_argument("--out", required=True, type=argtypes.path, help="output .jsonl or .csv")
    p.add_argument("--image", type=argtypes.path, help="one meme's image")
    p.add_argument("--text", help="one meme's text")
    p.add_argument("--id", help="one meme's id in the output (default: 1)")
    p.add_argument("--table", type=argtypes.path, help="JSONL or CSV of id, image, text")
    p.add_argument("--images", type=argtypes.path, help="folder the table's images are in")
    p.add_argument("--features", type=argtypes.path, help="folder of the memes' features")
    p.add_argument("--checkpoint", type=argtypes.path, help="an MMF checkpoint of the run's model")
    p.add_argument("--adapters", type=argtypes.path, help="exported adapters (with --base)")
    p.add_argument("--base", type=argtypes.path, help="the base checkpoint the adapters go on")
    p.add_argument("--frcnn-dir", type=argtypes.path, help="FRCNN config.yaml + weights folder")
    p.add_argument("--mmf-src", type=argtypes.path, help="MMF checkout holding tools/")
    p.add_argument("--device", type=argtypes.optional(argtypes.torch_device), help="FRCNN device")
    p.add_argument("--data-dir", help="MMF data dir of the FRCNN weights (default: MMF's)")
    p.set_defaults(func=_main)


def _main(args):
    from ..workflows import predict

    memes = predict.memes_from(args)
    extractor = None
    if not args.features:
        extractor = predict.frcnn_extractor(
            args.frcnn_dir, args.mmf_src, args.device, args.data_dir
        )
    rows = predict.predict(
        memes,
        args.run,
        args.out,
        features=args.features,
        extractor=extractor,
        checkpoint=args.checkpoint,
        adapters=args.adapters,
        base=args.base,
    )
    hateful = sum(label for _, _, label in rows)
    print(f"wrote {args.out}: {len(rows)} memes, {hateful} predicted hateful", file=sys.stderr)
    return 0
