#!/usr/bin/env python3
"""Writes Tests/ServingTests/Fixtures/cifar10/: one CIFAR-10 validation-split image per class (run
once; the output is committed).

Usage: make-cifar-fixtures.py PREDICTIONS.jsonl [PREDICTIONS.jsonl ...]
  Each file is `spikeserve evaluate ... --split validation --predictions FILE` output. Per class, the
  first image (by path) that every given evaluation classified correctly is taken, so the fixtures
  are images the models get right — they test serving, not accuracy, which docs/results.md reports.

Writes CLASS.jpg (the data set's original 32x32 JPEG, byte for byte), CLASS.png (the same pixels,
lossless) and, for cat and ship, CLASS-large.jpg: enlarged to 480x360 (bicubic), a camera-sized,
non-square image that the server's documented policy center-crops to a square and resizes to
32x32 (losing 1/8 of the width on each side). Requires Pillow.
"""
import json
import os
import shutil
import sys

from PIL import Image

OUT = "Tests/ServingTests/Fixtures/cifar10"
LARGE = ["cat", "ship"]

runs = [{json.loads(line)["path"]: json.loads(line) for line in open(p)} for p in sys.argv[1:]]
if not runs:
    sys.exit(__doc__)
first = runs[0]
chosen = {}
for path in sorted(first):
    label = first[path]["label"]
    if label not in chosen and all(r.get(path, {}).get("correct") for r in runs):
        chosen[label] = path
os.makedirs(OUT, exist_ok=True)
for label, path in sorted(chosen.items()):
    shutil.copyfile(path, f"{OUT}/{label}.jpg")
    image = Image.open(path).convert("RGB")
    image.save(f"{OUT}/{label}.png", optimize=True)
    if label in LARGE:
        image.resize((480, 360), Image.BICUBIC).save(f"{OUT}/{label}-large.jpg", quality=90)
    print(f"{label}: {path}")
