"""Images of the identifiers a cashier scans. Pure functions: value in, image bytes out.

- QR (rotating pass token, coupon code): error correction M, 4-module quiet zone. PNG at 10 px per
  module (a version-6 pass token is 49 modules with its quiet zone, 490 px: sharp on a phone screen,
  readable by a camera scanner at arm's length). SVG in module units (viewBox "0 0 N N") so it scales
  to any size without blur.
- Code 128 (static card number, coupon code) for 1D laser scanners, encoded by python-barcode. PNG is
  python-barcode's ImageWriter (with the human-readable number under the bars, for typing by hand).
  SVG is drawn here from python-barcode's module pattern in module units with a viewBox, because
  python-barcode's SVGWriter sizes everything in millimetres and has no viewBox, so it cannot scale.
"""
import io
from xml.sax.saxutils import escape

import barcode
import qrcode
import qrcode.constants
from barcode.writer import ImageWriter

QR_BOX_SIZE = 10
QR_BORDER = 4
CODE128_QUIET_MODULES = 10  # ISO/IEC 15417 asks for at least 10 modules each side
CODE128_BAR_HEIGHT = 50  # in modules
CODE128_TEXT_HEIGHT = 14


def qr_matrix(value: str) -> list[list[bool]]:
    """Dark modules of the QR for `value`, quiet zone included."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QR_BORDER)
    code.add_data(value)
    code.make(fit=True)
    return code.get_matrix()


def qr_png(value: str, *, box_size: int = QR_BOX_SIZE) -> bytes:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=QR_BORDER)
    code.add_data(value)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return buffer.getvalue()


def _svg(width: int, height: int, path: str, extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 {width} {height}" '
        f'width="{width * 4}" height="{height * 4}" shape-rendering="crispEdges">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<path fill="#000" d="{path}"/>{extra}</svg>\n'
    ).encode()


def qr_svg(value: str) -> bytes:
    """One path of unit squares ("M{x},{y}h{w}v1h-{w}z", runs of dark modules merged per row)."""
    matrix = qr_matrix(value)
    parts = []
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if row[x]:
                start = x
                while x < len(row) and row[x]:
                    x += 1
                parts.append(f"M{start},{y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    size = len(matrix)
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
