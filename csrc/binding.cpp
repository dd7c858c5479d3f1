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
torch::Tensor texture_fwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>,
                          std::vector<int64_t>, bool, int64_t, int64_t, torch::Tensor,
                          c10::optional<torch::Tensor>, c10::optional<torch::Tensor>);
std::vector<torch::Tensor> texture_bwd(torch::Tensor, torch::Tensor, std::vector<int64_t>,
                                       std::vector<int64_t>, std::vector<int64_t>, bool, int64_t, int64_t,
                                       torch::Tensor, c10::optional<torch::Tensor>,
                                       c10::optional<torch::Tensor>, torch::Tensor);
torch::Tensor mip_build(torch::Tensor, std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>,
                        int64_t);
torch::Tensor mip_build_bwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>,
                            std::vector<int64_t>, int64_t);
torch::Tensor hashgrid_fwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>);
torch::Tensor hashgrid_bwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>,
                           torch::Tensor);
torch::Tensor hashgrid_bwd_input(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>,
                                 torch::Tensor);
torch::Tensor antialias_fwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor);
std::vector<torch::Tensor> antialias_bwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                                         torch::Tensor, torch::Tensor, double);
std::vector<torch::Tensor> csr_gather(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                                      c10::optional<std::vector<torch::Tensor>>, int64_t, int64_t, int64_t);
torch::Tensor image_loss_fwd(torch::Tensor, torch::Tensor, int64_t);
torch::Tensor image_loss_bwd(torch::Tensor, torch::Tensor, int64_t, torch::Tensor);
torch::Tensor shade_fwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                        c10::optional<torch::Tensor>, int64_t, bool, torch::Tensor, torch::Tensor,
                        std::vector<int64_t>, torch::Tensor, double, double);
std::vector<torch::Tensor> shade_bwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                                     torch::Tensor, c10::optional<torch::Tensor>, int64_t, bool,
                                     torch::Tensor, torch::Tensor, std::vector<int64_t>, torch::Tensor,
                                     double, double, torch::Tensor, bool);

// Raises a formatted error from inside the extension: guards against the static
// libstdc++ + ostringstream<<double crash seen with some toolchains.
void check_error_formatting(double value) {
  TORCH_CHECK(value < 0.0, "nvdrec error formatting check: value ", value, " is not negative");
}
}  // namespace nvdrec

// every function takes named arguments: a call from Python that passes them in the wrong
// order fails with a TypeError instead of computing garbage (tests/test_csrc_host.py)
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rasterize_fwd", &nvdrec::rasterize_fwd, py::arg("pos"), py::arg("tri"), py::arg("slot_batch"),
        py::arg("slot_tri"), py::arg("num_batch"), py::arg("height"), py::arg("width"), py::arg("prev"));
  m.def("rasterize_bwd", &nvdrec::rasterize_bwd, py::arg("pos"), py::arg("tri"), py::arg("rast"),
        py::arg("grad_rast"), py::arg("grad_db"));
  m.def("interpolate_fwd", &nvdrec::interpolate_fwd, py::arg("attr"), py::arg("rast"), py::arg("tri"),
        py::arg("rast_db"), py::arg("diff_idx"));
  m.def("interpolate_bwd", &nvdrec::interpolate_bwd, py::arg("attr"), py::arg("rast"), py::arg("tri"),
        py::arg("rast_db"), py::arg("diff_idx"), py::arg("grad_out"), py::arg("grad_out_da"));
  m.def("texture_fwd", &nvdrec::texture_fwd, py::arg("base"), py::arg("buf"), py::arg("offs"), py::arg("hs"),
        py::arg("ws"), py::arg("cube"), py::arg("boundary"), py::arg("filter"), py::arg("uv"),
        py::arg("uv_da"), py::arg("bias"));
  m.def("texture_bwd", &nvdrec::texture_bwd, py::arg("base"), py::arg("buf"), py::arg("offs"), py::arg("hs"),
        py::arg("ws"), py::arg("cube"), py::arg("boundary"), py::arg("filter"), py::arg("uv"),
        py::arg("uv_da"), py::arg("bias"), py::arg("grad_out"));
  m.def("mip_build", &nvdrec::mip_build, py::arg("tex"), py::arg("hs"), py::arg("ws"), py::arg("offs"),
        py::arg("total"));
  m.def("mip_build_bwd", &nvdrec::mip_build_bwd, py::arg("grad_tex"), py::arg("grad_mips"), py::arg("hs"),
        py::arg("ws"), py::arg("offs"), py::arg("total"));
  m.def("hashgrid_fwd", &nvdrec::hashgrid_fwd, py::arg("x"), py::arg("table"), py::arg("res"),
        py::arg("dense"));
  m.def("hashgrid_bwd", &nvdrec::hashgrid_bwd, py::arg("x"), py::arg("table"), py::arg("res"),
        py::arg("dense"), py::arg("grad_out"));
  m.def("hashgrid_bwd_input", &nvdrec::hashgrid_bwd_input, py::arg("x"), py::arg("table"), py::arg("res"),
        py::arg("dense"), py::arg("grad_out"));
  m.def("antialias_fwd", &nvdrec::antialias_fwd, py::arg("color"), py::arg("rast"), py::arg("pos"),
        py::arg("tri"), py::arg("neighbor"));
  m.def("antialias_bwd", &nvdrec::antialias_bwd, py::arg("color"), py::arg("rast"), py::arg("pos"),
        py::arg("tri"), py::arg("neighbor"), py::arg("grad_out"), py::arg("boost"));
  m.def("csr_gather", &nvdrec::csr_gather, py::arg("row_ptr"), py::arg("col"), py::arg("val"), py::arg("x"),
        py::arg("split"), py::arg("rows"), py::arg("slots"), py::arg("split_at"));
  m.def("image_loss_fwd", &nvdrec::image_loss_fwd, py::arg("img"), py::arg("ref"), py::arg("type"));
  m.def("image_loss_bwd", &nvdrec::image_loss_bwd, py::arg("img"), py::arg("ref"), py::arg("type"),
        py::arg("grad_out"));
  m.def("shade_fwd", &nvdrec::shade_fwd, py::arg("pos"), py::arg("nrm"), py::arg("kd"), py::arg("ks"),
        py::arg("view"), py::arg("rot"), py::arg("batch"), py::arg("specular"), py::arg("diffuse"),
        py::arg("spec"), py::arg("spec_sizes"), py::arg("lut"), py::arg("min_rough"), py::arg("max_rough"));
  m.def("shade_bwd", &nvdrec::shade_bwd, py::arg("pos"), py::arg("nrm"), py::arg("kd"), py::arg("ks"),
        py::arg("view"), py::arg("rot"), py::arg("batch"), py::arg("specular"), py::arg("diffuse"),
        py::arg("spec"), py::arg("spec_sizes"), py::arg("lut"), py::arg("min_rough"), py::arg("max_rough"),
        py::arg("grad_out"), py::arg("light_grad"));
  m.def("check_error_formatting", &nvdrec::check_error_formatting, py::arg("value"));
}
