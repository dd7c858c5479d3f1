// Torch glue for attribute interpolation.
#include "../common/common.h"
#include "../common/torch_utils.h"
#include "interpolate.h"

namespace nvdrec {

static InterpParams interp_params(torch::Tensor attr, torch::Tensor rast, torch::Tensor tri,
                                  c10::optional<torch::Tensor> rast_db, torch::Tensor diff_idx) {
  NVDREC_CHECK_INPUT(attr, torch::kFloat32);
  NVDREC_CHECK_INPUT(rast, torch::kFloat32);
  NVDREC_CHECK_INPUT(tri, torch::kInt32);
  TORCH_CHECK(attr.dim() == 3, "attr must be [A, V, C] here");
  InterpParams p{};
  p.attr = attr.data_ptr<float>();
  p.attr_batched = attr.size(0) > 1 ? 1 : 0;
  p.num_vert = (int)attr.size(1);
  p.channels = (int)attr.size(2);
  p.rast = rast.data_ptr<float>();
  p.tri = tri.data_ptr<int>();
  p.num_batch = (int)rast.size(0);
  p.height = (int)rast.size(1);
  p.width = (int)rast.size(2);
  p.num_diff = (int)diff_idx.numel();
  if (p.num_diff) {
    TORCH_CHECK(rast_db.has_value(), "diff_attrs needs rast_db");
    NVDREC_CHECK_INPUT(rast_db.value(), torch::kFloat32);
    NVDREC_CHECK_INPUT(diff_idx, torch::kInt32);
    p.rast_db = rast_db.value().data_ptr<float>();
    p.diff_idx = diff_idx.data_ptr<int>();
  }
  return p;
}

std::vector<torch::Tensor> interpolate_fwd(torch::Tensor attr, torch::Tensor rast, torch::Tensor tri,
                                           c10::optional<torch::Tensor> rast_db, torch::Tensor diff_idx) {
  const c10::cuda::OptionalCUDAGuard guard(attr.device());
  InterpParams p = interp_params(attr, rast, tri, rast_db, diff_idx);
  auto out = torch::empty({p.num_batch, p.height, p.width, p.channels}, attr.options());
  auto out_da = torch::empty({p.num_batch, p.height, p.width, 2 * p.num_diff}, attr.options());
  p.out = out.data_ptr<float>();
  p.out_da = out_da.data_ptr<float>();
  launch_interpolate_fwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return {out, out_da};
}

std::vector<torch::Tensor> interpolate_bwd(torch::Tensor attr, torch::Tensor rast, torch::Tensor tri,
                                           c10::optional<torch::Tensor> rast_db, torch::Tensor diff_idx,
                                           torch::Tensor grad_out, c10::optional<torch::Tensor> grad_out_da) {
  const c10::cuda::OptionalCUDAGuard guard(attr.device());
  InterpParams p = interp_params(attr, rast, tri, rast_db, diff_idx);
  NVDREC_CHECK_INPUT(grad_out, torch::kFloat32);
  auto grad_attr = torch::zeros_like(attr);
  auto grad_rast = torch::empty_like(rast);
  torch::Tensor grad_db;
  p.grad_out = grad_out.data_ptr<float>();
  p.grad_attr = grad_attr.data_ptr<float>();
  p.grad_rast = grad_rast.data_ptr<float>();
  if (p.num_diff) {
    grad_db = torch::empty_like(rast);
    p.grad_rast_db = grad_db.data_ptr<float>();
    if (grad_out_da.has_value()) {
      NVDREC_CHECK_INPUT(grad_out_da.value(), torch::kFloat32);
      p.grad_out_da = grad_out_da.value().data_ptr<float>();
    }
  } else {
    grad_db = torch::zeros({0}, rast.options());
  }
  launch_interpolate_bwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return {grad_attr, grad_rast, grad_db};
}

}  // namespace nvdrec
