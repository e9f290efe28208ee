#!/usr/bin/env python3
"""Writes the image-decoding fixtures in tests/fixtures/images/ and what Pillow decodes.

Each fixture is a small image (13x9 or so) in one colour mode, layout or EXIF orientation;
expected.json records, for each, what `ImageOps.exif_transpose(Image.open(f)).convert(M)`
gives for M in "L" and "RGB" (Pillow's full-size decode) and, for JPEGs, what Pillow's
draft() gives at 1/2, 1/4 and 1/8 scale (libjpeg's scaled IDCT, which Pillow also uses),
as hex of the [C, H, W] bytes. The C++ test (tests/data/test_image_codec_fixtures.cpp)
requires our decoder to give exactly these bytes.

Files Pillow cannot write (16-bit RGB, 2-bit gray, interlaced PNGs, an eXIf chunk after the
image data) come from the small PNG writer below; YCCK JPEGs from libturbojpeg through
ctypes (TJPF_CMYK compresses to YCCK). Deterministic: rerunning rewrites the same bytes.

Usage: python3 tools/gen_image_fixtures.py [--out tests/fixtures/images]
"""

import argparse
import ctypes
import io
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

H, W = 9, 13


def pattern(h=H, w=W, channels=3, seed=0):
    """A smooth gradient with sharp edges and a little noise, distinct per channel."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    planes = []
    for c in range(channels):
        p = (x * (17 + 9 * c) + y * (29 - 7 * c) + 40 * c) % 256
        p = np.where((x + 2 * y + c) % 7 == 0, 255 - p, p)
        p = p + rng.integers(-12, 13, size=p.shape)
        planes.append(np.clip(p, 0, 255))
    return np.stack(planes, axis=-1).astype(np.uint8)


# --- a minimal PNG writer for what Pillow cannot write ---------------------------------

def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def pack_rows(a, depth):
    """Rows of `a` (H x W x C integers) as PNG scanlines with filter byte 0."""
    out = b""
    for row in a:
        flat = row.reshape(-1)
        if depth == 16:
            data = flat.astype(">u2").tobytes()
        elif depth == 8:
            data = flat.astype(np.uint8).tobytes()
        else:
            per = 8 // depth
            vals = list(flat) + [0] * (-len(flat) % per)
            data = bytes(
                sum(int(v) << (8 - depth * (i + 1)) for i, v in enumerate(vals[j:j + per]))
                for j in range(0, len(vals), per))
        out += b"\0" + data
    return out


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png_bytes(a, color_type, depth, interlace=False, before_idat=b"", after_idat=b""):
    h, w = a.shape[:2]
    if interlace:
        raw = b"".join(pack_rows(a[y0::dy, x0::dx], depth) for x0, y0, dx, dy in ADAM7
                       if a[y0::dy, x0::dx].size)
    else:
        raw = pack_rows(a, depth)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + before_idat +
            chunk(b"IDAT", zlib.compress(raw, 9)) + after_idat + chunk(b"IEND", b""))


# --- EXIF blocks -------------------------------------------------------------------------

def exif_tiff(orientation, big_endian=False):
    """A TIFF structure whose first IFD holds ResolutionUnit and Orientation (SHORTs)."""
    e = ">" if big_endian else "<"
    head = (b"MM\x00\x2a" if big_endian else b"II\x2a\x00") + struct.pack(e + "I", 8)
    entries = [(0x0112, 3, 1, orientation), (0x0128, 3, 1, 2)]
    ifd = struct.pack(e + "H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack(e + "HHI", tag, typ, count) + struct.pack(e + "HH", value, 0)
    return head + ifd + struct.pack(e + "I", 0)


# --- YCCK through libturbojpeg -----------------------------------------------------------

def ycck_jpeg(cmyk, quality=95):
    tj = ctypes.CDLL("libturbojpeg.so.0")
    tj.tjInitCompress.restype = ctypes.c_void_p
    handle = ctypes.c_void_p(tj.tjInitCompress())
    buf = ctypes.POINTER(ctypes.c_ubyte)()
    size = ctypes.c_ulong(0)
    src = np.ascontiguousarray(cmyk)
    TJPF_CMYK, TJSAMP_444 = 11, 0
    rc = tj.tjCompress2(handle, src.ctypes.data_as(ctypes.c_void_p), src.shape[1], 0,
                        src.shape[0], TJPF_CMYK, ctypes.byref(buf), ctypes.byref(size),
                        TJSAMP_444, quality, 0)
    assert rc == 0, "tjCompress2 failed"
    data = ctypes.string_at(buf, size.value)
    tj.tjFree(buf)
    tj.tjDestroy(handle)
    return data


def adobe_transform(data):
    """The transform byte of a JPEG's APP14 Adobe segment (None without one)."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker == 0xEE and data[i + 4:i + 9] == b"Adobe":
            return data[i + 15]
        if marker == 0xDA:
            break
        i += 2 + length
    return None


# --- the fixtures --------------------------------------------------------------------------

def save_pil(im, **kw):
    fmt = kw.pop("format")
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def fixtures():
    rgb = pattern()
    gray = pattern(channels=1, seed=1)[..., 0]
    alpha = pattern(channels=1, seed=2)[..., 0]
    out = {}
    # PNG colour modes.
    out["gray.png"] = save_pil(Image.fromarray(gray, "L"), format="PNG")
    out["gray_alpha.png"] = save_pil(Image.fromarray(np.dstack([gray, alpha]), "LA"),
                                     format="PNG")
    out["rgb.png"] = save_pil(Image.fromarray(rgb, "RGB"), format="PNG")
    out["rgba.png"] = save_pil(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), format="PNG")
    pal = Image.fromarray(rgb, "RGB").quantize(colors=23, method=Image.Quantize.MEDIANCUT)
    out["palette.png"] = save_pil(pal, format="PNG")
    out["palette_trns.png"] = save_pil(pal, format="PNG", transparency=bytes(range(0, 230, 10)))
    out["palette_4bit.png"] = save_pil(
        Image.fromarray(rgb, "RGB").quantize(colors=16), format="PNG", bits=4)
    out["gray_trns.png"] = save_pil(Image.fromarray(gray, "L"), format="PNG",
                                    transparency=int(gray[0, 0]))
    out["bilevel.png"] = save_pil(Image.fromarray(gray > 127), format="PNG")
    out["gray_2bit.png"] = png_bytes((gray >> 6)[..., None], 0, 2)
    # 16-bit: random samples, so that the low byte varies (it is dropped).
    rng = np.random.default_rng(3)
    gray16 = rng.integers(0, 65536, size=(H, W), dtype=np.uint16)
    gray16[0, :4] = [0, 255, 256, 65535]
    out["gray16.png"] = save_pil(Image.fromarray(gray16, "I;16"), format="PNG")
    rgb16 = rng.integers(0, 65536, size=(H, W, 3), dtype=np.uint16)
    out["rgb16.png"] = png_bytes(rgb16, 2, 16)
    out["rgba16.png"] = png_bytes(
        np.dstack([rgb16, rng.integers(0, 65536, size=(H, W, 1))]).astype(np.uint16), 6, 16)
    # Interlaced (Adam7), at a size that leaves some passes empty and others ragged.
    out["interlaced_rgb.png"] = png_bytes(pattern(11, 6, seed=4), 2, 8, interlace=True)
    out["interlaced_gray16.png"] = png_bytes(gray16[..., None], 0, 16, interlace=True)
    out["interlaced_palette.png"] = png_bytes(np.array(pal)[..., None], 3, 8, interlace=True,
                                              before_idat=chunk(b"PLTE", bytes(pal.getpalette()[:69])))
    # JPEG colour modes and layouts.
    out["gray.jpg"] = save_pil(Image.fromarray(gray, "L"), format="JPEG", quality=90)
    out["rgb420.jpg"] = save_pil(Image.fromarray(rgb, "RGB"), format="JPEG", quality=90)
    out["rgb444.jpg"] = save_pil(Image.fromarray(rgb, "RGB"), format="JPEG", quality=90,
                                 subsampling=0)
    out["progressive.jpg"] = save_pil(Image.fromarray(rgb, "RGB"), format="JPEG", quality=90,
                                      progressive=True)
    big = pattern(37, 50, seed=5)
    out["rgb_37x50.jpg"] = save_pil(Image.fromarray(big, "RGB"), format="JPEG", quality=90)
    out["progressive_37x50.jpg"] = save_pil(Image.fromarray(big, "RGB"), format="JPEG",
                                            quality=90, progressive=True)
    ink = pattern(channels=4, seed=6)
    out["cmyk.jpg"] = save_pil(Image.fromarray(ink, "CMYK"), format="JPEG", quality=90)
    out["ycck.jpg"] = ycck_jpeg(255 - ink)
    assert adobe_transform(out["ycck.jpg"]) == 2, "expected a YCCK JPEG"
    # EXIF orientation, every value, little- and big-endian TIFF.
    for o in range(1, 9):
        tiff = exif_tiff(o, big_endian=o % 2 == 0)
        out[f"orient{o}.jpg"] = save_pil(Image.fromarray(rgb, "RGB"), format="JPEG",
                                         quality=90, exif=b"Exif\0\0" + tiff)
        out[f"orient{o}.png"] = save_pil(Image.fromarray(rgb, "RGB"), format="PNG", exif=tiff)
    out["orient6_progressive_37x50.jpg"] = save_pil(
        Image.fromarray(big, "RGB"), format="JPEG", quality=90, progressive=True,
        exif=b"Exif\0\0" + exif_tiff(6))
    out["orient5_cmyk.jpg"] = save_pil(Image.fromarray(ink, "CMYK"), format="JPEG",
                                       quality=90, exif=b"Exif\0\0" + exif_tiff(5))
    out["orient8_exif_after_idat.png"] = png_bytes(rgb, 2, 8,
                                                   after_idat=chunk(b"eXIf", exif_tiff(8)))
    return out


# --- how Pillow parses malformed EXIF blocks --------------------------------------------

def check_pillow_exif_parsing():
    """Asserts the upright size Pillow gives a 3x5 JPEG for each EXIF block that
    tests/data/test_image_codec.cpp (ExifParsedAsPillowParsesIt, MalformedExifMeansNoOrientation)
    expects of our decoder, so that those expectations are Pillow's."""
    import warnings
    warnings.simplefilter("ignore")  # "Possibly corrupt EXIF data" and the like
    jpeg = save_pil(Image.fromarray((np.arange(45).reshape(3, 5, 3) * 5).astype(np.uint8)),
                    format="JPEG", quality=100)

    def app1(payload):
        return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]

    def entry(tag, typ, count, value):
        return struct.pack("<HHII", tag, typ, count, value)

    def tiff(entries, count=None):
        return (b"II\x2a\x00" + struct.pack("<IH", 8, len(entries) if count is None else count)
                + b"".join(entries) + struct.pack("<I", 0))

    def upright(exif, marker=b"Exif\0\0"):
        im = ImageOps.exif_transpose(Image.open(io.BytesIO(app1(marker + exif))))
        return f"{im.size[1]}x{im.size[0]}"

    o6, o3 = entry(0x112, 3, 1, 6), entry(0x112, 3, 1, 3)
    outside = entry(0x010E, 2, 100, 0xFFFFFFF0)
    far = tiff([o6])
    cases = [
        (tiff([o6, o3]), "3x5"), (tiff([o3, o6]), "5x3"),
        (tiff([entry(0x112, 4, 1, 6)]), "5x3"), (tiff([entry(0x112, 8, 1, 6)]), "5x3"),
        (tiff([entry(0x112, 5, 1, 26)]) + struct.pack("<II", 12, 2), "5x3"),
        (tiff([entry(0x112, 5, 1, 26)]) + struct.pack("<II", 13, 2), "3x5"),
        (tiff([entry(0x112, 1, 1, 6)]), "3x5"), (tiff([entry(0x112, 2, 2, ord("6"))]), "3x5"),
        (tiff([entry(0x112, 3, 1, 9)]), "3x5"), (tiff([entry(0x112, 3, 1, 0)]), "3x5"),
        (tiff([entry(0x112, 3, 3, 26)]) + b"\x06\0\x01\0\x01\0", "5x3"),
        (tiff([o6], 1000), "5x3"), (tiff([o6, outside]), "5x3"), (tiff([outside, o6]), "3x5"),
        (tiff([entry(0x112, 3, 0x40000000, 8)]), "3x5"), (far[:4] + b"\x7f" + far[5:], "3x5"),
        (b"XX" + far[2:], "3x5"), (b"", "3x5"),
    ]
    for exif, want in cases:
        assert upright(exif) == want, (exif, upright(exif), want)
    assert upright(tiff([o6]), b"Exif\0X") == "3x5"
    # A block shorter than a TIFF header makes Pillow fail to open the file; we ignore it.


def pillow_decodes(data, mode, scale=1):
    im = Image.open(io.BytesIO(data))
    if scale > 1:
        w, h = im.size
        im.draft(im.mode if im.mode != "CMYK" else "CMYK", (max(1, w // scale), max(1, h // scale)))
        assert im.size == (-(-w // scale), -(-h // scale)), (im.size, w, h, scale)
    im = ImageOps.exif_transpose(im).convert(mode)
    a = np.array(im, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return a


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "images"))
    args = parser.parse_args()
    check_pillow_exif_parsing()
    os.makedirs(args.out, exist_ok=True)
    cases = []
    for name, data in sorted(fixtures().items()):
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        upright = ImageOps.exif_transpose(im)
        case = {
            "file": name,
            "info": [upright.size[1], upright.size[0], 1 if im.mode in ("1", "L", "LA", "I", "I;16") else 3],
            "decodes": [],
        }
        scales = [1, 2, 4, 8] if name.endswith(".jpg") else [1]
        for scale in scales:
            for mode in ("L", "RGB"):
                a = pillow_decodes(data, mode, scale)
                if name.endswith("gray16.png"):
                    # Pillow clips the 32-bit "I" samples to 255; we keep the high byte.
                    assert (a[0] == np.minimum(np.array(im), 255).astype(np.uint8)).all()
                    hi = (np.array(im) >> 8).astype(np.uint8)
                    a = np.stack([hi] * (1 if mode == "L" else 3))
                case["decodes"].append({"mode": mode, "scale": scale, "shape": list(a.shape),
                                        "hex": a.tobytes().hex()})
        cases.append(case)
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump({"generator": "tools/gen_image_fixtures.py", "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} fixtures to {args.out}")


if __name__ == "__main__":
    main()
