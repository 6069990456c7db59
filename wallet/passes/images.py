"""Images of the identifiers a cashier scans. Value in, image bytes out, plus a bounded cache of them.

- QR (rotating pass token, coupon code): error correction M, 4-module quiet zone, encoded by zxing-cpp
  (its writer is libzint, in C: 0.35 ms for a pass token where the pure-Python `qrcode` library took
  6 ms choosing the mask). PNG at 10 px per module (a version-6 pass token is 49 modules with its
  quiet zone, 490 px: sharp on a phone screen, readable by a camera scanner at arm's length), written
  by `png_1bit` below. SVG in module units (viewBox "0 0 N N") so it scales to any size without blur.
- Code 128 (static card number, coupon code) for 1D laser scanners, encoded by python-barcode. PNG is
  python-barcode's ImageWriter (with the human-readable number under the bars, for typing by hand).
  SVG is drawn here from python-barcode's module pattern in module units with a viewBox, because
  python-barcode's SVGWriter sizes everything in millimetres and has no viewBox, so it cannot scale.

`render(kind, value)` renders every time; `cached(kind, value)` keeps the last
settings.TESSERA_IMAGE_CACHE_SIZE images (default 2048) per process, least recently used out first.
An image is a pure function of (kind, value), so a cached image is never stale and the cache needs no
invalidation: a new pass token is a new key, and the old one simply ages out.
"""
import functools
import hashlib
import io
import re
import struct
import zlib
from dataclasses import dataclass
from xml.sax.saxutils import escape

import barcode
import zxingcpp
from barcode.writer import ImageWriter
from django.conf import settings
from PIL import Image

QR_BOX_SIZE = 10
QR_BORDER = 4
CODE128_QUIET_MODULES = 10  # ISO/IEC 15417 asks for at least 10 modules each side
CODE128_BAR_HEIGHT = 50  # in modules
CODE128_TEXT_HEIGHT = 14
# Level 6 makes a pass token's PNG 0.85 kB in 0.2 ms; level 1 would take 0.03 ms but 1.5 kB.
PNG_COMPRESSION_LEVEL = 6
DEFAULT_CACHE_SIZE = 2048
PNG = "image/png"
SVG = "image/svg+xml"

_DARK = 0  # zxing-cpp's images: one byte a pixel, 0 dark, 255 light
_LIGHT = 255
_DARK_RUN = re.compile(rb"\x00+")


def qr_modules(value: str) -> tuple[int, bytes]:
    """(size, modules) of the QR for `value`, quiet zone included: `size` rows of `size` bytes,
    row by row, 0 for a dark module and 255 for a light one. ValueError if `value` is empty or too
    long for a QR at error correction M."""
    symbol = zxingcpp.create_barcode(value, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    # Without zxing-cpp's quiet zone, adding our own: its width is then ours, whatever the library does.
    view = memoryview(symbol.to_image(scale=1, add_quiet_zones=False))
    rows, columns = view.shape
    data = view.tobytes()
    side = bytes([_LIGHT]) * QR_BORDER
    size = columns + 2 * QR_BORDER
    blank = bytes([_LIGHT]) * (size * QR_BORDER)
    body = b"".join(side + data[y * columns:(y + 1) * columns] + side for y in range(rows))
    return size, blank + body + blank


def qr_matrix(value: str) -> list[list[bool]]:
    """Dark modules of the QR for `value`, quiet zone included: `matrix[y][x]` is True when dark."""
    size, modules = qr_modules(value)
    return [[module == _DARK for module in modules[y * size:(y + 1) * size]] for y in range(size)]


def png_1bit(size: int, modules: bytes, box_size: int) -> bytes:
    """A PNG of a square of `size` x `size` modules (one byte each, 0 dark, anything else light),
    each drawn as `box_size` x `box_size` pixels: 1-bit grayscale (PNG colour type 0, bit depth 1:
    bit 0 black, bit 1 white), not interlaced.

    Written by hand because the image is so regular: each module row is packed to bits once (Pillow
    scales it sideways and packs it, in C) and its scanline, with filter byte 0 (None), is repeated
    `box_size` times; zlib compresses the lot into one IDAT chunk. Pillow's own PNG encoder would
    pack all 240,000 pixels of a pass token's QR instead, three times slower. Chunks are length,
    type, data, CRC-32 of type and data (PNG specification, section 5).
    """
    width = size * box_size
    row_image = Image.frombytes("L", (size, size), modules).resize((width, size), Image.Resampling.NEAREST)
    packed = row_image.convert("1", dither=Image.Dither.NONE).tobytes()  # rows padded to whole bytes
    stride = len(packed) // size
    scanlines = b"".join(
        (b"\x00" + packed[y * stride:(y + 1) * stride]) * box_size for y in range(size)
    )
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", header),
        _png_chunk(b"IDAT", zlib.compress(scanlines, PNG_COMPRESSION_LEVEL)),
        _png_chunk(b"IEND", b""),
    ))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def qr_png(value: str, *, box_size: int = QR_BOX_SIZE) -> bytes:
    """The QR for `value` as a 1-bit PNG, `box_size` px per module, quiet zone included. Uncached."""
    size, modules = qr_modules(value)
    return png_1bit(size, modules, box_size)


def _svg(width: int, height: int, path: str, extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 {width} {height}" '
        f'width="{width * 4}" height="{height * 4}" shape-rendering="crispEdges">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<path fill="#000" d="{path}"/>{extra}</svg>\n'
    ).encode()


def qr_svg(value: str) -> bytes:
    """One path of unit squares ("M{x},{y}h{w}v1h-{w}z", runs of dark modules merged per row), in a
    viewBox of "0 0 N N" modules, quiet zone included. Uncached."""
    size, modules = qr_modules(value)
    parts = []
    for y in range(size):
        for run in _DARK_RUN.finditer(modules, y * size, (y + 1) * size):
            start, width = run.start() - y * size, run.end() - run.start()
            parts.append(f"M{start},{y}h{width}v1h-{width}z")
    return _svg(size, size, "".join(parts))


def code128_modules(value: str) -> str:
    """python-barcode's Code 128 encoding of `value`: '1' bar module, '0' space module."""
    return "".join(barcode.get("code128", value).build())


def code128_png(value: str) -> bytes:
    buffer = io.BytesIO()
    barcode.get("code128", value, writer=ImageWriter()).write(
        buffer, options={"format": "PNG", "module_width": 0.25, "module_height": 15.0, "quiet_zone": 3.0, "dpi": 300}
    )
    return buffer.getvalue()


def code128_svg(value: str) -> bytes:
    modules = code128_modules(value)
    quiet = CODE128_QUIET_MODULES
    parts = []
    x = 0
    while x < len(modules):
        if modules[x] == "1":
            start = x
            while x < len(modules) and modules[x] == "1":
                x += 1
            parts.append(f"M{quiet + start},0h{x - start}v{CODE128_BAR_HEIGHT}h-{x - start}z")
        else:
            x += 1
    width = len(modules) + 2 * quiet
    height = CODE128_BAR_HEIGHT + CODE128_TEXT_HEIGHT
    text = (
        f'<text x="{width / 2:g}" y="{height - 3}" text-anchor="middle" font-family="monospace" '
        f'font-size="10">{escape(value)}</text>'
    )
    return _svg(width, height, "".join(parts), text)


# Rendered images and their cache ---------------------------------------------------------------------

@dataclass(frozen=True)
class RenderedImage:
    body: bytes
    media_type: str
    etag: str  # strong: the quoted first 128 bits of the body's SHA-256, in hex


RENDERERS = {
    "qr_png": (qr_png, PNG),
    "qr_svg": (qr_svg, SVG),
    "code128_png": (code128_png, PNG),
    "code128_svg": (code128_svg, SVG),
}


def render(kind: str, value: str) -> RenderedImage:
    """The image of `value` as `kind` (a key of RENDERERS), rendered now."""
    renderer, media_type = RENDERERS[kind]
    body = renderer(value)
    return RenderedImage(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


@functools.cache
def _cache():
    # Built on first use, so the size is read from settings once they are configured.
    return functools.lru_cache(maxsize=getattr(settings, "TESSERA_IMAGE_CACHE_SIZE", DEFAULT_CACHE_SIZE))(render)


def cached(kind: str, value: str) -> RenderedImage:
    """`render(kind, value)` through this process's LRU cache (see the module docstring).

    At the default size it holds at most 2048 images: under 2 MB of pass-token PNGs (0.85 kB each),
    about 13 MB if every entry were a pass-token SVG or a Code 128 PNG (6.5 kB each)."""
    return _cache()(kind, value)


def cache_info():
    return _cache().cache_info()


def clear_cache() -> None:
    """Empty the cache; the next call reads settings.TESSERA_IMAGE_CACHE_SIZE again."""
    _cache.cache_clear()
