// The Python module of nvdrec's CUDA kernels: each op family registers its own functions
// (csrc/<family>/<family>_bind.cpp); a new family adds its bind_ call here.
#include <torch/extension.h>

namespace nvdrec {
void bind_rasterize(pybind11::module_& m);    // csrc/rasterize/rasterize_bind.cpp
void bind_interpolate(pybind11::module_& m);  // csrc/interpolate/interpolate_bind.cpp
void bind_texture(pybind11::module_& m);      // csrc/texture/texture_bind.cpp
void bind_antialias(pybind11::module_& m);    // csrc/antialias/antialias_bind.cpp
void bind_hashgrid(pybind11::module_& m);     // csrc/hashgrid/hashgrid_bind.cpp
void bind_light(pybind11::module_& m);        // csrc/light/light_bind.cpp
void bind_loss(pybind11::module_& m);         // csrc/loss/loss_bind.cpp
void bind_shade(pybind11::module_& m);        // csrc/shade/shade_bind.cpp

// Raises a formatted error from inside the extension: guards against the static
// libstdc++ + ostringstream<<double crash seen with some toolchains.
void check_error_formatting(double value) {
  TORCH_CHECK(value < 0.0, "nvdrec error formatting check: value ", value, " is not negative");
}
}  // namespace nvdrec

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  nvdrec::bind_rasterize(m);
  nvdrec::bind_interpolate(m);
  nvdrec::bind_texture(m);
  nvdrec::bind_antialias(m);
  nvdrec::bind_hashgrid(m);
  nvdrec::bind_light(m);
  nvdrec::bind_loss(m);
  nvdrec::bind_shade(m);
  m.def("check_error_formatting", &nvdrec::check_error_formatting, py::arg("value"));
}
