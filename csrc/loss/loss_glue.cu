// Torch glue for the fused image losses.
#include "../common/common.h"
#include "../common/torch_utils.h"
#include "loss.h"

namespace nvdrec {

static ImageLossParams loss_params(torch::Tensor img, torch::Tensor ref, int64_t type) {
  NVDREC_CHECK_INPUT(img, torch::kFloat32);
  NVDREC_CHECK_INPUT(ref, torch::kFloat32);
  TORCH_CHECK(img.sizes() == ref.sizes(), "image_loss: img ", img.sizes(), " and ref ", ref.sizes(),
              " differ in shape");
  TORCH_CHECK(type >= 0 && type <= 5, "image_loss: unknown loss type ", type);
  ImageLossParams p{};
  p.img = img.data_ptr<float>();
  p.ref = ref.data_ptr<float>();
  p.n = img.numel();
  p.type = (int)type;
  return p;
}

torch::Tensor image_loss_fwd(torch::Tensor img, torch::Tensor ref, int64_t type) {
  const c10::cuda::OptionalCUDAGuard guard(img.device());
  ImageLossParams p = loss_params(img, ref, type);
  auto partial = torch::empty({kLossBlocks}, img.options());
  p.partial = partial.data_ptr<float>();
  launch_image_loss_fwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return partial.sum() / (double)std::max<int64_t>(p.n, 1);
}

torch::Tensor image_loss_bwd(torch::Tensor img, torch::Tensor ref, int64_t type, torch::Tensor grad_out) {
  const c10::cuda::OptionalCUDAGuard guard(img.device());
  ImageLossParams p = loss_params(img, ref, type);
  NVDREC_CHECK_INPUT(grad_out, torch::kFloat32);
  TORCH_CHECK(grad_out.numel() == 1, "image_loss: the upstream gradient must be a scalar");
  auto grad = torch::empty_like(img);
  p.grad_out = grad_out.data_ptr<float>();
  p.grad_img = grad.data_ptr<float>();
  if (p.n > 0) launch_image_loss_bwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return grad;
}

}  // namespace nvdrec
