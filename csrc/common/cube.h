// Cube-map addressing shared by the texture and shading kernels: direction <-> face
// coordinates (OpenGL table, docs/conventions.md) and bilinear taps that continue across
// face edges onto the neighbouring face.
#pragma once
#include "common.h"

namespace nvdrec {

template <int N>
NVDREC_HD Dual<N> dabs(const Dual<N>& a) {
  return a.v < 0.f ? -a : a;
}
NVDREC_HD float dabs(float a) {
  return fabsf(a);
}

// Direction -> face (+X,-X,+Y,-Y,+Z,-Z) and s, t in [0, 1]. T is float or a Dual number
// (the derivative of s, t with respect to the direction).
template <class T>
NVDREC_HD int dir_to_face(const T& x, const T& y, const T& z, T& s, T& t) {
  float ax = fabsf(value(x)), ay = fabsf(value(y)), az = fabsf(value(z));
  int face;
  T sc, tc, ma;
  if (ax >= ay && ax >= az) {
    face = value(x) >= 0.f ? 0 : 1;
    sc = face == 0 ? -z : z;
    tc = -y;
    ma = dabs(x);
  } else if (ay >= az) {
    face = value(y) >= 0.f ? 2 : 3;
    sc = x;
    tc = face == 2 ? z : -z;
    ma = dabs(y);
  } else {
    face = value(z) >= 0.f ? 4 : 5;
    sc = face == 4 ? x : -x;
    tc = -y;
    ma = dabs(z);
  }
  if (value(ma) < 1e-20f) ma = T(1e-20f);
  s = (sc / ma + 1.f) * 0.5f;
  t = (tc / ma + 1.f) * 0.5f;
  return face;
}

NVDREC_D void face_to_dir(int face, float sc, float tc, float& x, float& y, float& z) {
  switch (face) {
    case 0:
      x = 1.f, y = -tc, z = -sc;
      break;
    case 1:
      x = -1.f, y = -tc, z = sc;
      break;
    case 2:
      x = sc, y = 1.f, z = tc;
      break;
    case 3:
      x = sc, y = -1.f, z = -tc;
      break;
    case 4:
      x = sc, y = -tc, z = 1.f;
      break;
    default:
      x = -sc, y = -tc, z = -1.f;
      break;
  }
}

// Texel (row i, column j) of face `face` on an n x n level, where i or j may lie one
// texel beyond the face: such a tap continues on the neighbouring face (the texel whose
// area holds the direction of the tap's centre on the extended face plane). Returns the
// texel index within the level (face-major).
NVDREC_D int cube_texel(int face, int i, int j, int n) {
  if (i < 0 || i >= n || j < 0 || j >= n) {
    float sc = (j + 0.5f) / n * 2.f - 1.f, tc = (i + 0.5f) / n * 2.f - 1.f;
    float dx, dy, dz, s2, t2;
    face_to_dir(face, sc, tc, dx, dy, dz);
    face = dir_to_face<float>(dx, dy, dz, s2, t2);
    j = min(max((int)floorf(s2 * n), 0), n - 1);
    i = min(max((int)floorf(t2 * n), 0), n - 1);
  }
  return (face * n + i) * n + j;
}

// Gradient of the face coordinates (s, t) of a lookup direction: g_dir = gs ds/dd + gt dt/dd.
NVDREC_D void cube_coord_grad(const float* dir, float gs, float gt, float* g_dir) {
  Dual<3> d[3] = {Dual<3>::var(dir[0], 0), Dual<3>::var(dir[1], 1), Dual<3>::var(dir[2], 2)};
  Dual<3> s, t;
  dir_to_face<Dual<3>>(d[0], d[1], d[2], s, t);
#pragma unroll
  for (int j = 0; j < 3; ++j) g_dir[j] = gs * s.d[j] + gt * t.d[j];
}

}  // namespace nvdrec
