// Silhouette antialiasing kernels: one thread per pixel, handling the pairs it forms with
// its right and lower neighbours.
#include "../common/common.h"
#include "antialias.h"

namespace nvdrec {

NVDREC_D const float* aa_vertex(const AAParams& p, int b, int v) {
  return p.pos + ((p.instanced ? (long long)b * p.num_vert : 0LL) + v) * 4;
}

template <class T>
NVDREC_HD void to_screen(const T& x, const T& y, const T& w, float W, float H, T& sx, T& sy) {
  sx = (x / w + 1.f) * (0.5f * W);
  sy = (y / w + 1.f) * (0.5f * H);
}

// Screen vertices of triangle t in image b; false if a vertex is behind the camera.
NVDREC_D bool tri_screen(const AAParams& p, int b, int t, float sx[3], float sy[3]) {
  bool ok = true;
  for (int i = 0; i < 3; ++i) {
    const float* v = aa_vertex(p, b, p.tri[t * 3 + i]);
    ok = ok && v[3] > 0.f;
    float w = v[3] > 0.f ? v[3] : 1.f;
    to_screen<float>(v[0], v[1], w, (float)p.width, (float)p.height, sx[i], sy[i]);
  }
  return ok;
}

NVDREC_D float area_sign(const float sx[3], const float sy[3]) {
  float a = (sx[1] - sx[0]) * (sy[2] - sy[0]) - (sy[1] - sy[0]) * (sx[2] - sx[0]);
  return a > 0.f ? 1.f : (a < 0.f ? -1.f : 0.f);
}

// Crossing parameter of the edge (pa, pb) on the segment cf -> co (templated for duals).
template <class T>
NVDREC_HD T crossing(const T& pax, const T& pay, const T& pbx, const T& pby, float cfx, float cfy, float cox,
                     float coy, T& side_f, T& side_o, T& s_on_edge) {
  T dx = pbx - pax, dy = pby - pay;
  side_f = dx * (cfy - pay) - dy * (cfx - pax);
  side_o = dx * (coy - pay) - dy * (cox - pax);
  T t = side_f / (side_f - side_o);
  T ptx = (cox - cfx) * t + cfx, pty = (coy - cfy) * t + cfy;
  T dd = dx * dx + dy * dy;
  if (value(dd) < 1e-20f) dd = T(1e-20f);
  s_on_edge = ((ptx - pax) * dx + (pty - pay) * dy) / dd;
  return t;
}

struct PairHit {
  bool hit;
  long long pf, po;  // flat pixel indices of the front and other pixel
  int b, tf, k;      // image, front triangle, edge index
  float t;
  float cfx, cfy, cox, coy;
};

NVDREC_D PairHit find_pair(const AAParams& p, long long pa, int b, int y, int x, int axis) {
  PairHit h;
  h.hit = false;
  long long pb = axis == 0 ? pa + 1 : pa + p.width;
  float4 ra = reinterpret_cast<const float4*>(p.rast)[pa];
  float4 rb = reinterpret_cast<const float4*>(p.rast)[pb];
  int tA = (int)ra.w - 1, tB = (int)rb.w - 1;
  if (tA == tB) return h;
  bool a_front = (tB < 0) || (tA >= 0 && ra.z < rb.z);
  int tf = a_front ? tA : tB;
  float ax = x + 0.5f, ay = y + 0.5f;
  float bx = ax + (axis == 0 ? 1.f : 0.f), by = ay + (axis == 0 ? 0.f : 1.f);
  h.pf = a_front ? pa : pb;
  h.po = a_front ? pb : pa;
  h.cfx = a_front ? ax : bx, h.cfy = a_front ? ay : by;
  h.cox = a_front ? bx : ax, h.coy = a_front ? by : ay;
  float sx[3], sy[3];
  if (!tri_screen(p, b, tf, sx, sy)) return h;
  float sign_f = area_sign(sx, sy);
  float best = 2.f;
  for (int k = 0; k < 3; ++k) {
    int k1 = (k + 1) % 3;
    float dx = sx[k1] - sx[k], dy = sy[k1] - sy[k];
    bool orient = axis == 0 ? fabsf(dx) <= fabsf(dy) : fabsf(dy) < fabsf(dx);
    if (!orient) continue;
    int nb = p.neighbor[tf * 3 + k];
    bool silhouette = nb < 0;
    if (!silhouette) {
      float nx[3], ny[3];
      bool nok = tri_screen(p, b, nb, nx, ny);
      silhouette = !nok || area_sign(nx, ny) != sign_f;
    }
    if (!silhouette) continue;
    float side_f, side_o, s;
    float t = crossing<float>(sx[k], sy[k], sx[k1], sy[k1], h.cfx, h.cfy, h.cox, h.coy, side_f, side_o, s);
    if (!(side_f * side_o < 0.f)) continue;
    if (!(s >= 0.f && s <= 1.f)) continue;
    if (t < best) {
      best = t;
      h.k = k;
    }
  }
  if (best <= 1.f) {
    h.hit = true;
    h.t = best;
    h.b = b;
    h.tf = tf;
  }
  return h;
}

// Calls f(b, h, into_o, amount, target) for each silhouette pair the thread's pixel forms
// with its right and lower neighbours: the blend moves `amount` of the colour difference
// into pixel `target` (the other pixel h.po when into_o, else the front pixel h.pf).
template <class F>
NVDREC_D void for_each_blend(const AAParams& p, F f) {
  long long pix = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (pix >= pixel_count(p)) return;
  int x = (int)(pix % p.width);
  int y = (int)((pix / p.width) % p.height);
  int b = (int)(pix / ((long long)p.width * p.height));
  for (int axis = 0; axis < 2; ++axis) {
    if (axis == 0 && x + 1 >= p.width) continue;
    if (axis == 1 && y + 1 >= p.height) continue;
    PairHit h = find_pair(p, pix, b, y, x, axis);
    if (!h.hit) continue;
    bool into_o = h.t > 0.5f;
    f(b, h, into_o, fabsf(h.t - 0.5f), into_o ? h.po : h.pf);
  }
}

__global__ void antialias_fwd_kernel(AAParams p) {
  for_each_blend(p, [&](int, const PairHit& h, bool into_o, float amount, long long target) {
    int C = p.channels;
    const float* cf = p.color + h.pf * C;
    const float* co = p.color + h.po * C;
    for (int c = 0; c < C; ++c) {
      float v = into_o ? (cf[c] - co[c]) : (co[c] - cf[c]);
      atomicAdd(p.out + target * C + c, v * amount);
    }
  });
}

__global__ void antialias_bwd_kernel(AAParams p) {
  for_each_blend(p, [&](int b, const PairHit& h, bool into_o, float amount, long long target) {
    int C = p.channels;
    const float* cf = p.color + h.pf * C;
    const float* co = p.color + h.po * C;
    const float* g = p.grad_out + target * C;
    float gt = 0.f;
    for (int c = 0; c < C; ++c) {
      float gc = g[c];
      if (gc == 0.f) continue;
      gt += gc * (cf[c] - co[c]);
      // into o: o += (cf - co) a; else f += (co - cf) a
      float s = into_o ? 1.f : -1.f;
      atomicAdd(p.grad_color + h.pf * C + c, s * amount * gc);
      atomicAdd(p.grad_color + h.po * C + c, -s * amount * gc);
    }
    if (gt == 0.f) return;
    // d t / d (x, y, w) of the two edge vertices, by dual numbers
    int va = p.tri[h.tf * 3 + h.k], vb = p.tri[h.tf * 3 + (h.k + 1) % 3];
    const float* A = aa_vertex(p, b, va);
    const float* B = aa_vertex(p, b, vb);
    Dual<6> ax = Dual<6>::var(A[0], 0), ay = Dual<6>::var(A[1], 1), aw = Dual<6>::var(A[3], 2);
    Dual<6> bx = Dual<6>::var(B[0], 3), by = Dual<6>::var(B[1], 4), bw = Dual<6>::var(B[3], 5);
    Dual<6> sax, say, sbx, sby, side_f, side_o, s;
    to_screen<Dual<6>>(ax, ay, aw, (float)p.width, (float)p.height, sax, say);
    to_screen<Dual<6>>(bx, by, bw, (float)p.width, (float)p.height, sbx, sby);
    Dual<6> t = crossing<Dual<6>>(sax, say, sbx, sby, h.cfx, h.cfy, h.cox, h.coy, side_f, side_o, s);
    float scale = gt * p.boost;
    float* ga = p.grad_pos + ((p.instanced ? (long long)b * p.num_vert : 0LL) + va) * 4;
    float* gb = p.grad_pos + ((p.instanced ? (long long)b * p.num_vert : 0LL) + vb) * 4;
    atomicAdd(ga + 0, scale * t.d[0]);
    atomicAdd(ga + 1, scale * t.d[1]);
    atomicAdd(ga + 3, scale * t.d[2]);
    atomicAdd(gb + 0, scale * t.d[3]);
    atomicAdd(gb + 1, scale * t.d[4]);
    atomicAdd(gb + 3, scale * t.d[5]);
  });
}

void launch_antialias_fwd(const AAParams& p, cudaStream_t s) {
  launch_per_item(antialias_fwd_kernel, p, pixel_count(p), s);
}
void launch_antialias_bwd(const AAParams& p, cudaStream_t s) {
  launch_per_item(antialias_bwd_kernel, p, pixel_count(p), s);
}

}  // namespace nvdrec
