// Fused image losses: one pass over the pixels computes every term (forward: per-block
// partial sums in a fixed order, deterministic), the backward pass writes d loss / d img.
#include "../common/common.h"
#include "loss.h"

namespace nvdrec {

// log(x + 1) then the sRGB curve, and its derivative (x clamped to [0, 65535] first)
NVDREC_D float tonemap(float x, float& d) {
  float xc = fminf(fmaxf(x, 0.f), 65535.f);
  float dclamp = (x >= 0.f && x <= 65535.f) ? 1.f : 0.f;
  float f = logf(xc + 1.f);
  float df = dclamp / (xc + 1.f);
  if (f > 0.0031308f) {
    d = df * (1.055f / 2.4f) * powf(f, 1.f / 2.4f - 1.f);
    return powf(f, 1.f / 2.4f) * 1.055f - 0.055f;
  }
  d = df * 12.92f;
  return 12.92f * f;
}

NVDREC_D float sgn(float v) {
  return v > 0.f ? 1.f : (v < 0.f ? -1.f : 0.f);
}

// loss term of one element and its derivative with respect to x
NVDREC_D float loss_term(float x, float y, int type, float& dx) {
  switch (type) {
    case kL1: {
      float r = x - y;
      dx = sgn(r);
      return fabsf(r);
    }
    case kMse: {
      float r = x - y;
      dx = 2.f * r;
      return r * r;
    }
    case kLogL1:
    case kLogL2: {
      float dtx, dty;
      float r = tonemap(x, dtx) - tonemap(y, dty);
      if (type == kLogL1) {
        dx = sgn(r) * dtx;
        return fabsf(r);
      }
      dx = 2.f * r * dtx;
      return r * r;
    }
    case kSmape: {
      float r = x - y;
      float den = fabsf(x) + fabsf(y) + 0.01f;
      dx = sgn(r) / den - fabsf(r) * sgn(x) / (den * den);
      return fabsf(r) / den;
    }
    default: {  // kRelMse
      float r = x - y;
      float den = y * y + 0.01f;
      dx = 2.f * r / den;
      return r * r / den;
    }
  }
}

__global__ void image_loss_fwd_kernel(ImageLossParams p) {
  __shared__ float warp_sums[32];
  float acc = 0.f;
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += stride) {
    float d;
    acc += loss_term(p.img[i], p.ref[i], p.type, d);
  }
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    int nw = blockDim.x / 32;
    acc = lane < nw ? warp_sums[lane] : 0.f;
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (lane == 0) p.partial[blockIdx.x] = acc;
  }
}

__global__ void image_loss_bwd_kernel(ImageLossParams p) {
  float scale = *p.grad_out / (float)p.n;
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += stride) {
    float d;
    loss_term(p.img[i], p.ref[i], p.type, d);
    p.grad_img[i] = d * scale;
  }
}

void launch_image_loss_fwd(const ImageLossParams& p, cudaStream_t s) {
  image_loss_fwd_kernel<<<kLossBlocks, 256, 0, s>>>(p);
}

void launch_image_loss_bwd(const ImageLossParams& p, cudaStream_t s) {
  long long want = (p.n + 255) / 256;
  int blocks = (int)(want < 65535 ? (want > 0 ? want : 1) : 65535);
  image_loss_bwd_kernel<<<blocks, 256, 0, s>>>(p);
}

}  // namespace nvdrec
