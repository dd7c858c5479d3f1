// Texture sampling: parameters and kernel launchers (see nvdrec/ops/texture.py).
#pragma once
#include <cuda_runtime.h>

namespace nvdrec {

constexpr int kMaxMipLevels = 16;

struct TexParams {
  const float* buf;              // mip chain flattened per batch: [Bt, N, C]
  int tex_batched;               // 1 when Bt == B > 1
  long long texels;              // N (texels of all levels, times 6 for cube maps)
  int channels;                  // C
  int num_levels;                // levels in buf
  int level_off[kMaxMipLevels];  // first texel of each level
  int level_h[kMaxMipLevels];    // level height (cube: face size)
  int level_w[kMaxMipLevels];    // level width
  int cube;                      // 1: cube map, uv holds directions
  int boundary;                  // 0 wrap, 1 clamp, 2 zero (ignored for cube maps)
  int filter;                    // 0 nearest, 1 linear, 2 linear-mipmap-nearest, 3 linear-mipmap-linear
  const float* uv;               // [B, P, 2] or [B, P, 3]
  const float* uv_da;            // [B, P, 4] or [B, P, 6], or null
  const float* bias;             // [B, P] or null
  int num_batch;                 // B
  long long pix_per_batch;       // P
  float* out;                    // [B, P, C]
  // backward
  const float* grad_out;         // [B, P, C]
  float* grad_buf;               // like buf, accumulated
  float* grad_uv;                // like uv
  float* grad_uv_da;             // like uv_da or null
  float* grad_bias;              // like bias or null
};

void launch_texture_fwd(const TexParams& p, cudaStream_t s);
void launch_texture_bwd(const TexParams& p, cudaStream_t s);

}  // namespace nvdrec
