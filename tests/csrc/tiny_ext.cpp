// A tiny CPU extension for the build-safety tests (same locked build path as the kernels).
#include <torch/extension.h>

torch::Tensor add_one(torch::Tensor x) {
  return x + 1;
}

void fail(double value) {
  TORCH_CHECK(value < 0.0, "tiny extension: value ", value, " is not negative");
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("add_one", &add_one);
  m.def("fail", &fail);
}
