// Torch glue for silhouette antialiasing.
#include "../common/common.h"
#include "../common/torch_utils.h"
#include "antialias.h"

namespace nvdrec {

static AAParams aa_params(torch::Tensor color, torch::Tensor rast, torch::Tensor pos, torch::Tensor tri,
                          torch::Tensor neighbor) {
  NVDREC_CHECK_INPUT(color, torch::kFloat32);
  NVDREC_CHECK_INPUT(rast, torch::kFloat32);
  NVDREC_CHECK_INPUT(pos, torch::kFloat32);
  NVDREC_CHECK_INPUT(tri, torch::kInt32);
  NVDREC_CHECK_INPUT(neighbor, torch::kInt32);
  AAParams p{};
  p.color = color.data_ptr<float>();
  p.rast = rast.data_ptr<float>();
  p.pos = pos.data_ptr<float>();
  p.instanced = pos.dim() == 3 ? 1 : 0;
  p.num_vert = (int)pos.size(-2);
  p.tri = tri.data_ptr<int>();
  p.neighbor = neighbor.data_ptr<int>();
  p.num_batch = (int)color.size(0);
  p.height = (int)color.size(1);
  p.width = (int)color.size(2);
  p.channels = (int)color.size(3);
  return p;
}

torch::Tensor antialias_fwd(torch::Tensor color, torch::Tensor rast, torch::Tensor pos, torch::Tensor tri,
                            torch::Tensor neighbor) {
  const c10::cuda::OptionalCUDAGuard guard(color.device());
  AAParams p = aa_params(color, rast, pos, tri, neighbor);
  auto out = color.clone();
  p.out = out.data_ptr<float>();
  launch_antialias_fwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return out;
}

std::vector<torch::Tensor> antialias_bwd(torch::Tensor color, torch::Tensor rast, torch::Tensor pos,
                                         torch::Tensor tri, torch::Tensor neighbor, torch::Tensor grad_out,
                                         double boost) {
  const c10::cuda::OptionalCUDAGuard guard(color.device());
  AAParams p = aa_params(color, rast, pos, tri, neighbor);
  NVDREC_CHECK_INPUT(grad_out, torch::kFloat32);
  auto grad_color = grad_out.clone();
  auto grad_pos = torch::zeros_like(pos);
  p.grad_out = grad_out.data_ptr<float>();
  p.grad_color = grad_color.data_ptr<float>();
  p.grad_pos = grad_pos.data_ptr<float>();
  p.boost = (float)boost;
  launch_antialias_bwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return {grad_color, grad_pos};
}

}  // namespace nvdrec
