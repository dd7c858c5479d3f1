// Fused split-sum shading (see EnvironmentLight.shade in nvdrec/render/light.py).
#pragma once
#include <cuda_runtime.h>

namespace nvdrec {

constexpr int kMaxSpecLevels = 16;

struct ShadeParams {
  // per-pixel inputs, P = B * pix_per_batch pixels
  const float* pos;   // [P, 3] surface points
  const float* nrm;   // [P, 3] shading normals (used as given)
  const float* kd;    // [P, kd_stride] base colour (first 3 channels used)
  int kd_stride;      // floats between consecutive pixels of kd (>= 3)
  const float* ks;    // [P, 3] (occlusion, roughness, metallic)
  const float* view;  // [B or 1, 3] camera positions
  int view_batched;   // 1: one camera per batch entry
  const float* rot;   // [B, 9] row-major rotation of light lookups, or null
  long long pix_per_batch;
  long long total;  // P
  int specular;     // 0: diffuse only (color = irradiance * kd)
  // light
  const float* diffuse;  // [6 * diff_n^2, 3] irradiance cube map
  int diff_n;
  const float* spec;  // specular levels concatenated: [sum 6 n_k^2, 3]
  int spec_levels;
  int spec_off[kMaxSpecLevels];  // first texel of each level
  int spec_n[kMaxSpecLevels];    // face size of each level
  float min_rough, max_rough;    // roughness -> level mapping (EnvironmentLight)
  const float* lut;              // [lut_n, lut_n, 2] split-sum table, rows = roughness
  int lut_n;
  float* out;  // [P, 3]
  // backward
  const float* grad_out;  // [P, 3]
  float* g_pos;           // [P, 3]
  float* g_nrm;           // [P, 3]
  float* g_kd;            // [P, 3]
  float* g_ks;            // [P, 3]
  float* g_diffuse;       // like diffuse (accumulated; null: no gradient)
  float* g_spec;          // like spec (accumulated; null: no gradient)
};

void launch_shade_fwd(const ShadeParams& p, cudaStream_t s);
void launch_shade_bwd(const ShadeParams& p, int sms, cudaStream_t s);

}  // namespace nvdrec
