// Light filtering as a sparse gather (see nvdrec/ops/cubemap.py, CubeFilterOperator).
#pragma once
#include <cuda_runtime.h>

namespace nvdrec {

struct CsrGatherParams {
  const int* row_ptr;  // [rows + 1]
  const int* col;      // [nnz]
  const float* val;    // [nnz]
  const float* x;      // [cols, C]
  float* y;            // [rows, C]
  int rows;
  int channels;        // C (1..4)
};

void launch_csr_gather(const CsrGatherParams& p, cudaStream_t s);

}  // namespace nvdrec
