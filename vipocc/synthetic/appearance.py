"""Deterministic procedural appearance of the synthetic world.

Albedo is a function of the WORLD point (and the solid's local texture frame, see Scene.frame_origin/frame_axes),
never of the viewing ray, so a surface point has the same colour in every camera (photometric losses rely on it).
Shading is Lambertian with a fixed sun plus ambient light; there are no cast shadows.

Textures are hash-based 3D value noise (fBm over several octaves) plus per-material patterns: asphalt with lane
markings, sidewalk tiles, a facade colour per building with a window grid, car paint per instance with dark windows
and tyres, bark, foliage, grey poles, grass. Every pattern is band-limited to wavelengths >= ~0.2 m (the finest
noise octave is 0.2 m, pattern edges are smoothstep ramps ~0.1 m wide) so that quarter-resolution images do not
alias badly.

Colours are linear RGB floats in [0, 1].
"""
from __future__ import annotations

import numpy as np

from vipocc.synthetic.raycast import Hits
from vipocc.synthetic.scene import Material, Scene

SUN_ELEVATION_RAD = np.deg2rad(45.0)
SUN_AZIMUTH_RAD = np.deg2rad(30.0)
#: Unit vector from a surface point towards the sun (world frame, z up).
SUN_DIRECTION = np.array([np.cos(SUN_ELEVATION_RAD) * np.cos(SUN_AZIMUTH_RAD),
                          np.cos(SUN_ELEVATION_RAD) * np.sin(SUN_AZIMUTH_RAD), np.sin(SUN_ELEVATION_RAD)])
AMBIENT = 0.35
DIFFUSE = 0.65

SKY_HORIZON = np.array([0.80, 0.86, 0.93])
SKY_ZENITH = np.array([0.30, 0.50, 0.85])
SKY_BELOW_HORIZON = np.array([0.70, 0.74, 0.78])

MIN_WAVELENGTH_M = 0.2
DEFAULT_LANE_HALF_M = 3.75
_EDGE_SOFTNESS_M = 0.05  # half-width of the smoothstep ramp of pattern edges

_FACADE_PALETTE = np.array([[0.85, 0.82, 0.74], [0.78, 0.70, 0.58], [0.70, 0.45, 0.35], [0.62, 0.64, 0.66],
                            [0.88, 0.86, 0.80], [0.66, 0.58, 0.48], [0.80, 0.74, 0.60], [0.55, 0.52, 0.50]])
_PAINT_PALETTE = np.array([[0.88, 0.88, 0.90], [0.08, 0.08, 0.09], [0.62, 0.64, 0.67], [0.32, 0.33, 0.35],
                           [0.62, 0.10, 0.10], [0.12, 0.22, 0.50], [0.14, 0.30, 0.20], [0.76, 0.70, 0.56]])
_GLASS = np.array([0.09, 0.10, 0.12])
_TYRE = np.array([0.06, 0.06, 0.06])

# splitmix64 / large odd constants for the integer hash
_K = [np.uint64(c) for c in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                             0xBF58476D1CE4E5B9, 0x94D049BB133111EB)]


# --------------------------------------------------------------------------------------------------- noise
def _as_u64(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)


def hash01(*keys: np.ndarray, seed: int = 0) -> np.ndarray:
    """Deterministic hash of integer arrays (broadcast together) to floats in [0, 1)."""
    start = np.uint64((int(seed) * int(_K[3])) % (1 << 64))  # Python ints: numpy scalars warn on wrap-around
    h = np.full(np.broadcast_shapes(*(np.shape(k) for k in keys)), start, dtype=np.uint64)
    for key, mult in zip(keys, _K[:3] * (len(keys) // 3 + 1)):
        h = (h ^ (_as_u64(np.broadcast_to(key, h.shape)) * mult)) * _K[4]
        h ^= h >> np.uint64(29)
    h ^= h >> np.uint64(30)
    h *= _K[4]
    h ^= h >> np.uint64(27)
    h *= _K[5]
    h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0 ** 53)


_LATTICE_SIZE = 1 << 12  # the noise repeats every 4096 lattice cells (>= 819 m at the finest 0.2 m octave)
_LATTICE_RNG = np.random.default_rng(0x5EED)
_LATTICE_PERM = _LATTICE_RNG.permutation(_LATTICE_SIZE).astype(np.int64)
_LATTICE_VALUES = _LATTICE_RNG.random(_LATTICE_SIZE)


def lattice_hash(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int = 0) -> np.ndarray:
    """Random value in [0, 1) per integer lattice point, by nested permutation lookups (Perlin's trick): a few
    gathers instead of a 64-bit integer mix per key, which keeps texturing cheap enough for every pixel."""
    h = _LATTICE_PERM[(ix + 1013 * seed) & (_LATTICE_SIZE - 1)]
    h = _LATTICE_PERM[(h + iy) & (_LATTICE_SIZE - 1)]
    return _LATTICE_VALUES[_LATTICE_PERM[(h + iz) & (_LATTICE_SIZE - 1)]]


def value_noise(points: np.ndarray, wavelength: float, seed: int = 0) -> np.ndarray:
    """3D value noise [N] in [0, 1] at points [N, 3] (m): random values on a lattice of spacing `wavelength`,
    interpolated with the quintic fade (C2-smooth)."""
    q = np.asarray(points, np.float64) / wavelength
    base = np.floor(q)
    f = q - base
    w = f * f * f * (f * (f * 6.0 - 15.0) + 10.0)
    ix, iy, iz = base.astype(np.int64).T
    wx, wy, wz = w.T
    mask = _LATTICE_SIZE - 1
    # Corner values: share the partial permutation lookups of the x and y stages between corners.
    hx = [_LATTICE_PERM[(ix + dx + 1013 * seed) & mask] for dx in (0, 1)]
    hxy = {(dx, dy): _LATTICE_PERM[(hx[dx] + iy + dy) & mask] for dx in (0, 1) for dy in (0, 1)}
    c = {(dx, dy, dz): _LATTICE_VALUES[_LATTICE_PERM[(hxy[dx, dy] + iz + dz) & mask]]
         for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)}
    # Trilinear blend of the 8 corner values, as nested lerps along x, then y, then z.
    x00 = c[0, 0, 0] + wx * (c[1, 0, 0] - c[0, 0, 0])
    x10 = c[0, 1, 0] + wx * (c[1, 1, 0] - c[0, 1, 0])
    x01 = c[0, 0, 1] + wx * (c[1, 0, 1] - c[0, 0, 1])
    x11 = c[0, 1, 1] + wx * (c[1, 1, 1] - c[0, 1, 1])
    y0 = x00 + wy * (x10 - x00)
    y1 = x01 + wy * (x11 - x01)
    return y0 + wz * (y1 - y0)


def fbm(points: np.ndarray, wavelengths: tuple[float, ...], seed: int = 0) -> np.ndarray:
    """Mean of value-noise octaves [N] in [0, 1]: a flat spectrum down to the shortest wavelength, so the fine
    octaves carry as much contrast as the coarse ones (image gradients for photometric losses)."""
    if min(wavelengths) < MIN_WAVELENGTH_M - 1e-12:
        raise ValueError(f"fbm: wavelengths must be >= {MIN_WAVELENGTH_M} m (band limit), got {wavelengths}")
    return sum(value_noise(points, lam, seed + 7919 * k) for k, lam in enumerate(wavelengths)) / len(wavelengths)


def _band(x: np.ndarray, half_width: float) -> np.ndarray:
    """Soft indicator of |x| <= half_width with smoothstep edges of half-width _EDGE_SOFTNESS_M."""
    e0, e1 = half_width - _EDGE_SOFTNESS_M, half_width + _EDGE_SOFTNESS_M
    t = np.clip((np.abs(x) - e0) / (e1 - e0), 0.0, 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t)


def _bump(x: np.ndarray, width: float) -> np.ndarray:
    """Raised-cosine bump of total width `width` centred at 0 (a thin line without sub-width-scale edges)."""
    return np.where(np.abs(x) < width / 2.0, np.cos(np.pi * x / width) ** 2, 0.0)


def _periodic(x: np.ndarray, period: float) -> np.ndarray:
    """x folded into [-period/2, period/2)."""
    return (x + period / 2.0) % period - period / 2.0


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t[:, None]


# --------------------------------------------------------------------------------------------------- materials
def _asphalt(p: np.ndarray, local: np.ndarray, normal: np.ndarray, lane_half: float, ids: np.ndarray) -> np.ndarray:
    grey = 0.18 + 0.26 * fbm(p, (1.6, 0.8, 0.4, 0.2), seed=11)
    rgb = grey[:, None] * np.array([1.0, 1.0, 1.04])
    s, lateral = local[:, 0], local[:, 1]
    dashes = _band(lateral, 0.075) * _band(_periodic(s, 9.0), 1.5)           # centre line: 3 m dash, 6 m gap
    edges = _band(np.abs(lateral) - lane_half, 0.075)                          # solid lane edge lines
    paint = np.clip(dashes + edges, 0.0, 1.0) * (np.abs(normal[:, 2]) > 0.5)   # only on the top surface
    return _mix(rgb, np.full_like(rgb, 0.82), paint)


def _sidewalk(p: np.ndarray, local: np.ndarray, normal: np.ndarray, lane_half: float, ids: np.ndarray) -> np.ndarray:
    tile = 0.6
    # Slabs differ in brightness through smooth noise at the tile scale (a per-tile constant would make sharp steps).
    jitter = 0.08 * (value_noise(p, tile, seed=23) - 0.5)
    seam = np.maximum(_bump(_periodic(local[:, 0], tile), 0.2), _bump(_periodic(local[:, 1], tile), 0.2))
    seam *= np.abs(normal[:, 2]) > 0.5  # the curb face has no tiles
    grey = 0.58 + jitter + 0.10 * (fbm(p, (0.8, 0.4, 0.2), seed=29) - 0.5) - 0.20 * seam
    return grey[:, None] * np.array([1.03, 1.0, 0.95])


def _facade(p: np.ndarray, local: np.ndarray, normal: np.ndarray, lane_half: float, ids: np.ndarray) -> np.ndarray:
    pick = (hash01(ids, seed=31) * len(_FACADE_PALETTE)).astype(np.int64)
    base = _FACADE_PALETTE[pick] * (0.9 + 0.2 * hash01(ids, seed=37))[:, None]
    rgb = base * (0.85 + 0.3 * fbm(p, (2.0, 1.0, 0.5, 0.25), seed=41))[:, None]
    # Facade coordinate u runs along the wall: local x on the long faces, local y on the end faces.
    n_local = np.abs(normal)
    u = np.where(n_local[:, 1] >= n_local[:, 0], local[:, 0], local[:, 1])
    window = _band(_periodic(u - 1.3, 2.6), 0.6) * _band(_periodic(p[:, 2] - 1.0 - 0.75, 3.2), 0.75)
    window *= (np.abs(normal[:, 2]) < 0.5) & (p[:, 2] > 0.5)  # walls only, not the roof
    glass = _GLASS * (0.8 + 0.6 * value_noise(p, 1.0, seed=43))[:, None]
    roof = np.abs(normal[:, 2]) >= 0.5
    rgb = np.where(roof[:, None], base * 0.55, rgb)
    return _mix(rgb, glass, window)


def _paint(ids: np.ndarray) -> np.ndarray:
    pick = (hash01(ids, seed=53) * len(_PAINT_PALETTE)).astype(np.int64)
    return _PAINT_PALETTE[pick] * (0.92 + 0.16 * hash01(ids, seed=59))[:, None]


def _car_body(p: np.ndarray, local: np.ndarray, normal: np.ndarray, lane_half: float, ids: np.ndarray) -> np.ndarray:
    rgb = _paint(ids) * (0.95 + 0.1 * value_noise(p, 0.5, seed=61))[:, None]
    tyres = _band(local[:, 2], 0.3)  # dark band at the bottom (wheels, sills)
    return _mix(rgb, _TYRE[None].repeat(len(p), 0), tyres)


def _car_cabin(p: np.ndarray, local: np.ndarray, normal: np.ndarray, lane_half: float, ids: np.ndarray) -> np.ndarray:
    roof = (np.abs(normal[:, 2]) > 0.85)[:, None]
    glass = _GLASS * (0.8 + 0.5 * value_noise(p, 0.4, seed=67))[:, None]
    return np.where(roof, _paint(ids), glass)


def _bark(p: np.ndarray, local: np.ndarray, normal: np.ndarray, lane_half: float, ids: np.ndarray) -> np.ndarray:
    streaks = fbm(p * [1.0, 1.0, 0.25], (0.8, 0.4, 0.2), seed=71)  # stretched along z: vertical streaks
    return np.array([0.33, 0.24, 0.16]) * (0.6 + 0.8 * streaks)[:, None]


def _foliage(p: np.ndarray, local: np.ndarray, normal: np.ndarray, lane_half: float, ids: np.ndarray) -> np.ndarray:
    hue = hash01(ids, seed=73)[:, None]
    base = np.array([0.18, 0.36, 0.10]) * (1 - hue) + np.array([0.30, 0.42, 0.12]) * hue
    return base * (0.5 + 1.0 * fbm(p, (1.0, 0.5, 0.25), seed=79))[:, None]


def _pole(p: np.ndarray, local: np.ndarray, normal: np.ndarray, lane_half: float, ids: np.ndarray) -> np.ndarray:
    return np.array([0.50, 0.51, 0.53]) * (0.9 + 0.2 * value_noise(p, 0.5, seed=83))[:, None]


def _grass(p: np.ndarray, local: np.ndarray, normal: np.ndarray, lane_half: float, ids: np.ndarray) -> np.ndarray:
    patches = value_noise(p, 6.0, seed=89)
    base = _mix(np.tile([0.26, 0.42, 0.16], (len(p), 1)), np.tile([0.45, 0.46, 0.22], (len(p), 1)), patches)
    return base * (0.65 + 0.7 * fbm(p, (1.6, 0.8, 0.4, 0.2), seed=97))[:, None]


_MATERIALS = {Material.ASPHALT: _asphalt, Material.SIDEWALK: _sidewalk, Material.FACADE: _facade,
              Material.CAR_BODY: _car_body, Material.CAR_CABIN: _car_cabin, Material.BARK: _bark,
              Material.FOLIAGE: _foliage, Material.POLE: _pole, Material.GRASS: _grass}


# --------------------------------------------------------------------------------------------------- public API
def albedo(scene: Scene, solid: np.ndarray, points: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Albedo float64 [N, 3] in [0, 1] of surface points [N, 3] (world) on solids [N] (>= 0) with face normals
    [N, 3] (either orientation: only |components| matter, so the result does not depend on the viewing ray)."""
    solid = np.asarray(solid)
    points = np.asarray(points, np.float64)
    normal = np.asarray(normal, np.float64)
    out = np.zeros((len(solid), 3))
    if len(solid) == 0:
        return out
    local = np.einsum("nk,nkj->nj", points - scene.frame_origin[solid], scene.frame_axes[solid])
    normal_local = np.einsum("nk,nkj->nj", normal, scene.frame_axes[solid])
    material = scene.solid_material[solid]
    lane_half = float(scene.meta.get("street_lane_half_m", DEFAULT_LANE_HALF_M))
    for mat, fn in _MATERIALS.items():
        sel = np.flatnonzero(material == mat)
        if len(sel) == 0:
            continue
        # Cars are coloured per instance, everything else per object (e.g. one facade colour per building).
        ids = np.where(scene.solid_instance[solid[sel]] > 0, scene.solid_instance[solid[sel]],
                       scene.solid_object[solid[sel]])
        # Patterns that depend on wall orientation use the normal in the solid's local frame; others use world z.
        use_normal = normal_local[sel] if mat == Material.FACADE else normal[sel]
        out[sel] = fn(points[sel], local[sel], use_normal, lane_half, ids)
    return np.clip(out, 0.0, 1.0)


def sky_color(ray_dirs: np.ndarray) -> np.ndarray:
    """Sky colour float32 [N, 3] for unit ray directions [N, 3] (world): horizon-to-zenith gradient by elevation,
    a flat haze colour below the horizon."""
    dz = np.clip(np.asarray(ray_dirs, np.float64)[:, 2], -1.0, 1.0)
    t = (np.arcsin(np.clip(dz, 0.0, 1.0)) / (np.pi / 2)) ** 0.6
    rgb = _mix(np.tile(SKY_HORIZON, (len(dz), 1)), np.tile(SKY_ZENITH, (len(dz), 1)), t)
    return np.where((dz < 0)[:, None], SKY_BELOW_HORIZON, rgb).astype(np.float32)


def shade(scene: Scene, hits: Hits, ray_dirs: np.ndarray) -> np.ndarray:
    """Shaded colour float32 [N, 3] in [0, 1]: albedo * (AMBIENT + DIFFUSE * max(0, n . sun)), n facing the ray.
    Rays that missed get sky_color."""
    rgb = sky_color(ray_dirs).astype(np.float64)
    hit = np.flatnonzero(hits.solid >= 0)
    if len(hit):
        n = hits.normal[hit].astype(np.float64)
        light = AMBIENT + DIFFUSE * np.clip(n @ SUN_DIRECTION, 0.0, None)
        rgb[hit] = albedo(scene, hits.solid[hit], hits.points[hit], n) * light[:, None]
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def lidar_intensity(scene: Scene, hits: Hits, ray_dirs: np.ndarray) -> np.ndarray:
    """Lidar return intensity float32 [N] in [0, 1]: albedo luminance * |cos(incidence)|; 0 for misses."""
    out = np.zeros(len(hits.solid))
    hit = np.flatnonzero(hits.solid >= 0)
    if len(hit):
        n = hits.normal[hit].astype(np.float64)
        rgb = albedo(scene, hits.solid[hit], hits.points[hit], n)
        luminance = rgb @ np.array([0.2126, 0.7152, 0.0722])
        cos = np.abs(np.einsum("ij,ij->i", n, np.asarray(ray_dirs, np.float64)[hit]))
        out[hit] = luminance * cos
    return np.clip(out, 0.0, 1.0).astype(np.float32)


__all__ = ["shade", "sky_color", "lidar_intensity", "albedo", "value_noise", "fbm", "hash01", "lattice_hash", "SUN_DIRECTION",
           "AMBIENT", "DIFFUSE"]
