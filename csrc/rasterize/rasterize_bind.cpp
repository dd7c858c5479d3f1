// Python registration of the rasterize kernels (defined in rasterize_glue.cu): every argument named,
// so a call from Python that passes them in the wrong order fails instead of computing
// garbage (tests/test_csrc_host.py checks the names against the Python calls).
#include <torch/extension.h>

namespace nvdrec {
std::vector<torch::Tensor> rasterize_fwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, int64_t,
                                         int64_t, int64_t, c10::optional<torch::Tensor>);
torch::Tensor rasterize_bwd(torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor,
                            c10::optional<torch::Tensor>);

void bind_rasterize(pybind11::module_& m) {
  m.def("rasterize_fwd", &nvdrec::rasterize_fwd, py::arg("pos"), py::arg("tri"), py::arg("slot_batch"),
        py::arg("slot_tri"), py::arg("num_batch"), py::arg("height"), py::arg("width"), py::arg("prev"));
  m.def("rasterize_bwd", &nvdrec::rasterize_bwd, py::arg("pos"), py::arg("tri"), py::arg("rast"),
        py::arg("grad_rast"), py::arg("grad_db"));
}
}  // namespace nvdrec
