# gen_images.py - writes the tiny PNG and JPEG files test_data.c reads
# (committed; the tests do not run this).  /usr/bin/python3 with Pillow:
#   cd tests/runtime/data && /usr/bin/python3 gen_images.py
import os

from PIL import Image

# 3x2 RGB with known pixels: row-major (x, y) -> (10*x + 100*y, 50, 255 - 40*x)
rgb = Image.new("RGB", (3, 2))
for y in range(2):
    for x in range(3):
        rgb.putpixel((x, y), (10 * x + 100 * y, 50, 255 - 40 * x))
rgb.save("rgb_3x2.png")

# 2x2 grey: 0, 80 / 160, 240
grey = Image.new("L", (2, 2))
for i, v in enumerate([0, 80, 160, 240]):
    grey.putpixel((i % 2, i // 2), v)
grey.save("grey_2x2.png")

# solid colours survive JPEG nearly exactly
Image.new("RGB", (8, 8), (200, 30, 60)).save("solid_8x8.jpg", quality=95)
Image.new("L", (8, 8), 128).save("grey_8x8.jpg", quality=95)

# a larger JPEG and PNG cut in half: truncated files
big = Image.new("RGB", (64, 64))
for y in range(64):
    for x in range(64):
        big.putpixel((x, y), ((x * 4) % 256, (y * 4) % 256, (x * y) % 256))
big.save("big.jpg", quality=90)
big.save("big.png")
for name in ["big.jpg", "big.png"]:
    data = open(name, "rb").read()
    open("truncated." + name.split(".")[1], "wb").write(data[: len(data) // 2])
    os.remove(name)
