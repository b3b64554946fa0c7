"""Where the random masks of inference come from: a small protocol (:class:`MaskSource`), two sources (pure torch).

Inference (:func:`amsnet_basicsr.scheme.denoise`) needs two kinds of draws, both uniform and independent per
pixel and shared by the channels (Eq. 5): the MMDB group id g of every pixel, and for R^3 (AP-BSN's random-
replacement refinement) per copy t a replacement decision and the s = 1 group ids. A mask source provides them for
a batch of images given the *source coordinates* of its pixels (:class:`PixelCoords`):

* :class:`GeneratorMasks` draws from a ``torch.Generator`` stream, in call order (training, and the scheme's own
  tests: reproducible for one call sequence, but a pixel's mask depends on the shapes and order of the calls).
* :class:`PositionalMasks` makes each decision a counter-based hash of (seed, stream, image index, row, column):
  a pixel gets the same masks whichever tile, batch or order it is processed in, and a reflect-padded copy of a
  pixel shares the masks of its source. Every inference entry point uses it, so tiled and untiled runs, ``test.py``
  and ``amsnet-denoise`` agree.
"""
from dataclasses import dataclass
from typing import Protocol, Union

import torch

_MASK32 = 0xFFFFFFFF


def sample_mask_groups(batch: int, height: int, width: int, num_branches: int,
                       generator: torch.Generator) -> torch.Tensor:
    """One group id g in {0..k-1} per pixel, uniform and independent, shared by the channels (Eq. 5).

    Returns a (batch, 1, height, width) int64 tensor drawn from ``generator``, on the generator's device. Groups
    are drawn in image space and carried through :func:`pd_down` with the image, so every PD sub-image gets its
    own independent draw and a reflect-padded copy of a pixel always shares its mask.
    """
    return torch.randint(num_branches, (batch, 1, height, width), generator=generator, device=generator.device)


def sample_replacement(times: int, batch: int, height: int, width: int, prob: float,
                       generator: torch.Generator) -> torch.Tensor:
    """R^3's replacement draw: (T, B, 1, H, W) bool, True with probability p per pixel (all channels together)."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f'R3 replacement probability must be in [0, 1], got {prob}')
    return torch.rand((times, batch, 1, height, width), generator=generator, device=generator.device) < prob


@dataclass(frozen=True)
class PixelCoords:
    """Source coordinates of a (N, C, H, W) batch: image index (N,), rows (N, H) and columns (N, W), int64."""
    images: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor

    @classmethod
    def whole(cls, batch: int, height: int, width: int,
              device: Union[str, torch.device, None] = None) -> 'PixelCoords':
        """The coordinates of ``batch`` whole images of ``height`` x ``width``."""
        images = torch.arange(batch, device=device)
        rows = torch.arange(height, device=device).expand(batch, height)
        cols = torch.arange(width, device=device).expand(batch, width)
        return cls(images, rows, cols)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(N, 1, H, W): the shape of one draw for the batch."""
        return self.images.shape[0], 1, self.rows.shape[1], self.cols.shape[1]


class MaskSource(Protocol):
    """What inference asks of a mask source (:func:`amsnet_basicsr.scheme.denoise`,
    :func:`amsnet_basicsr.tiling.denoise_image`): :class:`GeneratorMasks` and :class:`PositionalMasks` implement it.

    ``position_invariant``: True when every draw is a function of the pixels' source coordinates only (not of the
    call order or the batch's shape); tiled inference accepts only such a source.
    """

    position_invariant: bool

    def mmdb_groups(self, coords: PixelCoords, *, num_branches: int) -> torch.Tensor:
        """The MMDB group id g in {0..k-1} of every pixel of ``coords`` (Eq. 5): (N, 1, H, W) int64."""

    def r3_draws(self, coords: PixelCoords, *, times: int, num_branches: int,
                 prob: float) -> tuple[torch.Tensor, torch.Tensor]:
        """R^3's draws for ``times`` copies of the pixels of ``coords``: the replacement decisions, (T, N, 1, H, W)
        bool (True with probability ``prob``), and the s = 1 MMDB groups of the copies, (T*N, 1, H, W) int64."""


class GeneratorMasks:
    """Draws from ``generator`` in call order: the MMDB groups, then R^3's replacements, then R^3's groups."""

    position_invariant: bool = False

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def mmdb_groups(self, coords: PixelCoords, *, num_branches: int) -> torch.Tensor:
        batch, _, height, width = coords.shape
        return sample_mask_groups(batch, height, width, num_branches, self.generator)

    def r3_draws(self, coords: PixelCoords, *, times: int, num_branches: int,
                 prob: float) -> tuple[torch.Tensor, torch.Tensor]:
        batch, _, height, width = coords.shape
        replace = sample_replacement(times, batch, height, width, prob, self.generator)
        return replace, sample_mask_groups(times * batch, height, width, num_branches, self.generator)


def _fmix32(h):
    """MurmurHash3's 32-bit finaliser on int64 tensors or Python ints in [0, 2^32) (wrap-around is intended)."""
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _MASK32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _MASK32
    return h ^ (h >> 16)


def positional_bits(seed: int, stream: int, coords: PixelCoords) -> torch.Tensor:
    """32 random bits per pixel, a pure function of (seed, stream, image index, row, column): (N, 1, H, W) int64."""
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    key = _fmix32(_fmix32(seed & _MASK32) ^ _fmix32(((seed >> 32) + 0x9E3779B9) & _MASK32)
                  ^ _fmix32((int(stream) * 0x7F4A7C15 + 0x165667B1) & _MASK32))
    image_key = _fmix32((coords.images.to(torch.int64) * 0x27D4EB2F + key) & _MASK32)
    row_key = _fmix32((coords.rows.to(torch.int64) * 0x9E3779B1 + image_key[:, None]) & _MASK32)
    col_key = (coords.cols.to(torch.int64) * 0xC2B2AE3D + 0x61C88647) & _MASK32
    return _fmix32(row_key[:, None, :, None] ^ col_key[:, None, None, :])


def positional_groups(bits: torch.Tensor, num_branches: int) -> torch.Tensor:
    """Group id g in {0..k-1} (Eq. 5) from the high 16 bits of :func:`positional_bits`."""
    return (bits >> 16) % num_branches


def positional_uniform(bits: torch.Tensor) -> torch.Tensor:
    """A uniform draw in [0, 1) with 2^-16 resolution from the low 16 bits of :func:`positional_bits`."""
    return (bits & 0xFFFF).to(torch.float32) / 65536.0


class PositionalMasks:
    """Position-seeded draws: stream 0 gives the MMDB groups, stream 1 + t R^3 copy t's replacement and groups."""

    position_invariant: bool = True

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def mmdb_groups(self, coords: PixelCoords, *, num_branches: int) -> torch.Tensor:
        return positional_groups(positional_bits(self.seed, 0, coords), num_branches)

    def r3_draws(self, coords: PixelCoords, *, times: int, num_branches: int,
                 prob: float) -> tuple[torch.Tensor, torch.Tensor]:
        bits = torch.stack([positional_bits(self.seed, 1 + copy, coords) for copy in range(times)])
        batch, _, height, width = coords.shape
        return (positional_uniform(bits) < prob,
                positional_groups(bits, num_branches).reshape(times * batch, 1, height, width))
