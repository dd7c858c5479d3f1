// Attribute interpolation kernels: out = u a0 + v a1 + (1 - u - v) a2.
#include "../common/common.h"
#include "interpolate.h"

namespace nvdrec {

__global__ void interpolate_fwd_kernel(InterpParams p) {
  long long pix = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long total = (long long)p.num_batch * p.height * p.width;
  if (pix >= total) return;
  float4 r = reinterpret_cast<const float4*>(p.rast)[pix];
  int t = (int)r.w - 1;
  int C = p.channels;
  float* out = p.out + pix * C;
  float* out_da = p.num_diff ? p.out_da + pix * 2 * p.num_diff : nullptr;
  if (t < 0) {
    for (int c = 0; c < C; ++c) out[c] = 0.f;
    for (int k = 0; k < 2 * p.num_diff; ++k) out_da[k] = 0.f;
    return;
  }
  int b = (int)(pix / ((long long)p.height * p.width));
  const float* base = p.attr + (p.attr_batched ? (long long)b * p.num_vert * C : 0LL);
  const float* a0 = base + (long long)p.tri[t * 3 + 0] * C;
  const float* a1 = base + (long long)p.tri[t * 3 + 1] * C;
  const float* a2 = base + (long long)p.tri[t * 3 + 2] * C;
  for (int c = 0; c < C; ++c) out[c] = a2[c] + r.x * (a0[c] - a2[c]) + r.y * (a1[c] - a2[c]);
  if (p.num_diff) {
    float4 d = reinterpret_cast<const float4*>(p.rast_db)[pix];  // du/dX du/dY dv/dX dv/dY
    for (int k = 0; k < p.num_diff; ++k) {
      int c = p.diff_idx[k];
      float e0 = a0[c] - a2[c], e1 = a1[c] - a2[c];
      out_da[2 * k] = e0 * d.x + e1 * d.z;
      out_da[2 * k + 1] = e0 * d.y + e1 * d.w;
    }
  }
}

__global__ void interpolate_bwd_kernel(InterpParams p) {
  // no early returns: every lane takes part in the warp reductions
  long long pix = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long total = (long long)p.num_batch * p.height * p.width;
  bool inside = pix < total;
  float4 r = inside ? reinterpret_cast<const float4*>(p.rast)[pix] : make_float4(0.f, 0.f, 0.f, 0.f);
  int t = (int)r.w - 1;
  bool active = inside && t >= 0;
  int C = p.channels;
  int b = inside ? (int)(pix / ((long long)p.height * p.width)) : 0;
  long long boff = p.attr_batched ? (long long)b * p.num_vert * C : 0LL;
  int v0 = active ? p.tri[t * 3 + 0] : 0, v1 = active ? p.tri[t * 3 + 1] : 0,
      v2 = active ? p.tri[t * 3 + 2] : 0;
  const float* a0 = p.attr + boff + (long long)v0 * C;
  const float* a1 = p.attr + boff + (long long)v1 * C;
  const float* a2 = p.attr + boff + (long long)v2 * C;
  float* g0 = p.grad_attr + boff + (long long)v0 * C;
  float* g1 = p.grad_attr + boff + (long long)v1 * C;
  float* g2 = p.grad_attr + boff + (long long)v2 * C;
  WarpRuns runs = warp_runs(active ? (((unsigned long long)b << 32) | (unsigned)t) : kNoKey);
  bool lead = active && runs.leader;
  float gu = 0.f, gv = 0.f;
  float w2 = 1.f - r.x - r.y;
  for (int c = 0; c < C; ++c) {
    float g = active ? p.grad_out[pix * C + c] : 0.f;
    if (active) {
      gu += g * (a0[c] - a2[c]);
      gv += g * (a1[c] - a2[c]);
    }
    float s0 = warp_run_sum(runs, g * r.x);
    float s1 = warp_run_sum(runs, g * r.y);
    float s2 = warp_run_sum(runs, g * w2);
    if (lead) {
      if (s0 != 0.f) atomicAdd(g0 + c, s0);
      if (s1 != 0.f) atomicAdd(g1 + c, s1);
      if (s2 != 0.f) atomicAdd(g2 + c, s2);
    }
  }
  float4 gdb = make_float4(0.f, 0.f, 0.f, 0.f);
  if (p.num_diff && p.grad_out_da) {
    float4 d = active ? reinterpret_cast<const float4*>(p.rast_db)[pix] : make_float4(0.f, 0.f, 0.f, 0.f);
    for (int k = 0; k < p.num_diff; ++k) {
      int c = p.diff_idx[k];
      float gx = active ? p.grad_out_da[(pix * p.num_diff + k) * 2] : 0.f;
      float gy = active ? p.grad_out_da[(pix * p.num_diff + k) * 2 + 1] : 0.f;
      if (active) {
        float e0 = a0[c] - a2[c], e1 = a1[c] - a2[c];
        gdb.x += gx * e0;
        gdb.z += gx * e1;
        gdb.y += gy * e0;
        gdb.w += gy * e1;
      }
      float ge0 = warp_run_sum(runs, gx * d.x + gy * d.y);  // d out_da / d e0
      float ge1 = warp_run_sum(runs, gx * d.z + gy * d.w);
      if (lead && (ge0 != 0.f || ge1 != 0.f)) {
        atomicAdd(g0 + c, ge0);
        atomicAdd(g1 + c, ge1);
        atomicAdd(g2 + c, -ge0 - ge1);
      }
    }
  }
  if (inside) {
    reinterpret_cast<float4*>(p.grad_rast)[pix] = make_float4(gu, gv, 0.f, 0.f);
    if (p.grad_rast_db) reinterpret_cast<float4*>(p.grad_rast_db)[pix] = gdb;
  }
}

void launch_interpolate_fwd(const InterpParams& p, cudaStream_t s) {
  launch_per_item(interpolate_fwd_kernel, p, pixel_count(p), s);
}
void launch_interpolate_bwd(const InterpParams& p, cudaStream_t s) {
  launch_per_item(interpolate_bwd_kernel, p, pixel_count(p), s);
}

}  // namespace nvdrec
