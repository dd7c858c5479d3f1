// Torch glue for the hash-grid encoding.
#include "../common/common.h"
#include "../common/torch_utils.h"
#include "hashgrid.h"

namespace nvdrec {

static HashGridParams hg_params(torch::Tensor x, torch::Tensor table, std::vector<int64_t> res,
                                std::vector<int64_t> dense) {
  NVDREC_CHECK_INPUT(x, torch::kFloat32);
  NVDREC_CHECK_INPUT(table, torch::kFloat32);
  TORCH_CHECK(table.dim() == 3, "table must be [L, T, F]");
  TORCH_CHECK(table.size(0) <= kMaxHashLevels, "at most ", kMaxHashLevels, " levels");
  int f = (int)table.size(2);
  TORCH_CHECK(f == 1 || f == 2 || f == 4 || f == 8, "features per level must be 1, 2, 4 or 8, got ", f);
  TORCH_CHECK(x.size(0) < (1LL << 31), "too many points");
  HashGridParams p{};
  p.x = x.data_ptr<float>();
  p.table = table.data_ptr<float>();
  p.num_points = (int)x.size(0);
  p.levels = (int)table.size(0);
  p.features = f;
  p.table_size = (unsigned)table.size(1);
  for (int l = 0; l < p.levels; ++l) {
    p.res[l] = (int)res[l];
    p.dense[l] = (int)dense[l];
  }
  return p;
}

torch::Tensor hashgrid_fwd(torch::Tensor x, torch::Tensor table, std::vector<int64_t> res,
                           std::vector<int64_t> dense) {
  const c10::cuda::OptionalCUDAGuard guard(x.device());
  HashGridParams p = hg_params(x, table, res, dense);
  auto out = torch::empty({x.size(0), p.levels * p.features}, x.options());
  p.out = out.data_ptr<float>();
  launch_hashgrid_fwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return out;
}

// The gradient of the loss with respect to the table (zeros, accumulated by atomics) or,
// with wrt_x, to the points.
static torch::Tensor hg_backward(torch::Tensor x, torch::Tensor table, std::vector<int64_t> res,
                                 std::vector<int64_t> dense, torch::Tensor grad_out, bool wrt_x) {
  const c10::cuda::OptionalCUDAGuard guard(x.device());
  HashGridParams p = hg_params(x, table, res, dense);
  NVDREC_CHECK_INPUT(grad_out, torch::kFloat32);
  p.grad_out = grad_out.data_ptr<float>();
  torch::Tensor grad = wrt_x ? torch::empty_like(x) : torch::zeros_like(table);
  if (wrt_x) {
    p.grad_x = grad.data_ptr<float>();
    launch_hashgrid_bwd_input(p, nvdrec_stream());
  } else {
    p.grad_table = grad.data_ptr<float>();
    launch_hashgrid_bwd(p, nvdrec_stream());
  }
  NVDREC_CHECK_LAUNCH();
  return grad;
}

torch::Tensor hashgrid_bwd(torch::Tensor x, torch::Tensor table, std::vector<int64_t> res,
                           std::vector<int64_t> dense, torch::Tensor grad_out) {
  return hg_backward(x, table, res, dense, grad_out, false);
}

torch::Tensor hashgrid_bwd_input(torch::Tensor x, torch::Tensor table, std::vector<int64_t> res,
                                 std::vector<int64_t> dense, torch::Tensor grad_out) {
  return hg_backward(x, table, res, dense, grad_out, true);
}

}  // namespace nvdrec
