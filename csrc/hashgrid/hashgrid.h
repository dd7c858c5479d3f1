// Multiresolution hash encoding: parameters and launchers (see nvdrec/ops/hashgrid.py).
#pragma once
#include <cuda_runtime.h>

namespace nvdrec {

constexpr int kMaxHashLevels = 32;

struct HashGridParams {
  const float* x;             // points [P, 3] in [0, 1]^3
  const float* table;         // [L, T, F]
  int num_points;             // P
  int levels;                 // L
  int features;               // F (1, 2, 4 or 8)
  unsigned table_size;        // T (power of two)
  int res[kMaxHashLevels];    // cells per axis of each level
  int dense[kMaxHashLevels];  // 1: level stored densely
  float* out;                 // [P, L * F]
  const float* grad_out;      // [P, L * F] (backward)
  float* grad_table;          // [L, T, F] (backward, accumulated)
  float* grad_x;              // [P, 3] (backward to the points; zero outside [0, 1])
};

void launch_hashgrid_fwd(const HashGridParams& p, cudaStream_t s);
void launch_hashgrid_bwd(const HashGridParams& p, cudaStream_t s);
void launch_hashgrid_bwd_input(const HashGridParams& p, cudaStream_t s);

}  // namespace nvdrec
