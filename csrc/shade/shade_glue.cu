// Torch glue for the fused split-sum shading.
#include "../common/common.h"
#include "../common/torch_utils.h"
#include "shade.h"

namespace nvdrec {

static void check_pixels(const char* name, const torch::Tensor& t, int64_t total) {
  NVDREC_CHECK_CUDA(t);
  NVDREC_CHECK_DTYPE(t, torch::kFloat32);
  TORCH_CHECK(t.dim() == 2 && t.size(0) == total && t.size(1) == 3 && t.stride(1) == 1 && t.stride(0) == 3,
              "shade: ", name, " must be a contiguous [P, 3] tensor with P = ", total, ", got ", t.sizes());
}

static ShadeParams shade_params(torch::Tensor pos, torch::Tensor nrm, torch::Tensor kd, torch::Tensor ks,
                                torch::Tensor view, c10::optional<torch::Tensor> rot, int64_t batch,
                                bool specular, torch::Tensor diffuse, torch::Tensor spec,
                                std::vector<int64_t> spec_sizes, torch::Tensor lut, double min_rough,
                                double max_rough) {
  int64_t total = pos.size(0);
  TORCH_CHECK(batch >= 1 && total % batch == 0, "shade: ", total, " pixels do not split into ", batch,
              " batch entries");
  check_pixels("pos", pos, total);
  check_pixels("normal", nrm, total);
  check_pixels("ks", ks, total);
  NVDREC_CHECK_CUDA(kd);
  NVDREC_CHECK_DTYPE(kd, torch::kFloat32);
  TORCH_CHECK(
      kd.dim() == 2 && kd.size(0) == total && kd.size(1) == 3 && kd.stride(1) == 1 && kd.stride(0) >= 3,
      "shade: kd must be [P, 3] with unit channel stride, got sizes ", kd.sizes(), " strides ", kd.strides());
  NVDREC_CHECK_INPUT(view, torch::kFloat32);
  TORCH_CHECK(view.dim() == 2 && view.size(1) == 3 && (view.size(0) == 1 || view.size(0) == batch),
              "shade: view_pos must be [1, 3] or [", batch, ", 3], got ", view.sizes());
  NVDREC_CHECK_INPUT(diffuse, torch::kFloat32);
  NVDREC_CHECK_INPUT(spec, torch::kFloat32);
  NVDREC_CHECK_INPUT(lut, torch::kFloat32);
  TORCH_CHECK(diffuse.dim() == 4 && diffuse.size(0) == 6 && diffuse.size(1) == diffuse.size(2) &&
                  diffuse.size(3) == 3,
              "shade: the irradiance map must be [6, N, N, 3], got ", diffuse.sizes());
  TORCH_CHECK(lut.dim() == 3 && lut.size(0) == lut.size(1) && lut.size(2) == 2,
              "shade: the split-sum table must be [S, S, 2], got ", lut.sizes());
  TORCH_CHECK(!spec_sizes.empty() && (int)spec_sizes.size() <= kMaxSpecLevels, "shade: 1..", kMaxSpecLevels,
              " specular levels supported, got ", spec_sizes.size());
  ShadeParams p{};
  int64_t off = 0;
  for (size_t k = 0; k < spec_sizes.size(); ++k) {
    p.spec_off[k] = (int)off;
    p.spec_n[k] = (int)spec_sizes[k];
    off += 6 * spec_sizes[k] * spec_sizes[k];
  }
  TORCH_CHECK(spec.dim() == 2 && spec.size(0) == off && spec.size(1) == 3,
              "shade: the specular levels must be [", off, ", 3] for sizes ", spec_sizes, ", got ",
              spec.sizes());
  p.pos = pos.data_ptr<float>();
  p.nrm = nrm.data_ptr<float>();
  p.kd = kd.data_ptr<float>();
  p.kd_stride = (int)kd.stride(0);
  p.ks = ks.data_ptr<float>();
  p.view = view.data_ptr<float>();
  p.view_batched = view.size(0) > 1 ? 1 : 0;
  if (rot.has_value()) {
    NVDREC_CHECK_INPUT(rot.value(), torch::kFloat32);
    TORCH_CHECK(rot.value().dim() == 2 && rot.value().size(0) == batch && rot.value().size(1) == 9,
                "shade: the light rotation must be [", batch, ", 9], got ", rot.value().sizes());
    p.rot = rot.value().data_ptr<float>();
  }
  p.total = total;
  p.pix_per_batch = total / batch;
  p.specular = specular ? 1 : 0;
  p.diffuse = diffuse.data_ptr<float>();
  p.diff_n = (int)diffuse.size(1);
  p.spec = spec.data_ptr<float>();
  p.spec_levels = (int)spec_sizes.size();
  p.min_rough = (float)min_rough;
  p.max_rough = (float)max_rough;
  p.lut = lut.data_ptr<float>();
  p.lut_n = (int)lut.size(0);
  return p;
}

torch::Tensor shade_fwd(torch::Tensor pos, torch::Tensor nrm, torch::Tensor kd, torch::Tensor ks,
                        torch::Tensor view, c10::optional<torch::Tensor> rot, int64_t batch, bool specular,
                        torch::Tensor diffuse, torch::Tensor spec, std::vector<int64_t> spec_sizes,
                        torch::Tensor lut, double min_rough, double max_rough) {
  const c10::cuda::OptionalCUDAGuard guard(pos.device());
  ShadeParams p = shade_params(pos, nrm, kd, ks, view, rot, batch, specular, diffuse, spec, spec_sizes, lut,
                               min_rough, max_rough);
  auto out = torch::empty_like(pos);
  p.out = out.data_ptr<float>();
  launch_shade_fwd(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return out;
}

// Returns grad (pos, normal, kd, ks, diffuse, spec); the light gradients are empty
// tensors when light_grad is false.
std::vector<torch::Tensor> shade_bwd(torch::Tensor pos, torch::Tensor nrm, torch::Tensor kd, torch::Tensor ks,
                                     torch::Tensor view, c10::optional<torch::Tensor> rot, int64_t batch,
                                     bool specular, torch::Tensor diffuse, torch::Tensor spec,
                                     std::vector<int64_t> spec_sizes, torch::Tensor lut, double min_rough,
                                     double max_rough, torch::Tensor grad_out, bool light_grad) {
  const c10::cuda::OptionalCUDAGuard guard(pos.device());
  ShadeParams p = shade_params(pos, nrm, kd, ks, view, rot, batch, specular, diffuse, spec, spec_sizes, lut,
                               min_rough, max_rough);
  check_pixels("grad_out", grad_out, p.total);
  auto g_pos = torch::empty_like(pos), g_nrm = torch::empty_like(pos);
  auto g_kd = torch::empty_like(pos), g_ks = torch::empty_like(pos);
  auto g_diffuse = light_grad ? torch::zeros_like(diffuse) : torch::zeros({0}, pos.options());
  auto g_spec = light_grad ? torch::zeros_like(spec) : torch::zeros({0}, pos.options());
  p.grad_out = grad_out.data_ptr<float>();
  p.g_pos = g_pos.data_ptr<float>();
  p.g_nrm = g_nrm.data_ptr<float>();
  p.g_kd = g_kd.data_ptr<float>();
  p.g_ks = g_ks.data_ptr<float>();
  p.g_diffuse = light_grad ? g_diffuse.data_ptr<float>() : nullptr;
  p.g_spec = light_grad && specular ? g_spec.data_ptr<float>() : nullptr;
  launch_shade_bwd(p, nvdrec_sm_count(), nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return {g_pos, g_nrm, g_kd, g_ks, g_diffuse, g_spec};
}

}  // namespace nvdrec
