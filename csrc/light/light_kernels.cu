// y = A x for a CSR matrix A and a dense x with C <= 4 channels. A group of kGroup lanes
// works on one row: the lanes stride over the row's entries (coalesced loads of col/val),
// then reduce with shuffles in a fixed order, so the result is deterministic. The
// transpose is stored separately, so the backward pass is the same kernel. Long rows come
// split into segments of bounded length (so that a few very long rows - texels of the
// coarse levels, sampled by thousands of outputs - do not leave one lane group working
// long after the rest); their segment sums go to a partial buffer and a second kernel
// adds them up in a fixed order.
#include "../common/common.h"
#include "light_filter.h"

namespace nvdrec {

constexpr int kGroup = 8;

NVDREC_D float* out_row(const CsrGatherParams& p, int row) {
  if (p.split_at > 0 && row >= p.split_at) return p.y2 + (size_t)(row - p.split_at) * p.channels;
  return p.y + (size_t)row * p.channels;
}

template <int C>
__global__ void csr_gather_kernel(CsrGatherParams p) {
  int lane = threadIdx.x % kGroup;
  int seg = (blockIdx.x * blockDim.x + threadIdx.x) / kGroup;
  bool active = seg < p.segments;
  float acc[C];
#pragma unroll
  for (int c = 0; c < C; ++c) acc[c] = 0.f;
  if (active) {
    int b = p.row_ptr[seg], e = p.row_ptr[seg + 1];
    for (int k = b + lane; k < e; k += kGroup) {
      float w = p.val[k];
      const float* src = p.x + (size_t)p.col[k] * C;
#pragma unroll
      for (int c = 0; c < C; ++c) acc[c] += w * __ldg(src + c);
    }
  }
#pragma unroll
  for (int off = kGroup / 2; off > 0; off >>= 1)
#pragma unroll
    for (int c = 0; c < C; ++c) acc[c] += __shfl_xor_sync(0xffffffffu, acc[c], off, kGroup);
  if (active && lane == 0) {
    int o = p.seg_out ? p.seg_out[seg] : seg;
    float* dst = o >= 0 ? out_row(p, o) : p.partial + (size_t)(-1 - o) * C;
#pragma unroll
    for (int c = 0; c < C; ++c) dst[c] = acc[c];
  }
}

// y[row] = sum of the partial sums of a split row's segments (kGroup lanes per row, fixed
// reduction order).
__global__ void csr_combine_kernel(CsrGatherParams p) {
  int lane = threadIdx.x % kGroup;
  int i = (blockIdx.x * blockDim.x + threadIdx.x) / kGroup;
  bool active = i < p.split_rows;
  int C = p.channels;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  if (active) {
    for (int s = p.multi_ptr[i] + lane; s < p.multi_ptr[i + 1]; s += kGroup)
#pragma unroll
      for (int c = 0; c < 4; ++c)
        if (c < C) acc[c] += p.partial[(size_t)s * C + c];
  }
#pragma unroll
  for (int off = kGroup / 2; off > 0; off >>= 1)
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[c] += __shfl_xor_sync(0xffffffffu, acc[c], off, kGroup);
  if (active && lane == 0)
    for (int c = 0; c < C; ++c) out_row(p, p.multi_rows[i])[c] = acc[c];
}

void launch_csr_gather(const CsrGatherParams& p, cudaStream_t s) {
  if (p.segments == 0) return;
  const int threads = 256;
  long long total = (long long)p.segments * kGroup;
  int blocks = (int)((total + threads - 1) / threads);
  switch (p.channels) {
    case 1:
      csr_gather_kernel<1><<<blocks, threads, 0, s>>>(p);
      break;
    case 2:
      csr_gather_kernel<2><<<blocks, threads, 0, s>>>(p);
      break;
    case 3:
      csr_gather_kernel<3><<<blocks, threads, 0, s>>>(p);
      break;
    default:
      csr_gather_kernel<4><<<blocks, threads, 0, s>>>(p);
      break;
  }
  if (p.seg_out && p.split_rows > 0)
    csr_combine_kernel<<<div_up((long long)p.split_rows * kGroup, threads), threads, 0, s>>>(p);
}

}  // namespace nvdrec
