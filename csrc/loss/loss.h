// Fused image losses (see nvdrec/ops/loss.py for the definitions).
#pragma once
#include <cuda_runtime.h>

namespace nvdrec {

enum LossType { kL1 = 0, kMse = 1, kLogL1 = 2, kLogL2 = 3, kSmape = 4, kRelMse = 5 };

struct ImageLossParams {
  const float* img;       // [N]
  const float* ref;       // [N]
  long long n;            // element count
  int type;               // LossType
  float* partial;         // [blocks] per-block sums (forward)
  const float* grad_out;  // scalar upstream gradient (backward, device memory)
  float* grad_img;        // [N] (backward)
};

constexpr int kLossBlocks = 1024;

void launch_image_loss_fwd(const ImageLossParams& p, cudaStream_t s);
void launch_image_loss_bwd(const ImageLossParams& p, cudaStream_t s);

}  // namespace nvdrec
