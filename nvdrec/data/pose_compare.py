"""Camera poses against reference poses: a least-squares similarity alignment and the
rotation and centre errors after it (``bench/poses_eval.py``, the tests of
``nvdrec poses``)."""

from __future__ import annotations

import numpy as np

__all__ = ["compare_poses", "similarity_align"]


def similarity_align(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, R, t) minimising sum |s R src_i + t - dst_i|^2 over points [N, 3] (Umeyama's
    least-squares similarity, no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    e = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[2, 2] = -1
    r = u @ e @ vt
    var = (a**2).sum() / len(src)
    s = float(np.trace(np.diag(d) @ e) / var) if var > 0 else 1.0
    return s, r, mu_d - s * r @ mu_s


def compare_poses(c2w_est: np.ndarray, c2w_ref: np.ndarray, target=None) -> dict:
    """Camera poses [N, 4, 4] (camera-to-world, same cameras in the same order) after a
    similarity alignment of the estimated centres to the reference ones: median and max
    rotation error (degrees) and centre error relative to the median distance from the
    cameras to ``target`` (default: the point closest to all optical axes)."""
    import torch

    from .llff import axes_focus_point

    c_est, c_ref = c2w_est[:, :3, 3], c2w_ref[:, :3, 3]
    s, r, t = similarity_align(c_est, c_ref)
    aligned = (s * (r @ c_est.T)).T + t
    if target is None:
        ref = torch.from_numpy(np.ascontiguousarray(c2w_ref, dtype=np.float64))
        target = axes_focus_point(ref[:, :3, 3], -ref[:, :3, 2]).numpy()
    dist = np.median(np.linalg.norm(c_ref - target, axis=-1))
    centre_err = np.linalg.norm(aligned - c_ref, axis=-1) / dist
    rel = np.einsum("nji,njk->nik", c2w_ref[:, :3, :3], r @ c2w_est[:, :3, :3])  # R_ref^T R
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)
    rot_err = np.degrees(np.arccos(cos))
    return {
        "rotation_median_deg": float(np.median(rot_err)),
        "rotation_max_deg": float(rot_err.max()),
        "centre_median_rel": float(np.median(centre_err)),
        "centre_max_rel": float(centre_err.max()),
        "scale": s,
    }
