// Python registration of the light kernels (defined in light_glue.cu): every argument named,
// so a call from Python that passes them in the wrong order fails instead of computing
// garbage (tests/test_csrc_host.py checks the names against the Python calls).
#include <torch/extension.h>

namespace nvdrec {
std::vector<torch::Tensor> csr_gather(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                                      c10::optional<std::vector<torch::Tensor>>, int64_t, int64_t, int64_t);

void bind_light(pybind11::module_& m) {
  m.def("csr_gather", &nvdrec::csr_gather, py::arg("row_ptr"), py::arg("col"), py::arg("val"), py::arg("x"),
        py::arg("split"), py::arg("rows"), py::arg("slots"), py::arg("split_at"));
}
}  // namespace nvdrec
