// Texture sampling: parameters and kernel launchers (see nvdrec/ops/texture.py).
#pragma once
#include <cuda_runtime.h>

namespace nvdrec {

constexpr int kMaxMipLevels = 16;

struct TexParams {
  const float* base;             // level 0: [Bt, N0, C]
  const float* buf;              // levels 1.. flattened per batch: [Bt, N, C] (may be null)
  int tex_batched;               // 1 when Bt == B > 1
  long long base_texels;         // N0 (times 6 for cube maps)
  long long texels;              // N (texels of levels 1.., times 6 for cube maps)
  int channels;                  // C
  int num_levels;                // levels in buf
  int level_off[kMaxMipLevels];  // first texel of each level in its buffer (level 0: base)
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
  const float* grad_out;  // [B, P, C]
  float* grad_base;       // like base, accumulated
  float* grad_buf;        // like buf, accumulated
  float* grad_uv;         // like uv
  float* grad_uv_da;      // like uv_da or null
  float* grad_bias;       // like bias or null
};

struct MipParams {
  const float* src;                  // level k-1 [N, h, w, C] (N = images, x6 faces for cube maps)
  float* dst;                        // level k [N, ho, wo, C]
  long long src_stride, dst_stride;  // elements between consecutive images
  int n, h, w, ho, wo, c;
};

void launch_texture_fwd(const TexParams& p, cudaStream_t s);
void launch_mip_down(const MipParams& p, cudaStream_t s);
void launch_mip_up_grad(const MipParams& p, cudaStream_t s);  // dst grad -> src grad (+=)
void launch_texture_bwd(const TexParams& p, cudaStream_t s);

}  // namespace nvdrec
