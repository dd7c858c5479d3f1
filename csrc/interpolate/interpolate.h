// Attribute interpolation: parameters and kernel launchers.
#pragma once
#include <cuda_runtime.h>

namespace nvdrec {

struct InterpParams {
  const float* attr;       // [A, V, C] with A = 1 (shared) or B
  int attr_batched;        // 1 when A == B > 1
  int num_vert, channels;  // V, C
  const float* rast;       // [B, H, W, 4]
  const float* rast_db;    // [B, H, W, 4] or null
  const int* tri;          // [T, 3]
  int num_batch, height, width;
  const int* diff_idx;  // channels whose pixel derivatives are wanted [D]
  int num_diff;         // D (0 = none)
  float* out;           // [B, H, W, C]
  float* out_da;        // [B, H, W, 2 D]
  // backward
  const float* grad_out;     // [B, H, W, C]
  const float* grad_out_da;  // [B, H, W, 2 D] or null
  float* grad_attr;          // like attr, accumulated
  float* grad_rast;          // [B, H, W, 4]
  float* grad_rast_db;       // [B, H, W, 4] or null
};

void launch_interpolate_fwd(const InterpParams& p, cudaStream_t s);
void launch_interpolate_bwd(const InterpParams& p, cudaStream_t s);

}  // namespace nvdrec
