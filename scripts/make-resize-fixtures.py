#!/usr/bin/env python3
"""Writes Tests/ImagingTests/Fixtures/resize/: source images of several sizes and aspect ratios and
what Pillow's Image.resize(size, Image.BILINEAR) makes of them (run once; the output is committed).

Sources are deterministic: a thick-stroked digit-like shape on a 560x560 canvas (the case that lost
its strokes to point sampling), and gradient/checker patterns of odd sizes, gray and RGB. Each pair is
SOURCE.png -> SOURCE-to-WxH.png. Requires Pillow (pip install pillow); the tests need only the files.
"""
import os, sys
from PIL import Image, ImageDraw

out = sys.argv[1] if len(sys.argv) > 1 else "Tests/ImagingTests/Fixtures/resize"
os.makedirs(out, exist_ok=True)

def digit(size=560, stroke=40):
    im = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(im)
    d.line([(size * 0.2, size * 0.2), (size * 0.8, size * 0.2), (size * 0.45, size * 0.85)], fill=255, width=stroke)
    return im

def pattern(w, h, mode):
    im = Image.new(mode, (w, h))
    px = []
    for y in range(h):
        for x in range(w):
            v = (x * 255 // max(1, w - 1) + ((x // 3 + y // 2) % 2) * 60 + y * 7) % 256
            px.append(v if mode == "L" else (v, (y * 255 // max(1, h - 1)), (x * y) % 256))
    im.putdata(px)
    return im

cases = [
    ("digit560", digit(), [(28, 28), (32, 32), (100, 37)]),
    ("digit560-thin", digit(stroke=16), [(28, 28)]),
    ("gray97x31", pattern(97, 31, "L"), [(28, 28), (13, 40)]),
    ("rgb33x250", pattern(33, 250, "RGB"), [(32, 32), (7, 9)]),
    ("rgb10x7", pattern(10, 7, "RGB"), [(28, 28), (32, 20)]),
]
for name, im, sizes in cases:
    im.save(f"{out}/{name}.png")
    for w, h in sizes:
        im.resize((w, h), Image.BILINEAR).save(f"{out}/{name}-to-{w}x{h}.png")
print("wrote", out)
