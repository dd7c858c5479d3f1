// Python registration of the texture kernels (defined in texture_glue.cu): every argument named,
// so a call from Python that passes them in the wrong order fails instead of computing
// garbage (tests/test_csrc_host.py checks the names against the Python calls).
#include <torch/extension.h>

namespace nvdrec {
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

void bind_texture(pybind11::module_& m) {
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
}
}  // namespace nvdrec
