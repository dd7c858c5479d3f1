// Torch glue for texture sampling. The mip chain arrives flattened (built by torch ops, so
// that its own gradient is handled by autograd): buf [Bt, N, C] and per-level tables.
#include "../common/common.h"
#include "../common/torch_utils.h"
#include "texture.h"

namespace nvdrec {

static TexParams tex_params(torch::Tensor buf, std::vector<int64_t> offs, std::vector<int64_t> hs,
                            std::vector<int64_t> ws, bool cube, int64_t boundary, int64_t filter,
                            torch::Tensor uv, c10::optional<torch::Tensor> uv_da,
                            c10::optional<torch::Tensor> bias) {
  NVDREC_CHECK_INPUT(buf, torch::kFloat32);
  NVDREC_CHECK_INPUT(uv, torch::kFloat32);
  TORCH_CHECK(buf.dim() == 3, "buf must be [Bt, N, C]");
  TORCH_CHECK(offs.size() >= 1 && offs.size() <= kMaxMipLevels, "1..", kMaxMipLevels,
              " mip levels supported, got ", offs.size());
  TexParams p{};
  p.buf = buf.data_ptr<float>();
  p.tex_batched = buf.size(0) > 1 ? 1 : 0;
  p.texels = buf.size(1);
  p.channels = (int)buf.size(2);
  p.num_levels = (int)offs.size();
  for (size_t i = 0; i < offs.size(); ++i) {
    p.level_off[i] = (int)offs[i];
    p.level_h[i] = (int)hs[i];
    p.level_w[i] = (int)ws[i];
  }
  p.cube = cube ? 1 : 0;
  p.boundary = (int)boundary;
  p.filter = (int)filter;
  p.uv = uv.data_ptr<float>();
  p.num_batch = (int)uv.size(0);
  p.pix_per_batch = uv.numel() / uv.size(0) / uv.size(-1);
  TORCH_CHECK(uv.size(-1) == (cube ? 3 : 2), "uv has the wrong last dimension");
  if (uv_da.has_value()) {
    NVDREC_CHECK_INPUT(uv_da.value(), torch::kFloat32);
    p.uv_da = uv_da.value().data_ptr<float>();
  }
  if (bias.has_value()) {
    NVDREC_CHECK_INPUT(bias.value(), torch::kFloat32);
    p.bias = bias.value().data_ptr<float>();
  }
  return p;
}

torch::Tensor texture_fwd(torch::Tensor buf, std::vector<int64_t> offs, std::vector<int64_t> hs,
                          std::vector<int64_t> ws, bool cube, int64_t boundary, int64_t filter,
                          torch::Tensor uv, c10::optional<torch::Tensor> uv_da,
                          c10::optional<torch::Tensor> bias) {
  const c10::cuda::OptionalCUDAGuard guard(buf.device());
  TexParams p = tex_params(buf, offs, hs, ws, cube, boundary, filter, uv, uv_da, bias);
  auto sizes = uv.sizes().vec();
  sizes.back() = p.channels;
  auto out = torch::empty(sizes, buf.options());
  p.out = out.data_ptr<float>();
  launch_texture_fwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return out;
}

std::vector<torch::Tensor> texture_bwd(torch::Tensor buf, std::vector<int64_t> offs,
                                       std::vector<int64_t> hs, std::vector<int64_t> ws, bool cube,
                                       int64_t boundary, int64_t filter, torch::Tensor uv,
                                       c10::optional<torch::Tensor> uv_da,
                                       c10::optional<torch::Tensor> bias, torch::Tensor grad_out) {
  const c10::cuda::OptionalCUDAGuard guard(buf.device());
  TexParams p = tex_params(buf, offs, hs, ws, cube, boundary, filter, uv, uv_da, bias);
  NVDREC_CHECK_INPUT(grad_out, torch::kFloat32);
  auto grad_buf = torch::zeros_like(buf);
  auto grad_uv = torch::empty_like(uv);
  torch::Tensor grad_da = uv_da.has_value() ? torch::empty_like(uv_da.value()) : torch::zeros({0}, uv.options());
  torch::Tensor grad_bias = bias.has_value() ? torch::empty_like(bias.value()) : torch::zeros({0}, uv.options());
  p.grad_out = grad_out.data_ptr<float>();
  p.grad_buf = grad_buf.data_ptr<float>();
  p.grad_uv = grad_uv.data_ptr<float>();
  if (uv_da.has_value()) p.grad_uv_da = grad_da.data_ptr<float>();
  if (bias.has_value()) p.grad_bias = grad_bias.data_ptr<float>();
  launch_texture_bwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return {grad_buf, grad_uv, grad_da, grad_bias};
}

}  // namespace nvdrec
