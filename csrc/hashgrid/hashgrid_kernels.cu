// Hash-grid encoding kernels: one thread per (point, level); levels are the slow grid
// axis so that threads of a warp work on neighbouring points of the same level.
#include "../common/common.h"
#include "hashgrid.h"

namespace nvdrec {

NVDREC_D unsigned corner_index(int i, int j, int k, int res, bool dense, unsigned table_size) {
  if (dense) {
    unsigned r = (unsigned)res + 1u;
    return (unsigned)i + (unsigned)j * r + (unsigned)k * r * r;
  }
  unsigned h = (unsigned)i * 1u ^ (unsigned)j * 2654435761u ^ (unsigned)k * 805459861u;
  return h & (table_size - 1u);
}

struct CellPos {
  int base[3];
  float frac[3];
};

NVDREC_D CellPos cell_of(const float* x, int res) {
  CellPos c;
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    float v = fminf(fmaxf(x[a], 0.f), 1.f) * res;
    float b = fminf(floorf(v), (float)(res - 1));
    c.base[a] = (int)b;
    c.frac[a] = v - b;
  }
  return c;
}

// Corner `corner` of a point's cell (bit a set: the far side along axis a): its table
// index, and in `w` its trilinear weight.
NVDREC_D unsigned cell_corner(const CellPos& c, int corner, int res, bool dense, unsigned table_size,
                              float& w) {
  int o0 = corner & 1, o1 = (corner >> 1) & 1, o2 = (corner >> 2) & 1;
  w = (o0 ? c.frac[0] : 1.f - c.frac[0]) * (o1 ? c.frac[1] : 1.f - c.frac[1]) *
      (o2 ? c.frac[2] : 1.f - c.frac[2]);
  return corner_index(c.base[0] + o0, c.base[1] + o1, c.base[2] + o2, res, dense, table_size);
}

template <int F>
__global__ void hashgrid_fwd_kernel(HashGridParams p) {
  int n = blockIdx.x * blockDim.x + threadIdx.x;
  int lvl = blockIdx.y;
  if (n >= p.num_points) return;
  int res = p.res[lvl];
  bool dense = p.dense[lvl];
  CellPos c = cell_of(p.x + 3LL * n, res);
  const float* table = p.table + (long long)lvl * p.table_size * F;
  float acc[F];
#pragma unroll
  for (int f = 0; f < F; ++f) acc[f] = 0.f;
#pragma unroll
  for (int corner = 0; corner < 8; ++corner) {
    float w;
    unsigned idx = cell_corner(c, corner, res, dense, p.table_size, w);
    const float* e = table + (long long)idx * F;
    if (F == 2) {
      float2 v = *reinterpret_cast<const float2*>(e);
      acc[0] += w * v.x;
      acc[F > 1 ? 1 : 0] += w * v.y;
    } else {
#pragma unroll
      for (int f = 0; f < F; ++f) acc[f] += w * e[f];
    }
  }
  float* out = p.out + (long long)n * p.levels * F + lvl * F;
#pragma unroll
  for (int f = 0; f < F; ++f) out[f] = acc[f];
}

template <int F>
NVDREC_D void atomic_add_features(float* e, float w, const float* go) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (F == 2) {  // one vector atomic per corner on Hopper
    atomicAdd(reinterpret_cast<float2*>(e), make_float2(w * go[0], w * go[1]));
  } else
#endif
  {
#pragma unroll
    for (int f = 0; f < F; ++f)
      if (go[f] != 0.f) atomicAdd(e + f, w * go[f]);
  }
}

// Points whose upstream gradient is zero (in a render: background pixels, which all sit
// at one point and would otherwise hammer the same table entries) add nothing. On dense
// (coarse) levels neighbouring points share cells, so the lanes of a warp that hit the
// same entry first sum their contributions (warp_runs) and one lane adds the sum; the
// branch is uniform per block (one level per grid row).
template <int F>
__global__ void hashgrid_bwd_kernel(HashGridParams p) {
  int n = blockIdx.x * blockDim.x + threadIdx.x;
  int lvl = blockIdx.y;
  bool active = n < p.num_points;
  int res = p.res[lvl];
  bool dense = p.dense[lvl];
  float go[F];
  bool use = false;
  const float* g = p.grad_out + (long long)(active ? n : 0) * p.levels * F + lvl * F;
#pragma unroll
  for (int f = 0; f < F; ++f) {
    go[f] = active ? g[f] : 0.f;
    use = use || go[f] != 0.f;
  }
  if (!dense && !use) return;  // no warp-level work below for hashed levels
  CellPos c = cell_of(p.x + 3LL * (active ? n : 0), res);
  float* table = p.grad_table + (long long)lvl * p.table_size * F;
#pragma unroll
  for (int corner = 0; corner < 8; ++corner) {
    float w;
    unsigned idx = cell_corner(c, corner, res, dense, p.table_size, w);
    float* e = table + (long long)idx * F;
    if (!dense) {
      atomic_add_features<F>(e, w, go);
      continue;
    }
    WarpRuns runs = warp_runs(use ? (unsigned long long)idx : kNoKey);
    float sum[F];
#pragma unroll
    for (int f = 0; f < F; ++f) sum[f] = warp_run_sum(runs, use ? w * go[f] : 0.f);
    if (use && runs.leader) atomic_add_features<F>(e, 1.f, sum);
  }
}

// Gradient to the points: the trilinear weight of a corner is a product of one factor
// per axis, (frac or 1 - frac), so d w / d frac_a is the product of the other two
// factors times +-1, and d frac_a / d x_a = res (zero where x_a was clamped). One thread
// per point walks all levels, so no atomics are needed.
template <int F>
__global__ void hashgrid_bwd_input_kernel(HashGridParams p) {
  int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= p.num_points) return;
  const float* xp = p.x + 3LL * n;
  float gx[3] = {0.f, 0.f, 0.f};
  for (int lvl = 0; lvl < p.levels; ++lvl) {
    const float* g = p.grad_out + (long long)n * p.levels * F + lvl * F;
    float go[F];
    bool use = false;
#pragma unroll
    for (int f = 0; f < F; ++f) {
      go[f] = g[f];
      use = use || go[f] != 0.f;
    }
    if (!use) continue;
    int res = p.res[lvl];
    CellPos c = cell_of(xp, res);
    const float* table = p.table + (long long)lvl * p.table_size * F;
    float gf[3] = {0.f, 0.f, 0.f};
#pragma unroll
    for (int corner = 0; corner < 8; ++corner) {
      int o[3] = {corner & 1, (corner >> 1) & 1, (corner >> 2) & 1};
      float wa[3];
#pragma unroll
      for (int a = 0; a < 3; ++a) wa[a] = o[a] ? c.frac[a] : 1.f - c.frac[a];
      unsigned idx =
          corner_index(c.base[0] + o[0], c.base[1] + o[1], c.base[2] + o[2], res, p.dense[lvl], p.table_size);
      const float* e = table + (long long)idx * F;
      float dot = 0.f;
#pragma unroll
      for (int f = 0; f < F; ++f) dot += go[f] * e[f];
      gf[0] += dot * (o[0] ? 1.f : -1.f) * wa[1] * wa[2];
      gf[1] += dot * (o[1] ? 1.f : -1.f) * wa[0] * wa[2];
      gf[2] += dot * (o[2] ? 1.f : -1.f) * wa[0] * wa[1];
    }
#pragma unroll
    for (int a = 0; a < 3; ++a) gx[a] += gf[a] * (float)res;
  }
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    bool inside = xp[a] >= 0.f && xp[a] <= 1.f;  // clamp passes the gradient inside
    p.grad_x[3LL * n + a] = inside ? gx[a] : 0.f;
  }
}

template <int F>
static void launch_f(const HashGridParams& p, cudaStream_t s, bool bwd) {
  dim3 grid(div_up(p.num_points, 256), p.levels);
  if (bwd)
    hashgrid_bwd_kernel<F><<<grid, 256, 0, s>>>(p);
  else
    hashgrid_fwd_kernel<F><<<grid, 256, 0, s>>>(p);
}

static void dispatch(const HashGridParams& p, cudaStream_t s, bool bwd) {
  if (p.num_points == 0) return;
  switch (p.features) {
    case 1:
      launch_f<1>(p, s, bwd);
      break;
    case 2:
      launch_f<2>(p, s, bwd);
      break;
    case 4:
      launch_f<4>(p, s, bwd);
      break;
    default:
      launch_f<8>(p, s, bwd);
      break;
  }
}

void launch_hashgrid_fwd(const HashGridParams& p, cudaStream_t s) {
  dispatch(p, s, false);
}
void launch_hashgrid_bwd(const HashGridParams& p, cudaStream_t s) {
  dispatch(p, s, true);
}

void launch_hashgrid_bwd_input(const HashGridParams& p, cudaStream_t s) {
  if (p.num_points == 0) return;
  dim3 grid(div_up(p.num_points, 128));
  switch (p.features) {
    case 1:
      hashgrid_bwd_input_kernel<1><<<grid, 128, 0, s>>>(p);
      break;
    case 2:
      hashgrid_bwd_input_kernel<2><<<grid, 128, 0, s>>>(p);
      break;
    case 4:
      hashgrid_bwd_input_kernel<4><<<grid, 128, 0, s>>>(p);
      break;
    default:
      hashgrid_bwd_input_kernel<8><<<grid, 128, 0, s>>>(p);
      break;
  }
}

}  // namespace nvdrec
