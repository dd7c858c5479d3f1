// Torch glue for texture sampling. The mip chain arrives flattened (built by torch ops, so
// that its own gradient is handled by autograd): buf [Bt, N, C] and per-level tables.
#include "../common/common.h"
#include "../common/torch_utils.h"
#include "texture.h"

namespace nvdrec {

static TexParams tex_params(torch::Tensor base, torch::Tensor buf, std::vector<int64_t> offs,
                            std::vector<int64_t> hs, std::vector<int64_t> ws, bool cube, int64_t boundary,
                            int64_t filter, torch::Tensor uv, c10::optional<torch::Tensor> uv_da,
                            c10::optional<torch::Tensor> bias) {
  NVDREC_CHECK_INPUT(base, torch::kFloat32);
  NVDREC_CHECK_INPUT(buf, torch::kFloat32);
  NVDREC_CHECK_INPUT(uv, torch::kFloat32);
  TORCH_CHECK(base.dim() == 3 && buf.dim() == 3, "base and buf must be [Bt, N, C]");
  TORCH_CHECK(offs.size() >= 1 && offs.size() <= kMaxMipLevels, "1..", kMaxMipLevels,
              " mip levels supported, got ", offs.size());
  TexParams p{};
  p.base = base.data_ptr<float>();
  p.buf = buf.numel() ? buf.data_ptr<float>() : nullptr;
  p.tex_batched = base.size(0) > 1 ? 1 : 0;
  p.base_texels = base.size(1);
  p.texels = buf.size(1);
  p.channels = (int)base.size(2);
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

torch::Tensor texture_fwd(torch::Tensor base, torch::Tensor buf, std::vector<int64_t> offs,
                          std::vector<int64_t> hs, std::vector<int64_t> ws, bool cube, int64_t boundary,
                          int64_t filter, torch::Tensor uv, c10::optional<torch::Tensor> uv_da,
                          c10::optional<torch::Tensor> bias) {
  const c10::cuda::OptionalCUDAGuard guard(base.device());
  TexParams p = tex_params(base, buf, offs, hs, ws, cube, boundary, filter, uv, uv_da, bias);
  auto sizes = uv.sizes().vec();
  sizes.back() = p.channels;
  auto out = torch::empty(sizes, base.options());
  p.out = out.data_ptr<float>();
  launch_texture_fwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return out;
}

std::vector<torch::Tensor> texture_bwd(torch::Tensor base, torch::Tensor buf, std::vector<int64_t> offs,
                                       std::vector<int64_t> hs, std::vector<int64_t> ws, bool cube,
                                       int64_t boundary, int64_t filter, torch::Tensor uv,
                                       c10::optional<torch::Tensor> uv_da, c10::optional<torch::Tensor> bias,
                                       torch::Tensor grad_out) {
  const c10::cuda::OptionalCUDAGuard guard(base.device());
  TexParams p = tex_params(base, buf, offs, hs, ws, cube, boundary, filter, uv, uv_da, bias);
  NVDREC_CHECK_INPUT(grad_out, torch::kFloat32);
  auto grad_base = torch::zeros_like(base);
  auto grad_buf = torch::zeros_like(buf);
  auto grad_uv = torch::empty_like(uv);
  torch::Tensor grad_da =
      uv_da.has_value() ? torch::empty_like(uv_da.value()) : torch::zeros({0}, uv.options());
  torch::Tensor grad_bias =
      bias.has_value() ? torch::empty_like(bias.value()) : torch::zeros({0}, uv.options());
  p.grad_out = grad_out.data_ptr<float>();
  p.grad_base = grad_base.data_ptr<float>();
  p.grad_buf = grad_buf.numel() ? grad_buf.data_ptr<float>() : nullptr;
  p.grad_uv = grad_uv.data_ptr<float>();
  if (uv_da.has_value()) p.grad_uv_da = grad_da.data_ptr<float>();
  if (bias.has_value()) p.grad_bias = grad_bias.data_ptr<float>();
  launch_texture_bwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return {grad_base, grad_buf, grad_uv, grad_da, grad_bias};
}

// Step k-1 -> k of a mip chain whose level 0 is `level0` [n, H, W, c] (H * W = texels0)
// and whose levels 1.. lie in `buf` [n, total, c] at texel offsets `offs`.
static MipParams mip_step(const float* level0, long long texels0, float* buf, const std::vector<int64_t>& hs,
                          const std::vector<int64_t>& ws, const std::vector<int64_t>& offs, int64_t total,
                          int n, int c, size_t k) {
  MipParams m{};
  m.src = k == 1 ? level0 : buf + offs[k - 1] * c;
  m.src_stride = k == 1 ? texels0 * c : total * c;
  m.dst = buf + offs[k] * c;
  m.dst_stride = total * c;
  m.n = n, m.c = c, m.h = (int)hs[k - 1], m.w = (int)ws[k - 1], m.ho = (int)hs[k], m.wo = (int)ws[k];
  return m;
}

// Mip levels 1..L-1 of images [N, H, W, C] in one buffer [N, M, C]; sizes halve (floor,
// at least 1) with area averaging. Returns the buffer.
torch::Tensor mip_build(torch::Tensor tex, std::vector<int64_t> hs, std::vector<int64_t> ws,
                        std::vector<int64_t> offs, int64_t total) {
  NVDREC_CHECK_INPUT(tex, torch::kFloat32);
  TORCH_CHECK(tex.dim() == 4, "tex must be [N, H, W, C]");
  const c10::cuda::OptionalCUDAGuard guard(tex.device());
  int n = (int)tex.size(0), c = (int)tex.size(3);
  long long texels0 = tex.size(1) * tex.size(2);
  auto out = torch::empty({n, total, c}, tex.options());
  auto stream = nvdrec_stream();
  for (size_t k = 1; k < hs.size(); ++k) {
    launch_mip_down(
        mip_step(tex.data_ptr<float>(), texels0, out.data_ptr<float>(), hs, ws, offs, total, n, c, k),
        stream);
    NVDREC_CHECK_LAUNCH();
  }
  return out;
}

// Gradient of mip_build: grad_mips [N, M, C] (consumed: coarse-level gradients are pushed
// down in place) plus the direct gradient of level 0 -> gradient of tex.
torch::Tensor mip_build_bwd(torch::Tensor grad_tex, torch::Tensor grad_mips, std::vector<int64_t> hs,
                            std::vector<int64_t> ws, std::vector<int64_t> offs, int64_t total) {
  NVDREC_CHECK_INPUT(grad_tex, torch::kFloat32);
  NVDREC_CHECK_INPUT(grad_mips, torch::kFloat32);
  const c10::cuda::OptionalCUDAGuard guard(grad_tex.device());
  int n = (int)grad_tex.size(0), c = (int)grad_tex.size(3);
  long long texels0 = grad_tex.size(1) * grad_tex.size(2);
  auto stream = nvdrec_stream();
  for (size_t k = hs.size() - 1; k >= 1; --k) {
    launch_mip_up_grad(mip_step(grad_tex.data_ptr<float>(), texels0, grad_mips.data_ptr<float>(), hs, ws,
                                offs, total, n, c, k),
                       stream);
    NVDREC_CHECK_LAUNCH();
  }
  return grad_tex;
}

}  // namespace nvdrec
