// Light filtering as a sparse gather (see nvdrec/ops/cubemap.py, CubeFilterOperator).
#pragma once
#include <cuda_runtime.h>

namespace nvdrec {

struct CsrGatherParams {
  const int* row_ptr;  // [segments + 1] entry ranges (plain CSR: one segment per row)
  const int* col;      // [nnz]
  const float* val;    // [nnz]
  const float* x;      // [cols, C]
  float* y;            // [rows, C], or rows < split_at when split_at > 0
  float* y2;           // rows >= split_at (split_at > 0)
  int split_at;
  int segments;  // ranges in row_ptr
  int channels;  // C (1..4)
  // Long rows split into several segments (balanced work): null for plain CSR.
  const int* seg_out;     // [segments] output row (>= 0) or -(1 + partial slot)
  float* partial;         // [slots, C] sums of the segments of split rows
  const int* multi_ptr;   // [split rows + 1] slot ranges of each split row
  const int* multi_rows;  // [split rows] their output rows
  int split_rows;
};

void launch_csr_gather(const CsrGatherParams& p, cudaStream_t s);

}  // namespace nvdrec
