"""The ``amsnet:`` section of an options file: one set of defaults and one validator for every entry point.

``train.py``/``test.py`` (through the models), ``amsnet-denoise`` (its flags only override the section) and the
demo all read a :class:`SchemeConfig`. Defaults are the paper's (Sec. 4.1 and its supplement): PD stride 5 in
training and 2 at test, k = 2 complementary masks (Eq. 5), R^3 with T = 8 copies and p = 0.16 when enabled.
The pure modules (:mod:`~amsnet_basicsr.scheme`, :mod:`~amsnet_basicsr.tiling`) raise plain ``ValueError``s;
this layer turns every problem into an :class:`~amsnet_basicsr.errors.OptionError` that names the YAML key.

One integer rule for every integer option of this package: an int, or an integral float such as YAML's
``!!float 5e3`` (bools are refused). ``null`` means "not set": ``chunk_size: null`` runs all denoiser passes in
one batch, ``tile: {size: null}`` processes the image whole.

``size_multiple: auto`` (the default) is the denoiser's own requirement: the side every PD sub-image (and tile) is
padded to a multiple of, read from the built network (:func:`amsnet_basicsr.archs.size_multiple`: spandrel's
declaration for the spandrel classes, a fact beside each of this package's architectures) by
:meth:`SchemeConfig.resolved`; an integer overrides it.

``chunk_size: auto`` (the default) sizes each denoiser call by a pixel budget of the device it runs on
(:data:`CHUNK_PIXELS`). On a CPU the cost per pixel rises once a call's activations leave the caches: MMDB on a
256x256 image (8 PD sub-images of 128x128) took 0.189 / 0.179 / 0.221 / 0.197 s with 1 / 2 / 4 / 8 sub-images per
call, and its R^3 passes (256x256 each) 2.57 / 2.48 s with 1 / 2 per call (``benchmarks/inference_speed.py``,
``docs/distillation.md``, "Chunk sizes"), so the CPU budget is two 128x128 sub-images (R^3 passes then go one per
call); a GPU wants larger batches.

"""
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional, Tuple, Union

from . import tiling
from .errors import OptionError

# pixels per denoiser call for ``chunk_size: auto``, by device type (see the module docstring)
CHUNK_PIXELS: dict[str, int] = {'cpu': 2 * 128 * 128, 'cuda': 8 * 256 * 256}


def is_integer(value: Any, minimum: Optional[int] = None) -> bool:
    """The one integer rule: an int or an integral finite float (not a bool), optionally >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if not (math.isfinite(value) and float(value).is_integer()):
        return False
    return minimum is None or value >= minimum


def require_integer(value: Any, key: str, minimum: Optional[int] = None) -> int:
    """``value`` as an int, or :class:`OptionError` naming ``key``."""
    if not is_integer(value, minimum):
        bound = f' >= {minimum}' if minimum is not None else ''
        raise OptionError(f'{key} must be an integer{bound}, got {value!r}')
    return int(value)


def _mapping(section, key, cls):
    if section is None:
        return {}
    if not isinstance(section, dict):
        allowed = ', '.join(item.name for item in fields(cls))
        raise OptionError(f'{key} must be a mapping with {allowed}; got {section!r}')
    unknown = sorted(set(section) - {item.name for item in fields(cls)})
    if unknown:
        raise OptionError(f'{key}.{unknown[0]}: unknown option; allowed: '
                          f'{", ".join(item.name for item in fields(cls))}')
    return dict(section)


def _anchor_bias(rows: Any, key: str) -> Optional[tuple]:
    """``amsnet.anchor_bias`` as a tuple of ``(level, R, G, B)`` rows, or None; :class:`OptionError` naming ``key``
    unless it is a list of 4-number rows whose levels increase within [0, 1]."""
    if rows is None:
        return None
    expected = f'{key} must be a list of [level, R, G, B] rows with levels increasing in [0, 1]'

    def number(value):
        return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)

    if (not isinstance(rows, (list, tuple)) or not rows
            or not all(isinstance(row, (list, tuple)) and len(row) == 4 and all(map(number, row))
                       for row in rows)):
        raise OptionError(f'{expected}, got {rows!r}')
    levels = [row[0] for row in rows]
    if not (0 <= levels[0] and levels[-1] <= 1 and all(a < b for a, b in zip(levels, levels[1:]))):
        raise OptionError(f'{expected}, got levels {levels!r}')
    return tuple(tuple(float(value) for value in row) for row in rows)


# a section as read from YAML: a dict (only a dict: other mappings are refused like any other value) or None (all
# defaults); anything else is an OptionError naming the key
Section = Optional[dict[str, Any]]


@dataclass(frozen=True)
class R3Config:
    """R^3, AP-BSN's random-replacement refinement (variants -E): T copies, replacement probability p."""
    enabled: bool = False
    times: int = 8
    prob: float = 0.16

    @classmethod
    def from_section(cls, section: Section, key: str = 'amsnet.r3') -> 'R3Config':
        """Validate an ``amsnet.r3`` mapping (None: all defaults); errors name ``key``."""
        values = {**asdict(cls()), **_mapping(section, key, cls)}
        if not isinstance(values['enabled'], bool):
            raise OptionError(f'{key}.enabled must be true or false, got {values["enabled"]!r}')
        prob = values['prob']
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
            raise OptionError(f'{key}.prob must be a number in [0, 1], got {prob!r}')
        return cls(enabled=values['enabled'], times=require_integer(values['times'], f'{key}.times', 1),
                   prob=float(prob))


@dataclass(frozen=True)
class TileConfig:
    """Overlapped tiling at inference (:mod:`amsnet_basicsr.tiling`): tile side, overlap, tiles per batch.

    The default tile of 512 px bounds memory on photos of any size; an image that fits in one tile is processed
    whole, so for such images tiling changes nothing.
    """
    size: Optional[int] = 512
    overlap: int = 32
    batch: int = 1

    @classmethod
    def from_section(cls, section: Section, key: str = 'amsnet.tile') -> 'TileConfig':
        """Validate an ``amsnet.tile`` mapping (None: all defaults; ``size`` null or 0: no tiling); errors name
        ``key``."""
        values = {**asdict(cls()), **_mapping(section, key, cls)}
        size = values['size']
        size = None if size is None or size == 0 else require_integer(size, f'{key}.size', 1)
        return cls(size=size, overlap=require_integer(values['overlap'], f'{key}.overlap', 0),
                   batch=require_integer(values['batch'], f'{key}.batch', 1))


@dataclass(frozen=True)
class SchemeConfig:
    """The ``amsnet:`` section: PD strides, masks (k, m), the denoiser's size multiple, chunking, seed, R^3, tiles.

    ``single_pass: true`` says that ``network_g`` is a plain denoiser -- a distilled student (stage ``distill``,
    AMSNet-D): inference runs it once on the image (tiled like the scheme), with no PD and no mask, and the
    stride, mask and R^3 settings do not apply to it.

    ``self_ensemble: true`` averages inference over the 8 flips and 90-degree rotations of the image
    (:func:`amsnet_basicsr.tiling.denoise_image`): 8x the passes; +0.14 to +0.34 dB on the demo's validation photo.

    ``low_frequency_anchor: n`` (pixels; null: off) gives the output the noisy input's local means over n-px blocks
    (:func:`amsnet_basicsr.inference.anchor_low_frequencies`): real noise has zero mean, so these means are the scene's
    to within a fraction of a grey level, while a denoiser used on photos unlike its training photos can shift them
    (a colour cast). ``anchor_bias`` (rows ``[level, R, G, B]``, levels increasing in [0, 1]; needs the anchor) is the
    noise's mean at each level, in [0, 1] units, subtracted from those means (linear between the levels, flat beyond):
    in sRGB the noise's mean is not zero (the tone curve, clipping). ``amsnet-train-folder`` measures it on the noisy
    tiles (:func:`amsnet_basicsr.distill.classical.mean_bias`).
    """
    single_pass: bool = False
    self_ensemble: bool = False
    train_stride: int = 5
    test_stride: int = 2
    num_branches: int = 2
    masks_per_pixel: int = 1
    size_multiple: Union[int, str] = 'auto'
    chunk_size: Union[int, str, None] = 'auto'
    seed: int = 0
    low_frequency_anchor: Optional[int] = None
    anchor_bias: Optional[Tuple[Tuple[float, ...], ...]] = None
    r3: R3Config = field(default_factory=R3Config)
    tile: TileConfig = field(default_factory=TileConfig)

    @classmethod
    def from_section(cls, section: Section, key: str = 'amsnet') -> 'SchemeConfig':
        """Validate an ``amsnet:`` mapping (None: all defaults); errors name the key and the allowed values."""
        values = {**{item.name: getattr(cls(), item.name) for item in fields(cls)}, **_mapping(section, key, cls)}
        integers = {name: require_integer(values[name], f'{key}.{name}', 1)
                    for name in ('train_stride', 'test_stride', 'num_branches', 'masks_per_pixel')}
        size_multiple = values['size_multiple']
        if size_multiple != 'auto':
            if not is_integer(size_multiple, 1):
                raise OptionError(f'{key}.size_multiple must be auto or an integer >= 1, got {size_multiple!r}')
            size_multiple = int(size_multiple)
        chunk_size = values['chunk_size']
        if chunk_size is not None and chunk_size != 'auto':
            if not is_integer(chunk_size, 1):
                raise OptionError(f'{key}.chunk_size must be auto, null or an integer >= 1, got {chunk_size!r}')
            chunk_size = int(chunk_size)
        for name in ('single_pass', 'self_ensemble'):
            if not isinstance(values[name], bool):
                raise OptionError(f'{key}.{name} must be true or false, got {values[name]!r}')
        anchor = values['low_frequency_anchor']
        if anchor is not None:
            anchor = require_integer(anchor, f'{key}.low_frequency_anchor', 2)
        bias = _anchor_bias(values['anchor_bias'], f'{key}.anchor_bias')
        if bias is not None and anchor is None:
            raise OptionError(f'{key}.anchor_bias needs {key}.low_frequency_anchor (the means it corrects)')
        config = cls(**integers, single_pass=values['single_pass'], self_ensemble=values['self_ensemble'],
                     size_multiple=size_multiple, chunk_size=chunk_size, low_frequency_anchor=anchor,
                     anchor_bias=bias,
                     seed=require_integer(values['seed'], f'{key}.seed'),
                     r3=values['r3'] if isinstance(values['r3'], R3Config) else R3Config.from_section(
                         values['r3'], f'{key}.r3'),
                     tile=values['tile'] if isinstance(values['tile'], TileConfig) else TileConfig.from_section(
                         values['tile'], f'{key}.tile'))
        if config.num_branches < 2:
            raise OptionError(f'{key}.num_branches (k) must be an integer >= 2, got {config.num_branches!r}')
        if not config.masks_per_pixel < config.num_branches:
            raise OptionError(f'{key}.masks_per_pixel (m) must be an integer in [1, k-1] = [1, '
                              f'{config.num_branches - 1}] (mask ratio m/k), got {config.masks_per_pixel!r}')
        if config.tile.size is not None:
            try:  # with size_multiple auto: checked again with the network's own by resolved()
                tiling.plan_tiles(1, 1, config.tile.size, config.tile.overlap, config.inference_stride,
                                  1 if size_multiple == 'auto' else size_multiple)
            except ValueError as error:
                raise OptionError(f'{key}.tile: {error}') from error
            if not config.single_pass and config.tile.size < 2 * config.inference_stride:
                # a PD sub-image of a narrower tile has one pixel along that side: a masked pixel keeps no neighbour
                raise OptionError(f'{key}.tile: tile size {config.tile.size} must be at least 2 x test_stride = '
                                  f'{2 * config.inference_stride} pixels for the mask scheme')
        return config

    @classmethod
    def from_options(cls, opt: Mapping[str, Any]) -> 'SchemeConfig':
        """The ``amsnet:`` section of a parsed options dict."""
        return cls.from_section(opt.get('amsnet'))

    def resolved(self, net: Any, key: str = 'amsnet') -> 'SchemeConfig':
        """This config with ``size_multiple: auto`` replaced by the size multiple of the denoiser ``net``
        (:func:`amsnet_basicsr.archs.size_multiple`) and validated again (the tile must fit the new unit); ``self``
        when it holds an integer. Errors are :class:`OptionError` naming ``key``."""
        if self.size_multiple != 'auto':
            return self
        from .archs import size_multiple  # the registered architectures (BasicSR), only when a network is at hand
        try:
            multiple = size_multiple(net)
        except ValueError as error:
            raise OptionError(f'{key}.size_multiple: {error}') from error
        return self.with_size_multiple(multiple, key)

    def with_size_multiple(self, multiple: int, key: str = 'amsnet') -> 'SchemeConfig':
        """This config with ``size_multiple`` set to ``multiple``, validated again; errors name ``key``."""
        return type(self).from_section({**{item.name: getattr(self, item.name) for item in fields(self)},
                                        'size_multiple': multiple}, key)

    def _multiple(self):
        if self.size_multiple == 'auto':
            raise ValueError('amsnet.size_multiple is auto: resolve it against the network first '
                             '(SchemeConfig.resolved(net))')
        return self.size_multiple

    @property
    def inference_stride(self) -> int:
        """The PD stride inference runs at: ``test_stride``, or 1 for a single-pass denoiser (no PD)."""
        return 1 if self.single_pass else self.test_stride

    def chunk_kwargs(self, device_type: str = 'cpu') -> dict[str, Any]:
        """``chunk_size`` / ``chunk_pixels`` of the scheme's functions on a device of ``device_type`` (``auto``: the
        pixel budget :data:`CHUNK_PIXELS` of that device type)."""
        if self.chunk_size == 'auto':
            return dict(chunk_size=None, chunk_pixels=CHUNK_PIXELS.get(device_type, CHUNK_PIXELS['cuda']))
        return dict(chunk_size=self.chunk_size, chunk_pixels=None)

    def inference_kwargs(self, device_type: str = 'cpu') -> dict[str, Any]:
        """Keyword arguments of :func:`amsnet_basicsr.tiling.denoise_image` (all but the mask source) for inference
        on a device of ``device_type``."""
        if self.single_pass:
            return dict(single_pass=True, self_ensemble=self.self_ensemble, stride=1, multiple=self._multiple(),
                        **self.chunk_kwargs(device_type), tile_size=self.tile.size, overlap=self.tile.overlap,
                        tile_batch=self.tile.batch)
        return dict(self_ensemble=self.self_ensemble, stride=self.test_stride, num_branches=self.num_branches,
                    masks_per_pixel=self.masks_per_pixel, multiple=self._multiple(), **self.chunk_kwargs(device_type),
                    refine_times=self.r3.times if self.r3.enabled else 0, refine_prob=self.r3.prob,
                    tile_size=self.tile.size, overlap=self.tile.overlap, tile_batch=self.tile.batch)
