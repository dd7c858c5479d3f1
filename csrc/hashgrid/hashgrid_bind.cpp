// Python registration of the hashgrid kernels (defined in hashgrid_glue.cu): every argument named,
// so a call from Python that passes them in the wrong order fails instead of computing
// garbage (tests/test_csrc_host.py checks the names against the Python calls).
#include <torch/extension.h>

namespace nvdrec {
torch::Tensor hashgrid_fwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>);
torch::Tensor hashgrid_bwd(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>,
                           torch::Tensor);
torch::Tensor hashgrid_bwd_input(torch::Tensor, torch::Tensor, std::vector<int64_t>, std::vector<int64_t>,
                                 torch::Tensor);

void bind_hashgrid(pybind11::module_& m) {
  m.def("hashgrid_fwd", &nvdrec::hashgrid_fwd, py::arg("x"), py::arg("table"), py::arg("res"),
        py::arg("dense"));
  m.def("hashgrid_bwd", &nvdrec::hashgrid_bwd, py::arg("x"), py::arg("table"), py::arg("res"),
        py::arg("dense"), py::arg("grad_out"));
  m.def("hashgrid_bwd_input", &nvdrec::hashgrid_bwd_input, py::arg("x"), py::arg("table"), py::arg("res"),
        py::arg("dense"), py::arg("grad_out"));
}
}  // namespace nvdrec
