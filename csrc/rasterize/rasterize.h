// Rasterization: parameters and kernel launchers (see nvdrec/ops/rasterize.py for the math).
#pragma once
#include <cuda_runtime.h>

namespace nvdrec {

struct RasterParams {
  const float* pos;       // clip positions [B, V, 4] (instanced) or [V, 4] (range mode)
  const int* tri;         // triangle vertex indices [T, 3]
  const int* slot_batch;  // range mode: image of each slot [N]; null when instanced
  const int* slot_tri;    // range mode: triangle of each slot [N]; null when instanced
  int num_batch;          // B (images)
  int num_vert;           // V
  int num_tri;            // T
  int num_slots;          // N = B * T (instanced) or the sum of range counts
  int instanced;          // 1: pos is [B, V, 4]
  int height, width;      // output resolution
  float* setup;           // per slot: A[3], Bx[3], By[3], z[3], w[3], pad -> [N, 16]
  int4* bbox;             // per slot pixel box (x0, x1, y0, y1); x1 < x0 when culled
  int* chunks;            // per slot number of work chunks, then inclusive prefix sums
  long long* keys;        // per pixel winning key [B * H * W]
  const long long* prev;  // per pixel key of the previous depth layer, or null
  float* rast;            // output [B, H, W, 4]
  float* rast_db;         // output [B, H, W, 4]
  long long* key_out;     // output keys (-1 where empty) [B * H * W]
  int max_work_blocks;    // grid size of the persistent raster kernel
};

struct RasterGradParams {
  const float* pos;  // as in RasterParams
  const int* tri;
  int instanced, num_vert, num_batch, height, width;
  const float* rast;       // forward output [B, H, W, 4]
  const float* grad_rast;  // [B, H, W, 4]
  const float* grad_db;    // [B, H, W, 4] or null
  float* grad_pos;         // [B, V, 4] or [V, 4], accumulated
};

void launch_raster_setup(const RasterParams& p, cudaStream_t s);
void launch_raster_cover(const RasterParams& p, cudaStream_t s);
void launch_raster_resolve(const RasterParams& p, cudaStream_t s);
void launch_raster_grad(const RasterGradParams& p, cudaStream_t s);

constexpr int kRasterChunk = 16;
constexpr float kMaxDb =
    1e4f;  // bound of |rast_db| (see docs/ops.md)  // pixels of one triangle's box handled per work item

}  // namespace nvdrec
