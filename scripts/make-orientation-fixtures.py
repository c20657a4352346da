#!/usr/bin/env python3
"""Writes Tests/ImagingTests/Fixtures/orientation/ (run once; the output is committed): an asymmetric
6x4 pattern stored with each EXIF orientation 1-8, as a PNG with an eXIf chunk and as a gray JPEG
with an APP1 Exif segment, plus what Pillow's ImageOps.exif_transpose shows for each (PNG, lossless),
and files whose Exif block is garbage (they must read as orientation 1). Also, for the serving
test, Tests/ServingTests/Fixtures/seven-exif6.jpg: the seven stored sideways (rotated 90 degrees
counter-clockwise) with Orientation = 6, which a viewer turns upright. Requires Pillow.
"""
import io, os, sys
from PIL import Image, ImageOps

out = sys.argv[1] if len(sys.argv) > 1 else "Tests/ImagingTests/Fixtures/orientation"
os.makedirs(out, exist_ok=True)
W, H = 6, 4
base = Image.new("L", (W, H))
base.putdata([(x * 40 + y * 9 + (60 if (x, y) == (0, 0) else 0)) % 256 for y in range(H) for x in range(W)])

for o in range(1, 9):
    exif = Image.Exif()
    exif[0x0112] = o
    base.save(f"{out}/o{o}.png", exif=exif.tobytes())
    base.save(f"{out}/o{o}.jpg", quality=100, exif=exif.tobytes())
    for ext in ("png", "jpg"):
        shown = ImageOps.exif_transpose(Image.open(f"{out}/o{o}.{ext}"))
        shown.save(f"{out}/o{o}.{ext}-shown.png")

# Garbage after a valid Exif header: orientation 1, and the image still decodes.
bad = b"Exif\x00\x00" + bytes(range(40))
base.save(f"{out}/bad-exif.jpg", quality=100, exif=bad)
base.save(f"{out}/bad-exif.png", exif=bytes(range(40)))

seven = Image.open("Tests/ServingTests/Fixtures/seven.png").convert("L")
exif = Image.Exif()
exif[0x0112] = 6
seven.rotate(90, expand=True).save("Tests/ServingTests/Fixtures/seven-exif6.jpg", quality=95, exif=exif.tobytes())
print("wrote", out)
