// Python bindings of nvdrec's CUDA kernels (registration only).
#include <torch/extension.h>

namespace nvdrec {
std::vector<torch::Tensor> rasterize_fwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, int64_t,
                                         int64_t, int64_t, c10::optional<torch::Tensor>);
torch::Tensor rasterize_bwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                            c10::optional<torch::Tensor>);
std::vector<torch::Tensor> interpolate_fwd(torch::Tensor, torch::Tensor, torch::Tensor,
                                           c10::optional<torch::Tensor>, torch::Tensor);
std::vector<torch::Tensor> interpolate_bwd(torch::Tensor, torch::Tensor, torch::Tensor,
                                           c10::optional<torch::Tensor>, torch::Tensor, torch::Tensor,
                                           c10::optional<torch::Tensor>);
torch::Tensor texture_fwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>, bool,
                          int64_t, int64_t, torch::Tensor, c10::optional<torch::Tensor>,
                          c10::optional<torch::Tensor>);
std::vector<torch::Tensor> texture_bwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>,
                                       std::vector<int64_t>, bool, int64_t, int64_t, torch::Tensor,
                                       c10::optional<torch::Tensor>, c10::optional<torch::Tensor>, torch::Tensor);
torch::Tensor mip_build(torch::Tensor, std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>, int64_t);
torch::Tensor mip_build_bwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>,
                            std::vector<int64_t>, int64_t);
torch::Tensor hashgrid_fwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>);
torch::Tensor hashgrid_bwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>, torch::Tensor);
torch::Tensor hashgrid_bwd_input(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>,
                                 torch::Tensor);
torch::Tensor antialias_fwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor);
std::vector<torch::Tensor> antialias_bwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                                         torch::Tensor, double);
std::vector<torch::Tensor> csr_gather(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                                      c10::optional<std::vector<torch::Tensor>>, int64_t, int64_t, int64_t);
torch::Tensor image_loss_fwd(torch::Tensor, torch::Tensor, int64_t);
torch::Tensor image_loss_bwd(torch::Tensor, torch::Tensor, int64_t, torch::Tensor);
torch::Tensor shade_fwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                        c10::optional<torch::Tensor>, int64_t, bool, torch::Tensor, torch::Tensor,
                        std::vector<int64_t>, torch::Tensor, double, double);
std::vector<torch::Tensor> shade_bwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                                     c10::optional<torch::Tensor>, int64_t, bool, torch::Tensor, torch::Tensor,
                                     std::vector<int64_t>, torch::Tensor, double, double, torch::Tensor, bool);

// Raises a formatted error from inside the extension: guards against the static
// libstdc++ + ostringstream<<double crash seen with some toolchains.
void check_error_formatting(double value) {
  TORCH_CHECK(value < 0.0, "nvdrec error formatting check: value ", value, " is not negative");
}
}  // namespace nvdrec

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rasterize_fwd", &nvdrec::rasterize_fwd);
  m.def("rasterize_bwd", &nvdrec::rasterize_bwd);
  m.def("interpolate_fwd", &nvdrec::interpolate_fwd);
  m.def("interpolate_bwd", &nvdrec::interpolate_bwd);
  m.def("texture_fwd", &nvdrec::texture_fwd);
  m.def("texture_bwd", &nvdrec::texture_bwd);
  m.def("mip_build", &nvdrec::mip_build);
  m.def("mip_build_bwd", &nvdrec::mip_build_bwd);
  m.def("hashgrid_fwd", &nvdrec::hashgrid_fwd);
  m.def("hashgrid_bwd", &nvdrec::hashgrid_bwd);
  m.def("hashgrid_bwd_input", &nvdrec::hashgrid_bwd_input);
  m.def("antialias_fwd", &nvdrec::antialias_fwd);
  m.def("antialias_bwd", &nvdrec::antialias_bwd);
  m.def("csr_gather", &nvdrec::csr_gather);
  m.def("image_loss_fwd", &nvdrec::image_loss_fwd);
  m.def("image_loss_bwd", &nvdrec::image_loss_bwd);
  m.def("shade_fwd", &nvdrec::shade_fwd);
  m.def("shade_bwd", &nvdrec::shade_bwd);
  m.def("check_error_formatting", &nvdrec::check_error_formatting);
}
