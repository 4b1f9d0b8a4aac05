"""People in a ceiling depth camera's frames by point-cloud clustering (issue 5's depth pipeline).

depth image -> point cloud in `map` (the camera's intrinsics and its pose from the layout) -> floor
removal (the layout's floor z = 0, or a RANSAC plane fitted to the low points when `fit_floor`) ->
shelf removal (points inside the gondola boxes) -> voxel grid -> DBSCAN -> per cluster, heads = the
highest points at least `head_sep_m` apart (two shoppers shoulder to shoulder make one cluster but
two heads) -> one Detection per head: its position, and its height as the person's height.

Two backends give the same pipeline: `open3d` (PointCloud.create_from_depth_image, segment_plane,
voxel_down_sample, cluster_dbscan) when that package is importable, and `scipy` (numpy geometry,
cKDTree neighbours, connected components of the core points), which is what runs by default
(open3d is not in requirements.txt: docs/vision.md says why). `backend="auto"` takes open3d if it
imports. Deterministic for a given frame either way (the RANSAC has a fixed seed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from storefuse_core.vision import Detection
from storefuse_core.vision.camera import PinholeCamera, gondola_boxes

BACKENDS = ("auto", "open3d", "scipy")


def open3d_available() -> bool:
    try:
        import open3d  # noqa: F401
    except (ImportError, OSError):      # OSError: a wheel whose system libraries are missing (libusb)
        return False
    return True


@dataclass
class DepthClusterParams:
    step: int = 2                  # pixel subsampling
    floor_m: float = 0.3           # points this close to the floor are floor (and feet)
    fit_floor: bool = False        # fit the floor plane (RANSAC) instead of trusting the layout's z = 0
    max_z_m: float = 2.4
    shelf_margin_m: float = 0.05   # points inside gondola boxes grown by this are shelves
    voxel_m: float = 0.04
    eps_m: float = 0.1             # DBSCAN neighbourhood ...
    z_scale: float = 0.25          # ... with heights squashed by this: a head joins its body across the neck
    min_points: int = 6            # DBSCAN core point: this many neighbours (itself included)
    min_cluster_points: int = 25   # smaller clusters are noise (a hand above a shelf, a bag)
    min_head_m: float = 1.0        # a head is above this ...
    head_drop_m: float = 0.45      # ... and at most this far below its cluster's top (not a reaching arm)
    head_sep_m: float = 0.35       # two heads are at least this far apart
    head_band_m: float = 0.12      # points this close below the head's top are the head
    pos_sd_m: float = 0.08
    backend: str = "auto"


class ClusterDepthDetector:
    """DepthPersonDetector's interface (`detect(depth_mm, stamp_ns)`), by clustering the point cloud."""

    def __init__(self, camera: PinholeCamera, store, params: DepthClusterParams | None = None):
        self.camera, self.store = camera, store
        self.params = p = params or DepthClusterParams()
        if p.backend not in BACKENDS:
            raise ValueError(f"depth backend {p.backend!r}: one of {', '.join(BACKENDS)}")
        self.backend = ("open3d" if open3d_available() else "scipy") if p.backend == "auto" else p.backend
        if self.backend == "open3d" and not open3d_available():
            raise ValueError("depth backend 'open3d': the open3d package is not importable here")
        vv, uu = np.mgrid[0:camera.height:p.step, 0:camera.width:p.step]
        self._idx = (vv, uu)
        self._rays = camera.rays(np.stack([uu.ravel() + 0.0, vv.ravel() + 0.0], axis=1))
        self._boxes = [(store.gondolas[gid], h) for gid, _, _, h in gondola_boxes(store)]
        self.floor_plane = np.array([0.0, 0.0, 1.0, 0.0])     # a x + b y + c z + d = 0 (last fitted)

    # --- stages ------------------------------------------------------------------------------
    def cloud(self, depth_mm: np.ndarray) -> np.ndarray:
        """Map points (N, 3) of the valid pixels (every `step`-th), nothing removed."""
        if self.backend == "open3d":
            return self._cloud_open3d(depth_mm)
        d = depth_mm[self._idx].ravel().astype(np.float64) / 1000.0
        ok = d > 0
        return self.camera.position + d[ok, None] * self._rays[ok]

    def _cloud_open3d(self, depth_mm: np.ndarray) -> np.ndarray:
        import open3d as o3d
        cam, p = self.camera, self.params
        intr = o3d.camera.PinholeCameraIntrinsic(cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy)
        extr = np.eye(4)                                # map -> optical frame
        extr[:3, :3] = cam.R.T
        extr[:3, 3] = -cam.R.T @ cam.position
        pcd = o3d.geometry.PointCloud.create_from_depth_image(
            o3d.geometry.Image(np.ascontiguousarray(depth_mm, dtype=np.uint16)), intr, extr, depth_scale=1000.0,
            depth_trunc=1e3, stride=p.step)
        return np.asarray(pcd.points)

    def remove_floor_and_shelves(self, pts: np.ndarray) -> np.ndarray:
        p = self.params
        if p.fit_floor:
            self.floor_plane = self._fit_floor(pts)
        height = pts @ self.floor_plane[:3] + self.floor_plane[3]     # above the floor plane
        keep = (height > p.floor_m) & (pts[:, 2] < p.max_z_m)
        m = p.shelf_margin_m
        for g, h in self._boxes:
            c, s = math.cos(g.yaw), math.sin(g.yaw)
            dx, dy = pts[:, 0] - g.x, pts[:, 1] - g.y
            a, b = dx * c + dy * s, -dx * s + dy * c
            keep &= ~((np.abs(a) <= g.length_m / 2 + m) & (np.abs(b) <= g.depth_m / 2 + m) & (pts[:, 2] <= h + m))
        return pts[keep]

    def _fit_floor(self, pts: np.ndarray) -> np.ndarray:
        """The floor plane (unit normal up) by RANSAC on the points within 0.5 m of the layout's floor
        (a camera mounted a little higher or lower, or tilted, than the layout says)."""
        low = pts[np.abs(pts[:, 2]) < 0.5]
        if len(low) < 50:
            return np.array([0.0, 0.0, 1.0, 0.0])
        if self.backend == "open3d":
            import open3d as o3d
            o3d.utility.random.seed(0)
            pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(low))
            plane, _ = pcd.segment_plane(distance_threshold=0.02, ransac_n=3, num_iterations=100)
            plane = np.asarray(plane, dtype=float)
        else:
            rng = np.random.default_rng(0)
            if len(low) > 1000:              # a sample is plenty for a plane; keeps RANSAC in milliseconds
                low = low[rng.choice(len(low), 1000, replace=False)]
            tri = low[rng.integers(0, len(low), (100, 3))]           # 100 hypotheses at once
            n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            norm = np.linalg.norm(n, axis=1)
            ok = norm > 1e-9
            if not ok.any():
                return np.array([0.0, 0.0, 1.0, 0.0])
            n, a = n[ok] / norm[ok, None], tri[ok, 0]
            d = -np.einsum("ij,ij->i", n, a)
            inliers = (np.abs(low @ n.T + d) < 0.02).sum(axis=0)
            best = int(np.argmax(inliers))
            plane = np.array([*n[best], d[best]])
        plane = plane / np.linalg.norm(plane[:3])
        return plane if plane[2] > 0 else -plane

    def voxels(self, pts: np.ndarray) -> np.ndarray:
        """One point per occupied voxel (the mean of its points)."""
        if len(pts) == 0:
            return pts
        if self.backend == "open3d":
            import open3d as o3d
            pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
            return np.asarray(pcd.voxel_down_sample(self.params.voxel_m).points)
        key = np.floor(pts / self.params.voxel_m).astype(np.int64)
        _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        sums = np.zeros((len(counts), 3))
        np.add.at(sums, inv.ravel(), pts)
        return sums / counts[:, None]

    def clusters(self, pts: np.ndarray) -> np.ndarray:
        """DBSCAN labels (-1 = noise) of the points (heights scaled by z_scale)."""
        p = self.params
        if len(pts) == 0:
            return np.zeros(0, int)
        pts = pts * [1.0, 1.0, p.z_scale]
        if self.backend == "open3d":
            import open3d as o3d
            pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
            return np.asarray(pcd.cluster_dbscan(p.eps_m, p.min_points, print_progress=False))
        return dbscan(pts, p.eps_m, p.min_points)

    def heads(self, cluster: np.ndarray) -> list[tuple[float, float, float]]:
        """(x, y, top z) of each head in one cluster: local height maxima (nothing higher within
        head_sep_m: not a shoulder or a reaching arm), near the cluster's top, head_sep_m apart."""
        from scipy.spatial import cKDTree
        p = self.params
        floor_z = max(p.min_head_m, float(cluster[:, 2].max()) - p.head_drop_m)
        high = cluster[cluster[:, 2] > floor_z]
        tree = cKDTree(cluster[:, :2])
        out: list[tuple[float, float, float]] = []
        for x, y, z in high[np.argsort(-high[:, 2], kind="stable")]:
            if any(math.hypot(x - hx, y - hy) < p.head_sep_m for hx, hy, _ in out):
                continue
            near = cluster[tree.query_ball_point((x, y), p.head_sep_m)]
            if near[:, 2].max() > z:
                continue                                    # a higher point close by: not a top
            band = near[(near[:, 2] > z - p.head_band_m) & (np.hypot(near[:, 0] - x, near[:, 1] - y)
                                                           < p.head_sep_m / 2)]
            out.append((float(band[:, 0].mean()), float(band[:, 1].mean()), float(z)))
        return out

    def detect(self, depth_mm: np.ndarray, stamp_ns: int = 0) -> list[Detection]:
        p = self.params
        pts = self.voxels(self.remove_floor_and_shelves(self.cloud(depth_mm)))
        labels = self.clusters(pts)
        out = []
        sd2 = p.pos_sd_m ** 2
        cov = (sd2, 0.0, 0.0, 0.0, sd2, 0.0, 0.0, 0.0, 0.05 ** 2)
        for k in range(int(labels.max()) + 1 if len(labels) else 0):
            cluster = pts[labels == k]
            if len(cluster) < p.min_cluster_points:
                continue
            for x, y, z in self.heads(cluster):
                height = float(np.dot(self.floor_plane[:3], (x, y, z)) + self.floor_plane[3])   # above the floor
                out.append(Detection(x, y, 0.0, cov, float(min(1.0, len(cluster) / 150.0)), np.zeros(0, np.float32),
                                     height, None, None, self.camera.id, int(stamp_ns)))
        return out


def dbscan(points: np.ndarray, eps: float, min_points: int) -> np.ndarray:
    """DBSCAN labels (-1 noise), clusters numbered in order of their first point; a border point
    joins the cluster of its nearest core neighbour. Neighbourhoods count the point itself, as
    open3d's cluster_dbscan does."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree
    n = len(points)
    tree = cKDTree(points)
    pairs = tree.query_pairs(eps, output_type="ndarray")
    core = np.bincount(pairs.ravel(), minlength=n) + 1 >= min_points
    both = pairs[core[pairs[:, 0]] & core[pairs[:, 1]]]
    graph = coo_matrix((np.ones(len(both)), (both[:, 0], both[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    labels = np.where(core, comp, -1)
    border = ~core & (np.bincount(pairs.ravel(), minlength=n) > 0)
    if border.any():
        core_idx = np.nonzero(core)[0]
        if len(core_idx):
            dist, j = cKDTree(points[core_idx]).query(points[border], distance_upper_bound=eps)
            ok = np.isfinite(dist)
            labels[np.nonzero(border)[0][ok]] = labels[core_idx[j[ok]]]
    out = np.full(n, -1)
    kept = labels >= 0
    _, first, inv = np.unique(labels[kept], return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(np.nonzero(kept)[0][first]))      # number clusters by first point
    out[kept] = order[inv.ravel()]
    return out


__all__ = ["BACKENDS", "ClusterDepthDetector", "DepthClusterParams", "dbscan", "open3d_available"]
