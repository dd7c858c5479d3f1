// Per-pixel rasterization math shared by the kernels (and host-side checks).
#pragma once
#include "../common/common.h"

namespace nvdrec {

// Barycentrics, depth and derivatives of one pixel for clip vertices v[3][4]; templated
// so the backward pass can evaluate it on dual numbers.
template <class T>
NVDREC_HD void raster_eval(const T (&v)[3][4], float px, float py, float sx, float sy, T out[7],
                           bool& inside) {
  // r1 = x - px w, r2 = y - py w (over the three vertices); lam = r1 x r2
  T r1[3], r2[3];
  for (int i = 0; i < 3; ++i) {
    r1[i] = v[i][0] - v[i][3] * px;
    r2[i] = v[i][1] - v[i][3] * py;
  }
  T lam[3] = {r1[1] * r2[2] - r1[2] * r2[1], r1[2] * r2[0] - r1[0] * r2[2], r1[0] * r2[1] - r1[1] * r2[0]};
  // d lam / d px = -(w x r2), d lam / d py = -(r1 x w)
  T w[3] = {v[0][3], v[1][3], v[2][3]};
  T lx[3] = {r2[1] * w[2] - r2[2] * w[1], r2[2] * w[0] - r2[0] * w[2], r2[0] * w[1] - r2[1] * w[0]};
  T ly[3] = {w[1] * r1[2] - w[2] * r1[1], w[2] * r1[0] - w[0] * r1[2], w[0] * r1[1] - w[1] * r1[0]};
  T s = lam[0] + lam[1] + lam[2];
  inside = fabsf(value(s)) > 1e-30f;
  if (!inside) s = T(1.f);
  T b0 = lam[0] / s, b1 = lam[1] / s, b2 = lam[2] / s;
  T wp = b0 * v[0][3] + b1 * v[1][3] + b2 * v[2][3];
  T zp = b0 * v[0][2] + b1 * v[1][2] + b2 * v[2][2];
  float wv = value(wp);
  T depth = zp / (wv > 0.f ? wp : T(1.f));
  float dv = value(depth);
  inside = inside && value(b0) >= 0.f && value(b1) >= 0.f && value(b2) >= 0.f && wv > 0.f && dv >= -1.f &&
           dv <= 1.f;
  T sx_sum = lx[0] + lx[1] + lx[2];
  T sy_sum = ly[0] + ly[1] + ly[2];
  T s2 = s * s;
  out[0] = b0;
  out[1] = b1;
  out[2] = depth;
  out[3] = (lx[0] * s - lam[0] * sx_sum) / s2 * sx;  // du/dX
  out[4] = (ly[0] * s - lam[0] * sy_sum) / s2 * sy;  // du/dY
  out[5] = (lx[1] * s - lam[1] * sx_sum) / s2 * sx;  // dv/dX
  out[6] = (ly[1] * s - lam[1] * sy_sum) / s2 * sy;  // dv/dY
}

// Hand-derived backward of raster_eval for value type float: accumulates into gv the
// gradient of sum(go[o] * out[o]) with respect to the 12 clip coordinates v[i][k].
NVDREC_HD void raster_eval_grad(const float (&v)[3][4], float px, float py, float sx, float sy,
                                const float go[7], float gv[3][4]) {
  float r1[3], r2[3], w[3], z[3];
  for (int i = 0; i < 3; ++i) {
    w[i] = v[i][3];
    z[i] = v[i][2];
    r1[i] = v[i][0] - w[i] * px;
    r2[i] = v[i][1] - w[i] * py;
  }
  auto cross = [](const float* a, const float* b, float* c) {
    c[0] = a[1] * b[2] - a[2] * b[1];
    c[1] = a[2] * b[0] - a[0] * b[2];
    c[2] = a[0] * b[1] - a[1] * b[0];
  };
  float lam[3], lx[3], ly[3];
  cross(r1, r2, lam);
  cross(r2, w, lx);  // d lam / d px
  cross(w, r1, ly);  // d lam / d py
  float S = lam[0] + lam[1] + lam[2];
  if (!(fabsf(S) > 1e-30f)) S = 1.f;
  float Sx = lx[0] + lx[1] + lx[2], Sy = ly[0] + ly[1] + ly[2];
  float iS = 1.f / S, iS2 = iS * iS, iS3 = iS2 * iS;
  float b[3] = {lam[0] * iS, lam[1] * iS, lam[2] * iS};
  float lw = lam[0] * w[0] + lam[1] * w[1] + lam[2] * w[2];
  float lz = lam[0] * z[0] + lam[1] * z[1] + lam[2] * z[2];
  if (!(lw > 0.f || lw < 0.f)) lw = 1.f;
  float depth = lz / lw;
  float gl[3] = {0.f, 0.f, 0.f}, glx[3] = {0.f, 0.f, 0.f}, gly[3] = {0.f, 0.f, 0.f};
  // barycentrics u = b0, v = b1
  float gb[3] = {go[0], go[1], 0.f};
  float gbb = gb[0] * b[0] + gb[1] * b[1];
  for (int k = 0; k < 3; ++k) gl[k] += (gb[k] - gbb) * iS;
  // depth = (lam . z) / (lam . w)
  for (int k = 0; k < 3; ++k) gl[k] += go[2] * (z[k] - depth * w[k]) / lw;
  // derivatives D = l_j / S - lam_j Sl / S^2 (times the pixel size), j = 0 (u), 1 (v)
  float gx[2] = {go[3] * sx, go[5] * sx}, gy[2] = {go[4] * sy, go[6] * sy};
  for (int j = 0; j < 2; ++j) {
    for (int k = 0; k < 3; ++k) {
      glx[k] += gx[j] * ((j == k ? iS : 0.f) - lam[j] * iS2);
      gly[k] += gy[j] * ((j == k ? iS : 0.f) - lam[j] * iS2);
      gl[k] +=
          gx[j] * (-lx[j] * iS2 + 2.f * lam[j] * Sx * iS3) + gy[j] * (-ly[j] * iS2 + 2.f * lam[j] * Sy * iS3);
    }
    gl[j] -= gx[j] * Sx * iS2 + gy[j] * Sy * iS2;
  }
  // back through the cross products
  float gr1[3], gr2[3], gw[3], t[3];
  cross(r2, gl, gr1);  // lam = r1 x r2
  cross(gl, r1, gr2);
  cross(w, glx, t);  // lx = r2 x w
  for (int i = 0; i < 3; ++i) gr2[i] += t[i];
  cross(glx, r2, gw);
  cross(r1, gly, t);  // ly = w x r1
  for (int i = 0; i < 3; ++i) gw[i] += t[i];
  cross(gly, w, t);
  for (int i = 0; i < 3; ++i) gr1[i] += t[i];
  for (int i = 0; i < 3; ++i) {
    gv[i][0] += gr1[i];
    gv[i][1] += gr2[i];
    gv[i][2] += go[2] * lam[i] / lw;
    gv[i][3] += gw[i] - px * gr1[i] - py * gr2[i] - go[2] * depth * lam[i] / lw;
  }
}

}  // namespace nvdrec
