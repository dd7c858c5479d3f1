// Python registration of the interpolate kernels (defined in interpolate_glue.cu): every argument named,
// so a call from Python that passes them in the wrong order fails instead of computing
// garbage (tests/test_csrc_host.py checks the names against the Python calls).
#include <torch/extension.h>

namespace nvdrec {
std::vector<torch::Tensor> interpolate_fwd(torch::Tensor, torch::Tensor, torch::Tensor,
                                           c10::optional<torch::Tensor>, torch::Tensor);
std::vector<torch::Tensor> interpolate_bwd(torch::Tensor, torch::Tensor, torch::Tensor,
                                           c10::optional<torch::Tensor>, torch::Tensor, torch::Tensor,
                                           c10::optional<torch::Tensor>);

void bind_interpolate(pybind11::module_& m) {
  m.def("interpolate_fwd", &nvdrec::interpolate_fwd, py::arg("attr"), py::arg("rast"), py::arg("tri"),
        py::arg("rast_db"), py::arg("diff_idx"));
  m.def("interpolate_bwd", &nvdrec::interpolate_bwd, py::arg("attr"), py::arg("rast"), py::arg("tri"),
        py::arg("rast_db"), py::arg("diff_idx"), py::arg("grad_out"), py::arg("grad_out_da"));
}
}  // namespace nvdrec
