// Torch glue for the light-filter gather.
#include "../common/common.h"
#include "../common/torch_utils.h"
#include "light_filter.h"

namespace nvdrec {

torch::Tensor csr_gather(torch::Tensor row_ptr, torch::Tensor col, torch::Tensor val, torch::Tensor x) {
  const c10::cuda::OptionalCUDAGuard guard(x.device());
  NVDREC_CHECK_INPUT(row_ptr, torch::kInt32);
  NVDREC_CHECK_INPUT(col, torch::kInt32);
  NVDREC_CHECK_INPUT(val, torch::kFloat32);
  NVDREC_CHECK_INPUT(x, torch::kFloat32);
  TORCH_CHECK(x.dim() == 2 && x.size(1) >= 1 && x.size(1) <= 4,
              "csr_gather: x must be [K, C] with 1 <= C <= 4, got ", x.sizes());
  TORCH_CHECK(col.numel() == val.numel(), "csr_gather: col and val differ in length (", col.numel(),
              " vs ", val.numel(), ")");
  TORCH_CHECK(row_ptr.numel() >= 1 && row_ptr.numel() - 1 < (1LL << 31) / 8, "csr_gather: bad row_ptr length");
  CsrGatherParams p{};
  p.rows = (int)row_ptr.numel() - 1;
  p.channels = (int)x.size(1);
  auto y = torch::empty({(int64_t)p.rows, x.size(1)}, x.options());
  p.row_ptr = row_ptr.data_ptr<int>();
  p.col = col.data_ptr<int>();
  p.val = val.data_ptr<float>();
  p.x = x.data_ptr<float>();
  p.y = y.data_ptr<float>();
  launch_csr_gather(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return y;
}

}  // namespace nvdrec
