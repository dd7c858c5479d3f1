// Fused split-sum shading, forward and backward: one thread per pixel computes the view
// direction, the irradiance lookup (bilinear cube map), the reflection vector, the
// prefiltered specular lookup (trilinear over the specular levels by roughness), the
// split-sum table lookup and the final combination; the backward pass recomputes these
// and chains the gradients by hand. Gradients into the light maps are summed over runs of
// lanes that touch the same texel (warp_runs) and added with one atomic per run.
// Semantics (clamps, level mapping, seams) follow the torch path exactly; see
// EnvironmentLight.shade.
#include <algorithm>

#include "../common/common.h"
#include "../common/cube.h"
#include "shade.h"

namespace nvdrec {

struct Bilinear {
  int idx[4];  // texel index in the buffer (level offset included)
  float w[4], dwx[4], dwy[4];
};

// Bilinear taps at (s, t) on an n x n grid: x = s n - 1/2, y = t n - 1/2.
NVDREC_D void bilinear_weights(float s, float t, int n, int& i0, int& j0, Bilinear& b) {
  float x = s * n - 0.5f, y = t * n - 0.5f;
  float x0 = floorf(x), y0 = floorf(y);
  float fx = x - x0, fy = y - y0;
  i0 = (int)y0, j0 = (int)x0;
  b.w[0] = (1 - fx) * (1 - fy), b.dwx[0] = -(1 - fy), b.dwy[0] = -(1 - fx);
  b.w[1] = fx * (1 - fy), b.dwx[1] = (1 - fy), b.dwy[1] = -fx;
  b.w[2] = (1 - fx) * fy, b.dwx[2] = -fy, b.dwy[2] = (1 - fx);
  b.w[3] = fx * fy, b.dwx[3] = fy, b.dwy[3] = fx;
}

NVDREC_D void cube_taps(int off, int n, int face, float s, float t, Bilinear& b) {
  int i0, j0;
  bilinear_weights(s, t, n, i0, j0, b);
#pragma unroll
  for (int k = 0; k < 4; ++k) b.idx[k] = off + cube_texel(face, i0 + (k >> 1), j0 + (k & 1), n);
}

// 2D table with clamped addressing (the split-sum LUT).
NVDREC_D void clamp_taps(int n, float s, float t, Bilinear& b) {
  int i0, j0;
  bilinear_weights(s, t, n, i0, j0, b);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    int i = min(max(i0 + (k >> 1), 0), n - 1), j = min(max(j0 + (k & 1), 0), n - 1);
    b.idx[k] = i * n + j;
  }
}

// Everything the forward pass computes for one pixel (recomputed by the backward pass).
struct ShadePixel {
  float wo[3], inv_len, len;
  float n[3], nl[3], kd[3], occ, rough, metal;
  float irr[3];
  // specular part
  float d, ndotv, refl[3], rl[3];
  float lod;   // unclamped level of the specular lookup
  int l0, l1;  // blended levels
  float frac;  // weight of l1
  float spec[3], A, B;
  float color[3];
};

NVDREC_D void rotate(const float* r, const float* v, float* out) {
  if (!r) {
    out[0] = v[0], out[1] = v[1], out[2] = v[2];
    return;
  }
#pragma unroll
  for (int i = 0; i < 3; ++i) out[i] = r[3 * i] * v[0] + r[3 * i + 1] * v[1] + r[3 * i + 2] * v[2];
}

NVDREC_D void rotate_t(const float* r, const float* v, float* out) {  // R^T v
  if (!r) {
    out[0] = v[0], out[1] = v[1], out[2] = v[2];
    return;
  }
#pragma unroll
  for (int j = 0; j < 3; ++j) out[j] = r[j] * v[0] + r[3 + j] * v[1] + r[6 + j] * v[2];
}

// Continuous specular level of a roughness (EnvironmentLight.mip_of_roughness) and its
// derivative (zero where the torch version clamps).
NVDREC_D float level_of_roughness(const ShadeParams& p, float r, float* dlevel) {
  float lo = p.min_rough, hi = p.max_rough, nm2 = (float)(p.spec_levels - 2);
  if (r < hi) {
    if (dlevel) *dlevel = r >= lo ? nm2 / (hi - lo) : 0.f;
    return (fminf(fmaxf(r, lo), hi) - lo) / (hi - lo) * nm2;
  }
  if (dlevel) *dlevel = r <= 1.f ? 1.f / (1.f - hi) : 0.f;
  return (fminf(fmaxf(r, hi), 1.f) - hi) / (1.f - hi) + nm2;
}

NVDREC_D void sample3(const float* tex, const Bilinear& b, float lw, float* acc) {
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float* t = tex + (long long)b.idx[k] * 3;
    float w = b.w[k] * lw;
    acc[0] += w * __ldg(t), acc[1] += w * __ldg(t + 1), acc[2] += w * __ldg(t + 2);
  }
}

NVDREC_D void shade_pixel(const ShadeParams& p, long long q, ShadePixel& s) {
  int b = (int)(q / p.pix_per_batch);
  const float* vp = p.view + (p.view_batched ? 3LL * b : 0LL);
  const float* rot = p.rot ? p.rot + 9LL * b : nullptr;
  float x[3];
#pragma unroll
  for (int i = 0; i < 3; ++i) {
    x[i] = vp[i] - p.pos[3 * q + i];
    s.n[i] = p.nrm[3 * q + i];
    s.kd[i] = p.kd[q * p.kd_stride + i];
  }
  s.occ = p.ks[3 * q], s.rough = p.ks[3 * q + 1], s.metal = p.ks[3 * q + 2];
  s.len = sqrtf(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
  s.inv_len = 1.f / fmaxf(s.len, 1e-12f);
#pragma unroll
  for (int i = 0; i < 3; ++i) s.wo[i] = x[i] * s.inv_len;
  rotate(rot, s.n, s.nl);
  float st, tt;
  int face = dir_to_face<float>(s.nl[0], s.nl[1], s.nl[2], st, tt);
  Bilinear bl;
  cube_taps(0, p.diff_n, face, st, tt, bl);
  s.irr[0] = s.irr[1] = s.irr[2] = 0.f;
  sample3(p.diffuse, bl, 1.f, s.irr);
  if (!p.specular) {
#pragma unroll
    for (int i = 0; i < 3; ++i) s.color[i] = s.irr[i] * s.kd[i];
    return;
  }
  s.d = s.n[0] * s.wo[0] + s.n[1] * s.wo[1] + s.n[2] * s.wo[2];
  s.ndotv = fmaxf(s.d, 1e-4f);
#pragma unroll
  for (int i = 0; i < 3; ++i) s.refl[i] = 2.f * s.ndotv * s.n[i] - s.wo[i];
  rotate(rot, s.refl, s.rl);
  s.lod = level_of_roughness(p, s.rough, nullptr);
  if (p.spec_levels == 1) {
    s.l0 = s.l1 = 0, s.frac = 0.f;
  } else {
    float cl = fminf(fmaxf(s.lod, 0.f), (float)(p.spec_levels - 1));
    s.l0 = min((int)floorf(cl), p.spec_levels - 2);
    s.l1 = s.l0 + 1;
    s.frac = cl - s.l0;
  }
  face = dir_to_face<float>(s.rl[0], s.rl[1], s.rl[2], st, tt);
  s.spec[0] = s.spec[1] = s.spec[2] = 0.f;
  cube_taps(p.spec_off[s.l0], p.spec_n[s.l0], face, st, tt, bl);
  sample3(p.spec, bl, s.l0 == s.l1 ? 1.f : 1.f - s.frac, s.spec);
  if (s.l1 != s.l0) {
    cube_taps(p.spec_off[s.l1], p.spec_n[s.l1], face, st, tt, bl);
    sample3(p.spec, bl, s.frac, s.spec);
  }
  clamp_taps(p.lut_n, s.ndotv, s.rough, bl);
  s.A = s.B = 0.f;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    s.A += bl.w[k] * __ldg(p.lut + 2 * bl.idx[k]);
    s.B += bl.w[k] * __ldg(p.lut + 2 * bl.idx[k] + 1);
  }
#pragma unroll
  for (int i = 0; i < 3; ++i) {
    float f0 = 0.04f * (1.f - s.metal) + s.kd[i] * s.metal;
    s.color[i] = s.irr[i] * s.kd[i] * (1.f - s.metal) + s.spec[i] * (f0 * s.A + s.B);
  }
}

__global__ void shade_fwd_kernel(ShadeParams p) {
  long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= p.total) return;
  ShadePixel s;
  shade_pixel(p, q, s);
  float k = 1.f - s.occ;
#pragma unroll
  for (int i = 0; i < 3; ++i) p.out[3 * q + i] = s.color[i] * k;
}

// Where the gradient of light texels goes: the coarse texels (the irradiance map and the
// coarsest specular levels, which most pixels share) are summed per block in shared
// memory and added to global memory once per block; the rest go straight to global memory.
struct LightGrad {
  float* global;    // gradient buffer (g_diffuse or g_spec), null: none wanted
  float* shared;    // shared-memory copy of texels >= shared_from (null: none)
  int shared_from;  // first texel index held in shared memory
};

// Backward of one bilinear cube lookup on one level (all lanes call; `use` marks the
// live ones): texel gradients g * w * lw (summed per run of lanes on the same texel),
// the gradient of the face coordinates (gs, gt, in [0, 1] units) and g . value.
NVDREC_D float cube_level_bwd(const float* tex, const LightGrad& lg, const Bilinear& b, int n, float lw,
                              const float* g, bool use, float& gs, float& gt) {
  float gx = 0.f, gy = 0.f, gval = 0.f;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float* t = tex + (long long)b.idx[k] * 3;
    if (lg.global) {
      WarpRuns runs = warp_runs(use ? (unsigned long long)b.idx[k] : kNoKey);
      float wk = use ? b.w[k] * lw : 0.f;
      bool in_shared = lg.shared && b.idx[k] >= lg.shared_from;
      float* dst =
          in_shared ? lg.shared + (b.idx[k] - lg.shared_from) * 3 : lg.global + (long long)b.idx[k] * 3;
#pragma unroll
      for (int c = 0; c < 3; ++c) {
        float sum = warp_run_sum(runs, use ? g[c] * wk : 0.f);
        if (use && runs.leader && sum != 0.f) atomicAdd(dst + c, sum);
      }
    }
    if (use) {
      float dot = g[0] * __ldg(t) + g[1] * __ldg(t + 1) + g[2] * __ldg(t + 2);
      gx += dot * b.dwx[k];
      gy += dot * b.dwy[k];
      gval += dot * b.w[k];
    }
  }
  gs += gx * lw * n;
  gt += gy * lw * n;
  return gval;
}

NVDREC_D void shade_pixel_bwd(const ShadeParams& p, long long q, const LightGrad& lg_diff,
                              const LightGrad& lg_spec) {
  // no early return before the warp-level reductions: idle lanes take part with use = false
  bool active = q < p.total;
  long long qq = active ? q : 0;
  float g[3] = {0.f, 0.f, 0.f};
  if (active) g[0] = p.grad_out[3 * q], g[1] = p.grad_out[3 * q + 1], g[2] = p.grad_out[3 * q + 2];
  bool use = active && (g[0] != 0.f || g[1] != 0.f || g[2] != 0.f);
  ShadePixel s;
  shade_pixel(p, qq, s);
  int b = (int)(qq / p.pix_per_batch);
  const float* rot = p.rot ? p.rot + 9LL * b : nullptr;
  float k = 1.f - s.occ;
  float gc[3], g_kd[3], g_irr[3], g_spec[3];
  float g_occ = 0.f, g_metal = 0.f, g_A = 0.f, g_B = 0.f;
#pragma unroll
  for (int i = 0; i < 3; ++i) {
    gc[i] = g[i] * k;
    g_occ -= g[i] * s.color[i];
    if (p.specular) {
      float f0 = 0.04f * (1.f - s.metal) + s.kd[i] * s.metal;
      g_irr[i] = gc[i] * s.kd[i] * (1.f - s.metal);
      g_kd[i] = gc[i] * (s.irr[i] * (1.f - s.metal) + s.spec[i] * s.A * s.metal);
      g_metal += gc[i] * (s.spec[i] * s.A * (s.kd[i] - 0.04f) - s.irr[i] * s.kd[i]);
      g_spec[i] = gc[i] * (f0 * s.A + s.B);
      g_A += gc[i] * s.spec[i] * f0;
      g_B += gc[i] * s.spec[i];
    } else {
      g_irr[i] = gc[i] * s.kd[i];
      g_kd[i] = gc[i] * s.irr[i];
    }
  }
  // irradiance lookup
  float st, tt, gs = 0.f, gt = 0.f;
  int face = dir_to_face<float>(s.nl[0], s.nl[1], s.nl[2], st, tt);
  Bilinear bl;
  cube_taps(0, p.diff_n, face, st, tt, bl);
  cube_level_bwd(p.diffuse, lg_diff, bl, p.diff_n, 1.f, g_irr, use, gs, gt);
  float g_dir[3], g_n[3];
  cube_coord_grad(s.nl, gs, gt, g_dir);
  rotate_t(rot, g_dir, g_n);
  float g_wo[3] = {0.f, 0.f, 0.f}, g_rough = 0.f;
  if (p.specular) {
    face = dir_to_face<float>(s.rl[0], s.rl[1], s.rl[2], st, tt);
    gs = gt = 0.f;
    float glod = 0.f;
    bool two = s.l1 != s.l0;
    cube_taps(p.spec_off[s.l0], p.spec_n[s.l0], face, st, tt, bl);
    glod -=
        cube_level_bwd(p.spec, lg_spec, bl, p.spec_n[s.l0], two ? 1.f - s.frac : 1.f, g_spec, use, gs, gt);
    // the second level: every lane calls (uniform warp reductions), single-level lanes idle
    int l1 = two ? s.l1 : s.l0;
    cube_taps(p.spec_off[l1], p.spec_n[l1], face, st, tt, bl);
    glod += cube_level_bwd(p.spec, lg_spec, bl, p.spec_n[l1], s.frac, g_spec, use && two, gs, gt);
    float lod_max = (float)(p.spec_levels - 1);
    if (!two || s.lod < 0.f || s.lod > lod_max) glod = 0.f;
    cube_coord_grad(s.rl, gs, gt, g_dir);
    float g_refl[3];
    rotate_t(rot, g_dir, g_refl);
    // split-sum table at (n.v, roughness)
    clamp_taps(p.lut_n, s.ndotv, s.rough, bl);
    float gx = 0.f, gy = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float dot = g_A * __ldg(p.lut + 2 * bl.idx[j]) + g_B * __ldg(p.lut + 2 * bl.idx[j] + 1);
      gx += dot * bl.dwx[j];
      gy += dot * bl.dwy[j];
    }
    float g_ndotv = gx * p.lut_n;
    g_rough = gy * p.lut_n;
    // refl = 2 (n.v) n - wo
    g_ndotv += 2.f * (g_refl[0] * s.n[0] + g_refl[1] * s.n[1] + g_refl[2] * s.n[2]);
    float dlevel;
    level_of_roughness(p, s.rough, &dlevel);
    g_rough += glod * dlevel;
    float g_d = s.d >= 1e-4f ? g_ndotv : 0.f;
#pragma unroll
    for (int i = 0; i < 3; ++i) {
      g_n[i] += 2.f * s.ndotv * g_refl[i] + g_d * s.wo[i];
      g_wo[i] = -g_refl[i] + g_d * s.n[i];
    }
  }
  if (!active) return;
  // wo = x / max(|x|, eps), x = view - pos
  float gwo_dot = g_wo[0] * s.wo[0] + g_wo[1] * s.wo[1] + g_wo[2] * s.wo[2];
  bool live_len = s.len > 1e-12f;
#pragma unroll
  for (int i = 0; i < 3; ++i) {
    float gx = (g_wo[i] - (live_len ? s.wo[i] * gwo_dot : 0.f)) * s.inv_len;
    p.g_pos[3 * q + i] = use ? -gx : 0.f;
    p.g_nrm[3 * q + i] = use ? g_n[i] : 0.f;
    p.g_kd[3 * q + i] = use ? g_kd[i] : 0.f;
  }
  p.g_ks[3 * q] = use ? g_occ : 0.f;
  p.g_ks[3 * q + 1] = use ? g_rough : 0.f;
  p.g_ks[3 * q + 2] = use ? g_metal : 0.f;
}

// Persistent blocks (a grid-stride loop over pixels, uniform per block) so that the
// shared-memory sums are flushed once per block, not once per 256 pixels.
__global__ void shade_bwd_kernel(ShadeParams p, int shared_diff, int shared_spec_from) {
  extern __shared__ float smem[];
  int diff_floats = shared_diff ? 18 * p.diff_n * p.diff_n : 0;
  int last = p.spec_levels - 1;
  int spec_texels = p.spec_off[last] + 6 * p.spec_n[last] * p.spec_n[last];
  int spec_floats = shared_spec_from >= 0 ? 3 * (spec_texels - shared_spec_from) : 0;
  int n_shared = diff_floats + spec_floats;
  for (int i = threadIdx.x; i < n_shared; i += blockDim.x) smem[i] = 0.f;
  __syncthreads();
  LightGrad lg_diff{p.g_diffuse, shared_diff ? smem : nullptr, 0};
  LightGrad lg_spec{p.g_spec, spec_floats ? smem + diff_floats : nullptr, shared_spec_from};
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long q0 = (long long)blockIdx.x * blockDim.x; q0 < p.total; q0 += stride)
    shade_pixel_bwd(p, q0 + threadIdx.x, lg_diff, lg_spec);
  if (!n_shared) return;
  __syncthreads();
  for (int i = threadIdx.x; i < n_shared; i += blockDim.x) {
    float v = smem[i];
    if (v == 0.f) continue;
    float* dst = i < diff_floats ? p.g_diffuse + i : p.g_spec + 3LL * shared_spec_from + (i - diff_floats);
    atomicAdd(dst, v);
  }
}

void launch_shade_fwd(const ShadeParams& p, cudaStream_t s) {
  launch_per_item(shade_fwd_kernel, p, p.total, s);
}

void launch_shade_bwd(const ShadeParams& p, int sms, cudaStream_t s) {
  if (!p.total) return;
  // shared memory: the irradiance map, then the coarsest specular levels that still fit
  constexpr int kSharedBytes = 48 * 1024;
  int bytes = 0, shared_diff = 0, spec_from = -1;
  if (p.g_diffuse && 72 * p.diff_n * p.diff_n <= kSharedBytes) {
    shared_diff = 1;
    bytes = 72 * p.diff_n * p.diff_n;
    for (int l = p.spec_levels - 1; p.g_spec && l >= 0; --l) {
      int add = 72 * p.spec_n[l] * p.spec_n[l];
      if (bytes + add > kSharedBytes) break;
      bytes += add;
      spec_from = p.spec_off[l];
    }
  }
  int per_sm = 0;
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, shade_bwd_kernel, 256, bytes);
  int blocks = (int)std::min<long long>(div_up(p.total, 256), (long long)sms * std::max(per_sm, 1));
  shade_bwd_kernel<<<blocks, 256, bytes, s>>>(p, shared_diff, spec_from);
}

}  // namespace nvdrec
