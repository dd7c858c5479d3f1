// Torch glue for rasterization: validate, allocate, launch on the current stream.
#include "../common/common.h"
#include "../common/torch_utils.h"
#include "rasterize.h"

namespace nvdrec {

// Returns (rast [B,H,W,4], rast_db [B,H,W,4], keys [B*H*W] int64 with -1 where empty).
std::vector<torch::Tensor> rasterize_fwd(torch::Tensor pos, torch::Tensor tri, torch::Tensor slot_batch,
                                         torch::Tensor slot_tri, int64_t num_batch, int64_t height,
                                         int64_t width, c10::optional<torch::Tensor> prev) {
  NVDREC_CHECK_INPUT(pos, torch::kFloat32);
  NVDREC_CHECK_INPUT(tri, torch::kInt32);
  TORCH_CHECK(pos.dim() == 3 || pos.dim() == 2, "pos must be [B, V, 4] or [V, 4]");
  TORCH_CHECK(pos.size(-1) == 4, "pos must have 4 components, got ", pos.size(-1));
  const c10::cuda::OptionalCUDAGuard guard(pos.device());
  bool instanced = pos.dim() == 3;
  RasterParams p{};
  p.pos = pos.data_ptr<float>();
  p.tri = tri.data_ptr<int>();
  p.num_batch = (int)num_batch;
  p.num_vert = (int)pos.size(-2);
  p.num_tri = (int)tri.size(0);
  p.instanced = instanced ? 1 : 0;
  p.height = (int)height;
  p.width = (int)width;
  if (instanced) {
    p.num_slots = (int)(num_batch * tri.size(0));
  } else {
    NVDREC_CHECK_INPUT(slot_batch, torch::kInt32);
    NVDREC_CHECK_INPUT(slot_tri, torch::kInt32);
    p.num_slots = (int)slot_batch.size(0);
    p.slot_batch = slot_batch.data_ptr<int>();
    p.slot_tri = slot_tri.data_ptr<int>();
  }
  TORCH_CHECK(p.num_slots < (1LL << 31), "too many triangles in one call: ", p.num_slots);
  auto fopt = pos.options();
  auto iopt = fopt.dtype(torch::kInt32);
  auto lopt = fopt.dtype(torch::kInt64);
  long long npix = num_batch * height * width;
  auto setup = torch::empty({std::max(p.num_slots, 1), 16}, fopt);
  auto bbox = torch::empty({std::max(p.num_slots, 1), 4}, iopt);
  auto chunks = torch::zeros({std::max(p.num_slots, 1)}, iopt);
  auto keys = torch::full({npix}, (int64_t)kEmptyKey, lopt);
  auto rast = torch::empty({num_batch, height, width, 4}, fopt);
  auto rast_db = torch::empty({num_batch, height, width, 4}, fopt);
  auto key_out = torch::empty({npix}, lopt);
  if (prev.has_value()) {
    NVDREC_CHECK_INPUT(prev.value(), torch::kInt64);
    TORCH_CHECK(prev.value().numel() == npix, "prev keys must have B*H*W elements");
    p.prev = reinterpret_cast<const long long*>(prev.value().data_ptr<int64_t>());
  }
  p.setup = setup.data_ptr<float>();
  p.bbox = reinterpret_cast<int4*>(bbox.data_ptr<int>());
  p.chunks = chunks.data_ptr<int>();
  p.keys = reinterpret_cast<long long*>(keys.data_ptr<int64_t>());
  p.rast = rast.data_ptr<float>();
  p.rast_db = rast_db.data_ptr<float>();
  p.key_out = reinterpret_cast<long long*>(key_out.data_ptr<int64_t>());
  auto stream = nvdrec_stream();
  launch_raster_setup(p, stream);
  NVDREC_CHECK_LAUNCH();
  if (p.num_slots > 0) {
    auto prefix = torch::cumsum(chunks, 0, torch::kInt32);
    p.chunks = prefix.data_ptr<int>();
    p.max_work_blocks = nvdrec_sm_count() * 8;
    launch_raster_cover(p, stream);
    NVDREC_CHECK_LAUNCH();
  }
  launch_raster_resolve(p, stream);
  NVDREC_CHECK_LAUNCH();
  return {rast, rast_db, key_out};
}

torch::Tensor rasterize_bwd(torch::Tensor pos, torch::Tensor tri, torch::Tensor rast, torch::Tensor grad_rast,
                            c10::optional<torch::Tensor> grad_db) {
  NVDREC_CHECK_INPUT(pos, torch::kFloat32);
  NVDREC_CHECK_INPUT(tri, torch::kInt32);
  NVDREC_CHECK_INPUT(rast, torch::kFloat32);
  NVDREC_CHECK_INPUT(grad_rast, torch::kFloat32);
  const c10::cuda::OptionalCUDAGuard guard(pos.device());
  RasterGradParams p{};
  p.pos = pos.data_ptr<float>();
  p.tri = tri.data_ptr<int>();
  p.instanced = pos.dim() == 3 ? 1 : 0;
  p.num_vert = (int)pos.size(-2);
  p.num_batch = (int)rast.size(0);
  p.height = (int)rast.size(1);
  p.width = (int)rast.size(2);
  p.rast = rast.data_ptr<float>();
  p.grad_rast = grad_rast.data_ptr<float>();
  if (grad_db.has_value()) {
    NVDREC_CHECK_INPUT(grad_db.value(), torch::kFloat32);
    p.grad_db = grad_db.value().data_ptr<float>();
  }
  auto grad_pos = torch::zeros_like(pos);
  p.grad_pos = grad_pos.data_ptr<float>();
  launch_raster_grad(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  return grad_pos;
}

}  // namespace nvdrec
