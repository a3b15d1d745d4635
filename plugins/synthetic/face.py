"""Procedural cartoon faces for the synthetic dataset (not an entry point).

A face is drawn from identity traits (``FaceTraits``: shape, skin, hair, eyes, background ...)
and per-clip variation (``FacePose``: position, scale, mouth opening, blink, gaze, lighting).
Shapes are drawn with PIL at ``SUPERSAMPLE`` times the target size and box-filtered down, which
antialiases every edge for about half a millisecond per 64x64 face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUPERSAMPLE = 3
ZOOM = 1.15  # face crops are tight: the head fills most of the frame
HAIR_STYLES = ("short", "long", "bun", "curly", "bald", "spiky", "bob")


@dataclass(frozen=True)
class FaceTraits:
    """What stays the same for one identity. Lengths are fractions of the picture's side."""

    face_width: float  # width of the cranium ellipse
    face_length: float  # height of the face ellipse
    jaw: float  # jaw width relative to face width (wide, square jaws go with low voices)
    skin: tuple
    hair: tuple
    hair_style: str
    eye_color: tuple
    eye_size: float
    eye_spacing: float
    brow_thickness: float
    nose_size: float
    lip_color: tuple
    smile: float  # resting mouth curve, -1 (down) .. 1 (up)
    beard: float  # 0 none .. 1 full beard
    blush: float  # 0 .. 1
    glasses: bool
    background: tuple
    shirt: tuple


@dataclass(frozen=True)
class FacePose:
    """What changes from clip to clip for the same identity."""

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    mouth_open: float = 0.0  # 0 closed .. 1 wide open (follows the speech's loudness)
    mouth_width: float = 1.0  # vowel-dependent: /i/ wide, /u/ rounded and narrow
    blink: bool = False
    gaze: tuple = (0.0, 0.0)
    brow_raise: float = 0.0
    light_angle: float = 0.0
    light_strength: float = 0.15
    brightness: float = 1.0


def _mix(a: tuple, b: tuple, t: float) -> tuple:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


class _Pen:
    """Maps face coordinates (unit square, face centre at 0.5) to canvas pixels after the pose."""

    def __init__(self, draw, canvas: int, pose: FacePose):
        self.draw, self.canvas, self.pose = draw, canvas, pose

    def xy(self, u: float, v: float) -> tuple:
        s, p, zoom = self.canvas, self.pose, ZOOM * self.pose.scale
        return ((0.5 + (u - 0.5) * zoom + p.dx) * s, (0.5 + (v - 0.52) * zoom + p.dy) * s)

    def box(self, cu: float, cv: float, half_w: float, half_h: float) -> tuple:
        x0, y0 = self.xy(cu - half_w, cv - half_h)
        x1, y1 = self.xy(cu + half_w, cv + half_h)
        return (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))

    def ellipse(self, cu, cv, half_w, half_h, fill, outline=None, width=0):
        self.draw.ellipse(self.box(cu, cv, half_w, half_h), fill=fill, outline=outline,
                          width=self.px(width) if outline else 0)

    def px(self, length: float) -> int:
        return max(1, int(round(length * self.canvas * self.pose.scale * ZOOM)))

    def polygon(self, points, fill):
        self.draw.polygon([self.xy(u, v) for u, v in points], fill=fill)

    def line(self, points, fill, width):
        self.draw.line([self.xy(u, v) for u, v in points], fill=fill, width=self.px(width), joint="curve")


def draw_face(traits: FaceTraits, pose: FacePose, size: int) -> np.ndarray:
    """Draw one face as ``uint8 [size, size, 3]`` RGB."""
    from PIL import Image, ImageDraw

    canvas = size * SUPERSAMPLE
    image = Image.new("RGB", (canvas, canvas), traits.background)
    pen = _Pen(ImageDraw.Draw(image), canvas, pose)
    _draw_body(pen, traits)
    _draw_hair_back(pen, traits)
    _draw_head(pen, traits)
    _draw_eyes(pen, traits, pose)
    _draw_nose_and_mouth(pen, traits, pose)
    _draw_hair_front(pen, traits)
    if traits.glasses:
        _draw_glasses(pen, traits)
    small = np.asarray(image.reduce(SUPERSAMPLE), dtype=np.float32)
    return _light(small, pose)


def _draw_body(pen: _Pen, t: FaceTraits) -> None:
    neck = _mix(t.skin, (40, 20, 10), 0.18)
    pen.polygon([(0.5 - 0.09, 0.72), (0.5 + 0.09, 0.72), (0.5 + 0.1, 0.95), (0.5 - 0.1, 0.95)], neck)
    pen.ellipse(0.5, 1.08, 0.42 + 0.1 * t.jaw, 0.2, t.shirt)
    pen.ellipse(0.5, 0.9, 0.1, 0.045, neck)  # collar opening


def _draw_hair_back(pen: _Pen, t: FaceTraits) -> None:
    w, top = t.face_width, 0.5 - t.face_length
    if t.hair_style == "long":
        pen.ellipse(0.5, 0.52, w + 0.07, t.face_length + 0.06, t.hair)
        pen.polygon([(0.5 - w - 0.07, 0.5), (0.5 + w + 0.07, 0.5), (0.5 + w + 0.1, 0.9),
                     (0.5 - w - 0.1, 0.9)], t.hair)
    elif t.hair_style == "bob":
        pen.ellipse(0.5, 0.5, w + 0.08, t.face_length + 0.05, t.hair)
    elif t.hair_style == "bun":
        pen.ellipse(0.5, top - 0.02, 0.1, 0.085, t.hair)
    elif t.hair_style == "bald":
        for side in (-1, 1):  # what is left above the ears, half hidden behind the head
            pen.ellipse(0.5 + side * w * 0.95, 0.41, 0.035, 0.08, t.hair)
    elif t.hair_style == "curly":
        for angle in np.linspace(np.pi * 0.95, np.pi * 2.05, 11):
            pen.ellipse(0.5 + np.cos(angle) * (w + 0.01), 0.45 + np.sin(angle) * (t.face_length * 0.95),
                        0.075, 0.075, t.hair)


def _draw_head(pen: _Pen, t: FaceTraits) -> None:
    w, h = t.face_width, t.face_length
    ear = _mix(t.skin, (120, 40, 30), 0.12)
    for side in (-1, 1):
        pen.ellipse(0.5 + side * (w - 0.005), 0.5, 0.045, 0.07, ear)
    # Cranium and jaw as two ellipses: a wider jaw squares the chin.
    pen.ellipse(0.5, 0.47, w, h * 0.92, t.skin)
    pen.ellipse(0.5, 0.5 + h * 0.3, w * t.jaw, h * 0.62, t.skin)
    if t.beard > 0.05:
        # A beard is the jaw in hair colour with the cheeks cut back out: a crescent round the chin.
        beard = _mix(t.skin, t.hair, min(1.0, 0.35 + 0.6 * t.beard))
        pen.ellipse(0.5, 0.5 + h * 0.3, w * t.jaw, h * 0.62, beard)
        pen.ellipse(0.5, 0.5 + h * 0.05, w * t.jaw * 0.93, h * 0.55, t.skin)
        if t.beard > 0.6:  # a moustache
            pen.ellipse(0.5, 0.5 + h * 0.37, 0.075, 0.02, beard)
    if t.blush > 0.05:
        cheek = _mix(t.skin, (230, 90, 90), 0.25 * t.blush)
        for side in (-1, 1):
            pen.ellipse(0.5 + side * w * 0.58, 0.57, 0.055, 0.035, cheek)


def _draw_eyes(pen: _Pen, t: FaceTraits, p: FacePose) -> None:
    eye_y, r = 0.46, t.eye_size
    brow = _mix(t.hair, (20, 15, 10), 0.3)
    for side in (-1, 1):
        cx = 0.5 + side * t.eye_spacing
        if p.blink:
            pen.line([(cx - r, eye_y), (cx, eye_y + r * 0.35), (cx + r, eye_y)], (60, 40, 35), 0.012)
        else:
            pen.ellipse(cx, eye_y, r, r * 0.72, (250, 250, 248))
            gx, gy = cx + p.gaze[0] * r * 0.35, eye_y + p.gaze[1] * r * 0.25
            pen.ellipse(gx, gy, r * 0.55, r * 0.55, t.eye_color)
            pen.ellipse(gx, gy, r * 0.26, r * 0.26, (15, 12, 12))
            pen.ellipse(gx + r * 0.18, gy - r * 0.18, r * 0.12, r * 0.12, (255, 255, 255))
        brow_y = eye_y - r - 0.035 - p.brow_raise
        pen.line([(cx - r * 1.1, brow_y + 0.01), (cx, brow_y - 0.008), (cx + r * 1.1, brow_y + 0.004)],
                 brow, t.brow_thickness)


def _draw_nose_and_mouth(pen: _Pen, t: FaceTraits, p: FacePose) -> None:
    shade = _mix(t.skin, (90, 40, 20), 0.3)
    n = t.nose_size
    pen.line([(0.5 - n * 0.5, 0.58), (0.5, 0.595), (0.5 + n * 0.5, 0.58)], shade, 0.012)
    mouth_y = 0.5 + t.face_length * 0.46
    half_w = 0.085 * p.mouth_width
    if p.mouth_open < 0.08:
        curve = 0.025 * t.smile
        pen.line([(0.5 - half_w, mouth_y - curve), (0.5, mouth_y + curve * 0.6),
                  (0.5 + half_w, mouth_y - curve)], t.lip_color, 0.02)
        return
    half_h = 0.012 + 0.06 * p.mouth_open
    pen.ellipse(0.5, mouth_y, half_w, half_h, (95, 25, 35), outline=t.lip_color, width=0.014)
    if p.mouth_open > 0.3:  # upper teeth show once the jaw drops
        pen.draw.chord(pen.box(0.5, mouth_y - half_h * 0.55, half_w * 0.7, half_h * 0.45), 180, 360,
                       fill=(245, 245, 240))


def _draw_hair_front(pen: _Pen, t: FaceTraits) -> None:
    w, h = t.face_width, t.face_length
    top = 0.47 - h * 0.92
    cap = pen.box(0.5, 0.47 - h * 0.35, w + 0.015, h * 0.62)
    if t.hair_style in ("short", "long", "bun", "bob", "curly"):
        pen.draw.chord(cap, 180, 360, fill=t.hair)
        # A side parting: the fringe dips lower on one side.
        pen.polygon([(0.5 - w, 0.47 - h * 0.35), (0.5 - w * 0.2, 0.47 - h * 0.35),
                     (0.5 - w * 0.75, 0.47 - h * 0.1)], t.hair)
    elif t.hair_style == "spiky":
        pen.draw.chord(cap, 180, 360, fill=t.hair)
        xs = np.linspace(0.5 - w, 0.5 + w, 8)
        spikes = [(x, top + 0.06 + 0.05 * abs(x - 0.5)) for x in xs]
        points = []
        for (x0, y0), (x1, y1) in zip(spikes, spikes[1:]):
            points += [(x0, y0), ((x0 + x1) / 2, top - 0.04)]
        pen.polygon(points + [spikes[-1], (0.5 + w, 0.47 - h * 0.3), (0.5 - w, 0.47 - h * 0.3)], t.hair)


def _draw_glasses(pen: _Pen, t: FaceTraits) -> None:
    frame = (40, 35, 40)
    r = t.eye_size * 1.45
    for side in (-1, 1):
        pen.ellipse(0.5 + side * t.eye_spacing, 0.46, r, r * 0.85, None, outline=frame, width=0.012)
    pen.line([(0.5 - t.eye_spacing + r, 0.455), (0.5 + t.eye_spacing - r, 0.455)], frame, 0.012)


def _light(image: np.ndarray, pose: FacePose) -> np.ndarray:
    """A soft directional light plus a vignette: per-clip lighting on the flat drawing."""
    size = image.shape[0]
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    lx, ly = np.cos(pose.light_angle), np.sin(pose.light_angle)
    gradient = coords[None, :] * lx + coords[:, None] * ly
    vignette = coords[None, :] ** 2 + coords[:, None] ** 2
    gain = pose.brightness * (1.0 + pose.light_strength * 2.0 * gradient - 0.35 * vignette)
    return np.clip(image * gain[..., None], 0, 255).astype(np.uint8)
