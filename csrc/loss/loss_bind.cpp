// Python registration of the loss kernels (defined in loss_glue.cu): every argument named,
// so a call from Python that passes them in the wrong order fails instead of computing
// garbage (tests/test_csrc_host.py checks the names against the Python calls).
#include <torch/extension.h>

namespace nvdrec {
torch::Tensor image_loss_fwd(torch::Tensor, torch::Tensor, int64_t);
torch::Tensor image_loss_bwd(torch::Tensor, torch::Tensor, int64_t, torch::Tensor);

void bind_loss(pybind11::module_& m) {
  m.def("image_loss_fwd", &nvdrec::image_loss_fwd, py::arg("img"), py::arg("ref"), py::arg("type"));
  m.def("image_loss_bwd", &nvdrec::image_loss_bwd, py::arg("img"), py::arg("ref"), py::arg("type"),
        py::arg("grad_out"));
}
}  // namespace nvdrec
