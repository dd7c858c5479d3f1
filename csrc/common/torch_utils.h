// Argument checks for the torch glue of every op family.
#pragma once
#include <torch/extension.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#define NVDREC_CHECK_CUDA(x) TORCH_CHECK((x).is_cuda(), #x " must be a CUDA tensor")
#define NVDREC_CHECK_CONTIG(x) TORCH_CHECK((x).is_contiguous(), #x " must be contiguous")
#define NVDREC_CHECK_DTYPE(x, t) \
  TORCH_CHECK((x).scalar_type() == (t), #x " must have dtype " #t ", got ", (x).scalar_type())
#define NVDREC_CHECK_INPUT(x, t) \
  NVDREC_CHECK_CUDA(x);          \
  NVDREC_CHECK_CONTIG(x);        \
  NVDREC_CHECK_DTYPE(x, t)
#define NVDREC_CHECK_LAUNCH() C10_CUDA_KERNEL_LAUNCH_CHECK()

inline cudaStream_t nvdrec_stream() {
  return c10::cuda::getCurrentCUDAStream().stream();
}

inline int nvdrec_sm_count() {
  int dev = 0, sms = 0;
  C10_CUDA_CHECK(cudaGetDevice(&dev));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms;
}
