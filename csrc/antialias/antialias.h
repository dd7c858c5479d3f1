// Silhouette antialiasing: parameters and kernel launchers (see nvdrec/ops/antialias.py).
#pragma once
#include <cuda_runtime.h>

namespace nvdrec {

struct AAParams {
  const float* color;   // [B, H, W, C]
  const float* rast;    // [B, H, W, 4]
  const float* pos;     // clip positions [B, V, 4] or [V, 4]
  int instanced;        // 1 when pos is [B, V, 4]
  int num_vert;         // V
  const int* tri;       // [T, 3]
  const int* neighbor;  // [T, 3] triangle across edge (k, k+1); -1 boundary, -2 non-manifold
  int num_batch, height, width, channels;
  float* out;  // [B, H, W, C], starts as a copy of color
  // backward
  const float* grad_out;  // [B, H, W, C]
  float* grad_color;      // [B, H, W, C], starts as a copy of grad_out
  float* grad_pos;        // like pos, accumulated
  float boost;            // pos_gradient_boost
};

void launch_antialias_fwd(const AAParams& p, cudaStream_t s);
void launch_antialias_bwd(const AAParams& p, cudaStream_t s);

}  // namespace nvdrec
