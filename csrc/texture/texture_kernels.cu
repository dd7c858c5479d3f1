// Texture sampling kernels: bilinear / trilinear, 2D and cube maps with seam handling.
#include "../common/common.h"
#include "../common/cube.h"
#include "texture.h"

namespace nvdrec {

template <int N>
NVDREC_HD Dual<N> dlog2(const Dual<N>& a) {
  Dual<N> r;
  r.v = log2f(a.v);
  for (int i = 0; i < N; ++i) r.d[i] = a.d[i] / (a.v * 0.69314718056f);
  return r;
}
NVDREC_HD float dlog2(float a) {
  return log2f(a);
}

// Level of detail log2(rho) (+ bias added by the caller) from pixel derivatives.
template <class T>
NVDREC_HD T lod_from_derivs(const TexParams& p, const T* dir, const T* da) {
  float w0 = (float)p.level_w[0], h0 = (float)p.level_h[0];
  T r2x, r2y;
  if (!p.cube) {
    T ax0 = da[0] * w0, ax1 = da[2] * h0, ay0 = da[1] * w0, ay1 = da[3] * h0;
    r2x = ax0 * ax0 + ax1 * ax1;
    r2y = ay0 * ay0 + ay1 * ay1;
  } else {
    float a0 = fabsf(value(dir[0])), a1 = fabsf(value(dir[1])), a2 = fabsf(value(dir[2]));
    int m = (a0 >= a1 && a0 >= a2) ? 0 : (a1 >= a2 ? 1 : 2);
    T ma = dir[m];
    if (fabsf(value(ma)) < 1e-20f) ma = T(1e-20f);
    T ama = dabs(ma);
    T r2[2];
    for (int k = 0; k < 2; ++k) {
      const T* dd = da + 3 * k;
      T ratio = dd[m] / ma;
      T acc(0.f);
      for (int j = 0; j < 3; ++j) {
        T g = (dd[j] - dir[j] * ratio) / ama * (w0 * 0.5f);
        acc = acc + g * g;
      }
      r2[k] = acc;
    }
    r2x = r2[0];
    r2y = r2[1];
  }
  T r2 = value(r2x) >= value(r2y) ? r2x : r2y;
  if (value(r2) < 1e-30f) r2 = T(1e-30f);
  return dlog2(r2) * 0.5f;
}

struct Taps {
  long long idx[4];  // texel index within one batch's buffer, -1 = zero (outside)
  float w[4];        // bilinear weights
  float dwx[4];      // d w / d x (texel units along columns)
  float dwy[4];      // d w / d y (texel units along rows)
  int n;
};

NVDREC_D void make_taps(const TexParams& p, int level, float s, float t, int face, bool nearest, Taps& tp) {
  int h = p.level_h[level], w = p.level_w[level];
  long long off = p.level_off[level];
  if (!p.cube && p.boundary == 0) {  // wrap: one period, so taps are off by at most one
    s -= floorf(s);
    t -= floorf(t);
  }
  float x = s * w - 0.5f, y = t * h - 0.5f;
  int ii[4], jj[4];
  if (nearest) {
    tp.n = 1;
    ii[0] = (int)floorf(y + 0.5f);
    jj[0] = (int)floorf(x + 0.5f);
    tp.w[0] = 1.f, tp.dwx[0] = 0.f, tp.dwy[0] = 0.f;
  } else {
    tp.n = 4;
    float x0 = floorf(x), y0 = floorf(y);
    float fx = x - x0, fy = y - y0;
    int j0 = (int)x0, i0 = (int)y0;
    ii[0] = i0, jj[0] = j0, tp.w[0] = (1 - fx) * (1 - fy), tp.dwx[0] = -(1 - fy), tp.dwy[0] = -(1 - fx);
    ii[1] = i0, jj[1] = j0 + 1, tp.w[1] = fx * (1 - fy), tp.dwx[1] = (1 - fy), tp.dwy[1] = -fx;
    ii[2] = i0 + 1, jj[2] = j0, tp.w[2] = (1 - fx) * fy, tp.dwx[2] = -fy, tp.dwy[2] = (1 - fx);
    ii[3] = i0 + 1, jj[3] = j0 + 1, tp.w[3] = fx * fy, tp.dwx[3] = fy, tp.dwy[3] = fx;
  }
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if (k >= tp.n) break;
    int i = ii[k], j = jj[k];
    if (p.cube) {
      tp.idx[k] = off + cube_texel(face, i, j, w);
    } else if (p.boundary == 0) {
      i = i < 0 ? i + h : (i >= h ? i - h : i);
      j = j < 0 ? j + w : (j >= w ? j - w : j);
      tp.idx[k] = off + (long long)i * w + j;
    } else {
      bool outside = i < 0 || i >= h || j < 0 || j >= w;
      i = min(max(i, 0), h - 1);
      j = min(max(j, 0), w - 1);
      tp.idx[k] = (outside && p.boundary == 2) ? -1 : off + (long long)i * w + j;
    }
  }
}

// Pixel setup shared by forward and backward: coordinates, face and level choice.
struct PixelSetup {
  float s, t;  // face / texture coordinates in [0, 1] (unwrapped)
  int face;
  int l0, l1;     // levels to blend
  float frac;     // weight of l1
  float lod;      // unclamped level of detail
  bool lod_live;  // gradient flows into lod
};

NVDREC_D void pixel_setup(const TexParams& p, long long q, PixelSetup& ps) {
  int ud = p.cube ? 3 : 2;
  const float* uv = p.uv + q * ud;
  if (p.cube) {
    ps.face = dir_to_face<float>(uv[0], uv[1], uv[2], ps.s, ps.t);
  } else {
    ps.face = 0, ps.s = uv[0], ps.t = uv[1];
  }
  ps.l0 = ps.l1 = 0, ps.frac = 0.f, ps.lod = 0.f, ps.lod_live = false;
  if (p.filter < 2 || p.num_levels == 1) return;
  float lod = 0.f;
  if (p.uv_da) {
    int dd = p.cube ? 6 : 4;
    float dir[3] = {uv[0], uv[1], p.cube ? uv[2] : 0.f};
    lod = lod_from_derivs<float>(p, dir, p.uv_da + q * dd);
  }
  if (p.bias) lod += p.bias[q];
  ps.lod = lod;
  float maxl = (float)(p.num_levels - 1);
  float cl = fminf(fmaxf(lod, 0.f), maxl);
  if (p.filter == 2) {
    ps.l0 = ps.l1 = (int)floorf(cl + 0.5f);
    return;
  }
  ps.l0 = min((int)floorf(cl), p.num_levels - 2);
  ps.l1 = ps.l0 + 1;
  ps.frac = cl - ps.l0;
  ps.lod_live = lod >= 0.f && lod <= maxl;
}

NVDREC_D const float* level_buffer(const TexParams& p, int level, int b) {
  if (level == 0) return p.base + (p.tex_batched ? (long long)b * p.base_texels * p.channels : 0LL);
  return p.buf + (p.tex_batched ? (long long)b * p.texels * p.channels : 0LL);
}

NVDREC_D float* level_grad_buffer(const TexParams& p, int level, int b) {
  if (level == 0) return p.grad_base + (p.tex_batched ? (long long)b * p.base_texels * p.channels : 0LL);
  return p.grad_buf + (p.tex_batched ? (long long)b * p.texels * p.channels : 0LL);
}

__global__ void texture_fwd_kernel(TexParams p) {
  long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long total = p.num_batch * p.pix_per_batch;
  if (q >= total) return;
  int b = (int)(q / p.pix_per_batch);
  PixelSetup ps;
  pixel_setup(p, q, ps);
  int C = p.channels;
  bool nearest = p.filter == 0;
  int nl = (ps.l1 != ps.l0) ? 2 : 1;
  // constant loop bounds and full unrolling keep the tap arrays in registers
  Taps tp[2];
  tp[1].n = 0;
#pragma unroll
  for (int li = 0; li < 2; ++li)
    if (li < nl) make_taps(p, li == 0 ? ps.l0 : ps.l1, ps.s, ps.t, ps.face, nearest, tp[li]);
  float lw[2] = {nl == 1 ? 1.f : 1.f - ps.frac, ps.frac};
  const float* bufs[2] = {level_buffer(p, ps.l0, b), level_buffer(p, ps.l1, b)};
  float* out = p.out + q * C;
  // accumulate in registers, four channels at a time
  for (int c0 = 0; c0 < C; c0 += 4) {
    int nc = min(4, C - c0);
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int li = 0; li < 2; ++li) {
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if (li >= nl || k >= tp[li].n || tp[li].idx[k] < 0) continue;
        const float* texel = bufs[li] + tp[li].idx[k] * C + c0;
        float wk = tp[li].w[k] * lw[li];
#pragma unroll
        for (int c = 0; c < 4; ++c)
          if (c < nc) acc[c] += wk * texel[c];
      }
    }
#pragma unroll
    for (int c = 0; c < 4; ++c)
      if (c < nc) out[c0 + c] = acc[c];
  }
}

__global__ void texture_bwd_kernel(TexParams p) {
  // no early returns before the warp reductions: inactive lanes contribute zeros
  long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long total = p.num_batch * p.pix_per_batch;
  bool active = q < total;
  long long qq = active ? q : 0;
  int b = (int)(qq / p.pix_per_batch);
  PixelSetup ps;
  pixel_setup(p, qq, ps);
  int C = p.channels;
  const float* go = p.grad_out + qq * C;
  bool nearest = p.filter == 0;
  int nl = (ps.l1 != ps.l0) ? 2 : 1;
  int ntaps = nearest ? 1 : 4;
  float gs = 0.f, gt = 0.f, glod = 0.f;
#pragma unroll
  for (int li = 0; li < 2; ++li) {  // uniform loop bounds across the warp
    bool live = active && li < nl;
    int level = li == 0 ? ps.l0 : ps.l1;
    float lw = nl == 1 ? 1.f : (li == 0 ? 1.f - ps.frac : ps.frac);
    float sign = li == 0 ? -1.f : 1.f;
    Taps tp;
    tp.n = 0;
    if (live) make_taps(p, level, ps.s, ps.t, ps.face, nearest, tp);
    const float* buf = level_buffer(p, level, b);
    float* gbuf = level_grad_buffer(p, level, b);
    float gx = 0.f, gy = 0.f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if (k >= ntaps) break;  // uniform across the warp (filter mode)
      bool use = live && k < tp.n && tp.idx[k] >= 0;
      long long idx = use ? tp.idx[k] : 0;
      const float* texel = buf + idx * C;
      float* gtex = gbuf + idx * C;
      float wk = use ? tp.w[k] * lw : 0.f;
      WarpRuns runs = warp_runs(use ? (unsigned long long)gtex : kNoKey);
      float dot = 0.f;
      for (int c = 0; c < C; ++c) {
        float g = use ? go[c] : 0.f;
        float s = warp_run_sum(runs, g * wk);
        if (use && runs.leader && s != 0.f) atomicAdd(gtex + c, s);
        if (use) dot += g * texel[c];
      }
      if (use) {
        gx += dot * tp.dwx[k];
        gy += dot * tp.dwy[k];
        glod += sign * dot * tp.w[k];
      }
    }
    if (live) {
      gs += gx * lw * p.level_w[level];
      gt += gy * lw * p.level_h[level];
    }
  }
  if (!active) return;
  if (nl == 1) glod = 0.f;
  if (!ps.lod_live) glod = 0.f;
  int ud = p.cube ? 3 : 2;
  const float* uv = p.uv + q * ud;
  float* guv = p.grad_uv + q * ud;
  if (!p.cube) {
    guv[0] = gs;
    guv[1] = gt;
  } else {
    cube_coord_grad(uv, gs, gt, guv);
  }
  if (p.grad_bias) p.grad_bias[q] = glod;
  if (p.uv_da) {
    int dd = p.cube ? 6 : 4;
    float* gda = p.grad_uv_da + q * dd;
    const float* da = p.uv_da + q * dd;
    if (glod == 0.f) {
      for (int j = 0; j < dd; ++j) gda[j] = 0.f;
      return;
    }
    if (!p.cube) {
      Dual<4> dv[4], dir[3];
      for (int j = 0; j < 4; ++j) dv[j] = Dual<4>::var(da[j], j);
      Dual<4> lod = lod_from_derivs<Dual<4>>(p, dir, dv);
      for (int j = 0; j < 4; ++j) gda[j] = glod * lod.d[j];
    } else {
      Dual<9> dv[6], dir[3];
      for (int j = 0; j < 6; ++j) dv[j] = Dual<9>::var(da[j], j);
      for (int j = 0; j < 3; ++j) dir[j] = Dual<9>::var(uv[j], 6 + j);
      Dual<9> lod = lod_from_derivs<Dual<9>>(p, dir, dv);
      for (int j = 0; j < 6; ++j) gda[j] = glod * lod.d[j];
      for (int j = 0; j < 3; ++j) guv[j] += glod * lod.d[6 + j];
    }
  }
}

// Mip level k from level k - 1: area average over the adaptive window (a 2x2 box for even
// sizes), matching torch's adaptive_avg_pool2d used by the reference.
NVDREC_D int win_start(int i, int in, int out) {
  return (int)(((long long)i * in) / out);
}
NVDREC_D int win_end(int i, int in, int out) {
  return (int)(((long long)(i + 1) * in + out - 1) / out);
}

__global__ void mip_down_kernel(MipParams p) {
  long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long total = (long long)p.n * p.ho * p.wo;
  if (q >= total) return;
  int j = (int)(q % p.wo), i = (int)((q / p.wo) % p.ho), n = (int)(q / ((long long)p.wo * p.ho));
  int r0 = win_start(i, p.h, p.ho), r1 = win_end(i, p.h, p.ho);
  int c0 = win_start(j, p.w, p.wo), c1 = win_end(j, p.w, p.wo);
  float inv = 1.f / ((r1 - r0) * (c1 - c0));
  const float* src = p.src + n * p.src_stride;
  float* dst = p.dst + n * p.dst_stride + ((long long)i * p.wo + j) * p.c;
  for (int c = 0; c < p.c; ++c) {
    float acc = 0.f;
    for (int r = r0; r < r1; ++r)
      for (int cc = c0; cc < c1; ++cc) acc += src[((long long)r * p.w + cc) * p.c + c];
    dst[c] = acc * inv;
  }
}

// Gradient of mip_down: each source texel gathers from the windows that contain it.
__global__ void mip_up_grad_kernel(MipParams p) {
  long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long total = (long long)p.n * p.h * p.w;
  if (q >= total) return;
  int cc = (int)(q % p.w), r = (int)((q / p.w) % p.h), n = (int)(q / ((long long)p.w * p.h));
  float* src_grad = const_cast<float*>(p.src) + n * p.src_stride + ((long long)r * p.w + cc) * p.c;
  const float* dst_grad = p.dst + n * p.dst_stride;
  int i0 = (int)(((long long)r * p.ho) / p.h);
  int j0 = (int)(((long long)cc * p.wo) / p.w);
  for (int c = 0; c < p.c; ++c) {
    float acc = 0.f;
    for (int i = max(i0 - 1, 0); i <= min(i0 + 1, p.ho - 1); ++i) {
      int r0 = win_start(i, p.h, p.ho), r1 = win_end(i, p.h, p.ho);
      if (r < r0 || r >= r1) continue;
      for (int j = max(j0 - 1, 0); j <= min(j0 + 1, p.wo - 1); ++j) {
        int c0 = win_start(j, p.w, p.wo), c1 = win_end(j, p.w, p.wo);
        if (cc < c0 || cc >= c1) continue;
        acc += dst_grad[((long long)i * p.wo + j) * p.c + c] / ((r1 - r0) * (c1 - c0));
      }
    }
    src_grad[c] += acc;
  }
}

void launch_mip_down(const MipParams& p, cudaStream_t s) {
  launch_per_item(mip_down_kernel, p, (long long)p.n * p.ho * p.wo, s);
}
void launch_mip_up_grad(const MipParams& p, cudaStream_t s) {
  launch_per_item(mip_up_grad_kernel, p, (long long)p.n * p.h * p.w, s);
}

void launch_texture_fwd(const TexParams& p, cudaStream_t s) {
  launch_per_item(texture_fwd_kernel, p, (long long)p.num_batch * p.pix_per_batch, s);
}
void launch_texture_bwd(const TexParams& p, cudaStream_t s) {
  launch_per_item(texture_bwd_kernel, p, (long long)p.num_batch * p.pix_per_batch, s);
}

}  // namespace nvdrec
