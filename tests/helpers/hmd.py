"""A small synthetic copy of the Hateful Memes dataset, in the shapes its users hand the kit."""

from __future__ import annotations

import json
import zipfile

SPLITS = {"train": 6, "dev_seen": 2, "dev_unseen": 2, "test_seen": 2, "test_unseen": 3}


def make_hmd(folder, missing_image=None, mutate=None):
    """A small phase-2 shaped copy: img/ plus five jsonl (test files without labels)."""
    (folder / "img").mkdir(parents=True)
    next_id = 1000
    for split, n in SPLITS.items():
        lines = []
        for _ in range(n):
            next_id += 1
            row = {"id": next_id, "img": f"img/{next_id:05d}.png", "text": f"meme {next_id}"}
            if not split.startswith("test"):
                row["label"] = next_id % 2
            if mutate:
                row = mutate(split, row)
            lines.append(json.dumps(row))
            if row.get("img") != missing_image:
                (folder / "img" / f"{next_id:05d}.png").write_bytes(
                    b"\x89PNG" + bytes(next_id % 251)
                )
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "README.md").write_text("synthetic\n")
    return folder


def zip_folder(folder, zip_path, prefix="data/"):
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, prefix + str(path.relative_to(folder)))
    return zip_path


def out_dir(data_dir):
    return data_dir / "datasets" / "hateful_memes" / "defaults"
