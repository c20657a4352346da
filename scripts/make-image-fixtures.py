#!/usr/bin/env python3
"""Writes the small image fixtures of Tests/ImagingTests/Fixtures (run once; the output is committed).

Each image is 7x5 with a known pattern so decoding can be checked pixel by pixel:
pixel (x, y) has red = 30*x, green = 40*y, blue = 200 (gray variants use the red ramp).
Requires Pillow (pip install pillow); the tests themselves need only the committed files.
"""
import io, os, struct, zlib, sys
from PIL import Image

out = sys.argv[1] if len(sys.argv) > 1 else "Tests/ImagingTests/Fixtures"
os.makedirs(out, exist_ok=True)
W, H = 7, 5

def rgb():
    im = Image.new("RGB", (W, H))
    im.putdata([(30 * x, 40 * y, 200) for y in range(H) for x in range(W)])
    return im

def gray():
    im = Image.new("L", (W, H))
    im.putdata([30 * x for y in range(H) for x in range(W)])
    return im

rgb().save(f"{out}/rgb.png")
gray().save(f"{out}/gray.png")
la = Image.merge("LA", (gray(), Image.new("L", (W, H), 255)))
la.save(f"{out}/gray-alpha.png")
rgba = rgb().convert("RGBA")
rgba.save(f"{out}/rgba.png")
rgb().quantize(colors=64).save(f"{out}/palette.png")
g16 = Image.new("I;16", (W, H))
g16.putdata([257 * 30 * x for y in range(H) for x in range(W)])
g16.save(f"{out}/gray16.png")
rgb().save(f"{out}/interlaced.png", interlace=1)  # Pillow may ignore this flag; checked below
rgb().save(f"{out}/rgb.jpg", quality=100, subsampling=0)
gray().save(f"{out}/gray.jpg", quality=100)
rgb().convert("CMYK").save(f"{out}/cmyk.jpg", quality=100)

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

# Adam7-interlaced RGB, written by hand since Pillow does not write interlaced PNGs.
def adam7_png(im):
    px = im.load()
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        xs = list(range(x0, W, dx)); ys = list(range(y0, H, dy))
        if not xs or not ys:
            continue
        for y in ys:
            raw += b"\x00" + b"".join(bytes(px[x, y]) for x in xs)
    ihdr = struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(f"{out}/interlaced.png", "wb").write(adam7_png(rgb()))

# A valid header claiming 100000 x 100000 pixels with a tiny body.
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
open(f"{out}/huge-header.png", "wb").write(
    b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b""))
