// Rasterization kernels: homogeneous 2D coverage (see nvdrec/ops/rasterize.py).
#include "../common/common.h"
#include "raster_math.h"
#include "rasterize.h"

namespace nvdrec {

NVDREC_D void slot_of(const RasterParams& p, int g, int& b, int& t) {
  if (p.instanced) {
    b = g / p.num_tri;
    t = g - b * p.num_tri;
  } else {
    b = p.slot_batch[g];
    t = p.slot_tri[g];
  }
}

NVDREC_D const float* vertex_ptr(const float* pos, int instanced, int num_vert, int b, int v) {
  return pos + ((instanced ? (long long)b * num_vert : 0LL) + v) * 4;
}

__global__ void raster_setup_kernel(RasterParams p) {
  int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= p.num_slots) return;
  int b, t;
  slot_of(p, g, b, t);
  float v[3][4];
  for (int i = 0; i < 3; ++i) {
    const float* src = vertex_ptr(p.pos, p.instanced, p.num_vert, b, p.tri[t * 3 + i]);
    for (int k = 0; k < 4; ++k) v[i][k] = src[k];
  }
  bool out_all[7] = {true, true, true, true, true, true, true};
  for (int i = 0; i < 3; ++i) {
    float x = v[i][0], y = v[i][1], z = v[i][2], w = v[i][3];
    out_all[0] &= x > w;
    out_all[1] &= x < -w;
    out_all[2] &= y > w;
    out_all[3] &= y < -w;
    out_all[4] &= z > w;
    out_all[5] &= z < -w;
    out_all[6] &= w <= 0.f;
  }
  bool culled = false;
  for (int k = 0; k < 7; ++k) culled |= out_all[k];
  bool front = v[0][3] > 0.f && v[1][3] > 0.f && v[2][3] > 0.f;
  int x0 = 0, x1 = p.width - 1, y0 = 0, y1 = p.height - 1;
  if (front) {
    float mnx = 1e30f, mxx = -1e30f, mny = 1e30f, mxy = -1e30f;
    for (int i = 0; i < 3; ++i) {
      float sx = (v[i][0] / v[i][3] + 1.f) * 0.5f * p.width - 0.5f;
      float sy = (v[i][1] / v[i][3] + 1.f) * 0.5f * p.height - 0.5f;
      mnx = fminf(mnx, sx), mxx = fmaxf(mxx, sx), mny = fminf(mny, sy), mxy = fmaxf(mxy, sy);
    }
    // clamp in float first: projected coordinates can be huge
    mnx = fminf(fmaxf(ceilf(mnx - 1e-4f), 0.f), (float)(p.width - 1));
    mny = fminf(fmaxf(ceilf(mny - 1e-4f), 0.f), (float)(p.height - 1));
    mxx = fminf(fmaxf(floorf(mxx + 1e-4f), -1.f), (float)(p.width - 1));
    mxy = fminf(fmaxf(floorf(mxy + 1e-4f), -1.f), (float)(p.height - 1));
    x0 = (int)mnx, y0 = (int)mny, x1 = (int)mxx, y1 = (int)mxy;
  }
  if (culled || x1 < x0 || y1 < y0) x1 = x0 - 1;
  p.bbox[g] = make_int4(x0, x1, y0, y1);
  long long area = (x1 < x0) ? 0 : (long long)(x1 - x0 + 1) * (y1 - y0 + 1);
  p.chunks[g] = (int)((area + kRasterChunk - 1) / kRasterChunk);
  // edge coefficients lam = A + Bx px + By py: A = x cross y, Bx = y cross w, By = w cross x.
  // Rounded products, no fused multiply-add: a shared edge then gets exactly negated
  // coefficients in its two triangles (a contracted a*b - c*d rounds differently from
  // c*d - a*b), so a pixel centre on the edge is never outside both (no cracks).
  float* st = p.setup + (long long)g * 16;
  float x[3] = {v[0][0], v[1][0], v[2][0]}, y[3] = {v[0][1], v[1][1], v[2][1]};
  float w[3] = {v[0][3], v[1][3], v[2][3]};
  for (int i = 0; i < 3; ++i) {
    int j = (i + 1) % 3, k = (i + 2) % 3;
    st[i] = __fsub_rn(__fmul_rn(x[j], y[k]), __fmul_rn(x[k], y[j]));
    st[3 + i] = __fsub_rn(__fmul_rn(y[j], w[k]), __fmul_rn(y[k], w[j]));
    st[6 + i] = __fsub_rn(__fmul_rn(w[j], x[k]), __fmul_rn(w[k], x[j]));
    st[9 + i] = v[i][2];
    st[12 + i] = w[i];
  }
}

// Persistent kernel: work items are chunks of kRasterChunk pixels of a triangle's box.
__global__ void raster_cover_kernel(RasterParams p) {
  const int* prefix = p.chunks;  // inclusive prefix sums
  int total = p.num_slots > 0 ? prefix[p.num_slots - 1] : 0;
  const float sxs = 2.f / p.width, sys = 2.f / p.height;
  for (int wi = blockIdx.x * blockDim.x + threadIdx.x; wi < total; wi += gridDim.x * blockDim.x) {
    // slot g = first index with prefix[g] > wi
    int lo = 0, hi = p.num_slots - 1;
    while (lo < hi) {
      int mid = (lo + hi) >> 1;
      if (prefix[mid] > wi)
        hi = mid;
      else
        lo = mid + 1;
    }
    int g = lo;
    int first = g > 0 ? prefix[g - 1] : 0;
    int4 bb = p.bbox[g];
    int bw = bb.y - bb.x + 1;
    long long area = (long long)bw * (bb.w - bb.z + 1);
    long long k0 = (long long)(wi - first) * kRasterChunk;
    long long k1 = k0 + kRasterChunk < area ? k0 + kRasterChunk : area;
    const float* st = p.setup + (long long)g * 16;
    float A[3], Bx[3], By[3], Z[3], W[3];
    for (int i = 0; i < 3; ++i)
      A[i] = st[i], Bx[i] = st[3 + i], By[i] = st[6 + i], Z[i] = st[9 + i], W[i] = st[12 + i];
    int b = p.instanced ? g / p.num_tri : p.slot_batch[g];
    for (long long k = k0; k < k1; ++k) {
      int pyi = bb.z + (int)(k / bw);
      int pxi = bb.x + (int)(k % bw);
      float px = (pxi + 0.5f) * sxs - 1.f;
      float py = (pyi + 0.5f) * sys - 1.f;
      float l0 = A[0] + Bx[0] * px + By[0] * py;
      float l1 = A[1] + Bx[1] * px + By[1] * py;
      float l2 = A[2] + Bx[2] * px + By[2] * py;
      float s = l0 + l1 + l2;
      if (!(fabsf(s) > 1e-30f)) continue;
      float b0 = l0 / s, b1 = l1 / s, b2 = l2 / s;
      if (b0 < 0.f || b1 < 0.f || b2 < 0.f) continue;
      float wp = b0 * W[0] + b1 * W[1] + b2 * W[2];
      if (!(wp > 0.f)) continue;
      float zp = b0 * Z[0] + b1 * Z[1] + b2 * Z[2];
      float depth = zp / wp;
      if (!(depth >= -1.f && depth <= 1.f)) continue;
      long long pix = ((long long)b * p.height + pyi) * p.width + pxi;
      long long key = make_key(depth, g);
      if (p.prev && key <= p.prev[pix]) continue;
      atomicMin((unsigned long long*)&p.keys[pix], (unsigned long long)key);
    }
  }
}

__global__ void raster_resolve_kernel(RasterParams p) {
  long long pix = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long total = (long long)p.num_batch * p.height * p.width;
  if (pix >= total) return;
  long long key = p.keys[pix];
  float4* r = reinterpret_cast<float4*>(p.rast) + pix;
  float4* d = reinterpret_cast<float4*>(p.rast_db) + pix;
  if (key == kEmptyKey) {
    *r = make_float4(0.f, 0.f, 0.f, 0.f);
    *d = make_float4(0.f, 0.f, 0.f, 0.f);
    p.key_out[pix] = -1;
    return;
  }
  p.key_out[pix] = key;
  int g = (int)(key & 0x7fffffff);
  int b, t;
  slot_of(p, g, b, t);
  int pxi = (int)(pix % p.width);
  int pyi = (int)((pix / p.width) % p.height);
  float v[3][4];
  for (int i = 0; i < 3; ++i) {
    const float* src = vertex_ptr(p.pos, p.instanced, p.num_vert, b, p.tri[t * 3 + i]);
    for (int k = 0; k < 4; ++k) v[i][k] = src[k];
  }
  float out[7];
  bool inside;
  float px = (pxi + 0.5f) * (2.f / p.width) - 1.f, py = (pyi + 0.5f) * (2.f / p.height) - 1.f;
  raster_eval<float>(v, px, py, 2.f / p.width, 2.f / p.height, out, inside);
  *r = make_float4(out[0], out[1], out[2], (float)(t + 1));
  // sliver triangles can give unbounded derivatives; the bound is far above any useful
  // value (a barycentric change of 1e4 per pixel) and keeps products finite downstream
  *d = make_float4(fminf(fmaxf(out[3], -kMaxDb), kMaxDb), fminf(fmaxf(out[4], -kMaxDb), kMaxDb),
                   fminf(fmaxf(out[5], -kMaxDb), kMaxDb), fminf(fmaxf(out[6], -kMaxDb), kMaxDb));
}

__global__ void raster_grad_kernel(RasterGradParams p) {
  // no early returns: every lane takes part in the warp reductions
  long long pix = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long total = (long long)p.num_batch * p.height * p.width;
  bool active = pix < total;
  int t = -1, b = 0;
  float go[7] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  float gv[3][4] = {};
  int vid[3] = {0, 0, 0};
  if (active) {
    float4 r = reinterpret_cast<const float4*>(p.rast)[pix];
    t = (int)r.w - 1;
    active = t >= 0;
  }
  if (active) {
    float4 gr = reinterpret_cast<const float4*>(p.grad_rast)[pix];
    float4 gd = p.grad_db ? reinterpret_cast<const float4*>(p.grad_db)[pix] : make_float4(0, 0, 0, 0);
    go[0] = gr.x, go[1] = gr.y, go[2] = gr.z, go[3] = gd.x, go[4] = gd.y, go[5] = gd.z, go[6] = gd.w;
    b = (int)(pix / ((long long)p.height * p.width));
    int pxi = (int)(pix % p.width);
    int pyi = (int)((pix / p.width) % p.height);
    float v[3][4];
    for (int i = 0; i < 3; ++i) {
      vid[i] = p.tri[t * 3 + i];
      const float* src = vertex_ptr(p.pos, p.instanced, p.num_vert, b, vid[i]);
      for (int k = 0; k < 4; ++k) v[i][k] = src[k];
    }
    float px = (pxi + 0.5f) * (2.f / p.width) - 1.f, py = (pyi + 0.5f) * (2.f / p.height) - 1.f;
    // clamped derivatives (see resolve) pass no gradient, like torch.clamp
    float dv[7];
    bool inside;
    raster_eval<float>(v, px, py, 2.f / p.width, 2.f / p.height, dv, inside);
    for (int o = 3; o < 7; ++o)
      if (!(fabsf(dv[o]) < kMaxDb)) go[o] = 0.f;
    raster_eval_grad(v, px, py, 2.f / p.width, 2.f / p.height, go, gv);
    bool finite = true;
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k) finite = finite && isfinite(gv[i][k]);
    if (!finite)  // degenerate (near zero-area) triangle: no usable gradient
      for (int i = 0; i < 3; ++i)
        for (int k = 0; k < 4; ++k) gv[i][k] = 0.f;
  }
  WarpRuns runs = warp_runs(active ? (((unsigned long long)b << 32) | (unsigned)t) : kNoKey);
  for (int i = 0; i < 3; ++i) {
    float* dst = p.grad_pos + ((p.instanced ? (long long)b * p.num_vert : 0LL) + vid[i]) * 4;
    for (int k = 0; k < 4; ++k) {
      float sum = warp_run_sum(runs, gv[i][k]);
      if (active && runs.leader && sum != 0.f) atomicAdd(dst + k, sum);
    }
  }
}

void launch_raster_setup(const RasterParams& p, cudaStream_t s) {
  if (p.num_slots == 0) return;
  raster_setup_kernel<<<div_up(p.num_slots, 256), 256, 0, s>>>(p);
}
void launch_raster_cover(const RasterParams& p, cudaStream_t s) {
  if (p.num_slots == 0) return;
  raster_cover_kernel<<<p.max_work_blocks, 256, 0, s>>>(p);
}
void launch_raster_resolve(const RasterParams& p, cudaStream_t s) {
  launch_per_item(raster_resolve_kernel, p, pixel_count(p), s);
}
void launch_raster_grad(const RasterGradParams& p, cudaStream_t s) {
  launch_per_item(raster_grad_kernel, p, pixel_count(p), s);
}

}  // namespace nvdrec
