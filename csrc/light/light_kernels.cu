// y = A x for a CSR matrix A and a dense x with C <= 4 channels. A group of kGroup lanes
// works on one row: the lanes stride over the row's entries (coalesced loads of col/val),
// then reduce with shuffles in a fixed order, so the result is deterministic. The
// transpose is stored separately, so the backward pass is the same kernel.
#include "../common/common.h"
#include "light_filter.h"

namespace nvdrec {

constexpr int kGroup = 8;

template <int C>
__global__ void csr_gather_kernel(CsrGatherParams p) {
  int lane = threadIdx.x % kGroup;
  int row = (blockIdx.x * blockDim.x + threadIdx.x) / kGroup;
  bool active = row < p.rows;
  float acc[C];
#pragma unroll
  for (int c = 0; c < C; ++c) acc[c] = 0.f;
  if (active) {
    int b = p.row_ptr[row], e = p.row_ptr[row + 1];
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
#pragma unroll
    for (int c = 0; c < C; ++c) p.y[(size_t)row * C + c] = acc[c];
  }
}

void launch_csr_gather(const CsrGatherParams& p, cudaStream_t s) {
  if (p.rows == 0) return;
  const int threads = 256;
  long long total = (long long)p.rows * kGroup;
  int blocks = (int)((total + threads - 1) / threads);
  switch (p.channels) {
    case 1: csr_gather_kernel<1><<<blocks, threads, 0, s>>>(p); break;
    case 2: csr_gather_kernel<2><<<blocks, threads, 0, s>>>(p); break;
    case 3: csr_gather_kernel<3><<<blocks, threads, 0, s>>>(p); break;
    default: csr_gather_kernel<4><<<blocks, threads, 0, s>>>(p); break;
  }
}

}  // namespace nvdrec
