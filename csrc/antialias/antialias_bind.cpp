// Python registration of the antialias kernels (defined in antialias_glue.cu): every argument named,
// so a call from Python that passes them in the wrong order fails instead of computing
// garbage (tests/test_csrc_host.py checks the names against the Python calls).
#include <torch/extension.h>

namespace nvdrec {
torch::Tensor antialias_fwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor);
std::vector<torch::Tensor> antialias_bwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                                         torch::Tensor, torch::Tensor, double);

void bind_antialias(pybind11::module_& m) {
  m.def("antialias_fwd", &nvdrec::antialias_fwd, py::arg("color"), py::arg("rast"), py::arg("pos"),
        py::arg("tri"), py::arg("neighbor"));
  m.def("antialias_bwd", &nvdrec::antialias_bwd, py::arg("color"), py::arg("rast"), py::arg("pos"),
        py::arg("tri"), py::arg("neighbor"), py::arg("grad_out"), py::arg("boost"));
}
}  // namespace nvdrec
