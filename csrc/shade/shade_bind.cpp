// Python registration of the shade kernels (defined in shade_glue.cu): every argument named,
// so a call from Python that passes them in the wrong order fails instead of computing
// garbage (tests/test_csrc_host.py checks the names against the Python calls).
#include <torch/extension.h>

namespace nvdrec {
torch::Tensor shade_fwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                        c10::optional<torch::Tensor>, int64_t, bool, torch::Tensor, torch::Tensor,
                        std::vector<int64_t>, torch::Tensor, double, double);
std::vector<torch::Tensor> shade_bwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                                     torch::Tensor, c10::optional<torch::Tensor>, int64_t, bool,
                                     torch::Tensor, torch::Tensor, std::vector<int64_t>, torch::Tensor,
                                     double, double, torch::Tensor, bool);

void bind_shade(pybind11::module_& m) {
  m.def("shade_fwd", &nvdrec::shade_fwd, py::arg("pos"), py::arg("nrm"), py::arg("kd"), py::arg("ks"),
        py::arg("view"), py::arg("rot"), py::arg("batch"), py::arg("specular"), py::arg("diffuse"),
        py::arg("spec"), py::arg("spec_sizes"), py::arg("lut"), py::arg("min_rough"), py::arg("max_rough"));
  m.def("shade_bwd", &nvdrec::shade_bwd, py::arg("pos"), py::arg("nrm"), py::arg("kd"), py::arg("ks"),
        py::arg("view"), py::arg("rot"), py::arg("batch"), py::arg("specular"), py::arg("diffuse"),
        py::arg("spec"), py::arg("spec_sizes"), py::arg("lut"), py::arg("min_rough"), py::arg("max_rough"),
        py::arg("grad_out"), py::arg("light_grad"));
}
}  // namespace nvdrec
