// Torch glue for the light-filter gather.
#include "../common/common.h"
#include "../common/torch_utils.h"
#include "light_filter.h"

namespace nvdrec {

// y = A x; with `split` = (seg_out, multi_ptr, multi_rows), row_ptr holds the segment
// ranges of the split rows (see light_kernels.cu), `rows` the rows of y and `slots` the
// number of segments that belong to split rows. With split_at > 0 the result comes as two
// tensors: rows [0, split_at) and [split_at, rows).
std::vector<torch::Tensor> csr_gather(torch::Tensor row_ptr, torch::Tensor col, torch::Tensor val,
                                      torch::Tensor x, c10::optional<std::vector<torch::Tensor>> split,
                                      int64_t rows, int64_t slots, int64_t split_at) {
  const c10::cuda::OptionalCUDAGuard guard(x.device());
  NVDREC_CHECK_INPUT(row_ptr, torch::kInt32);
  NVDREC_CHECK_INPUT(col, torch::kInt32);
  NVDREC_CHECK_INPUT(val, torch::kFloat32);
  NVDREC_CHECK_INPUT(x, torch::kFloat32);
  TORCH_CHECK(x.dim() == 2 && x.size(1) >= 1 && x.size(1) <= 4,
              "csr_gather: x must be [K, C] with 1 <= C <= 4, got ", x.sizes());
  TORCH_CHECK(col.numel() == val.numel(), "csr_gather: col and val differ in length (", col.numel(), " vs ",
              val.numel(), ")");
  TORCH_CHECK(row_ptr.numel() >= 1 && row_ptr.numel() - 1 < (1LL << 31) / 8,
              "csr_gather: bad row_ptr length");
  CsrGatherParams p{};
  p.segments = (int)row_ptr.numel() - 1;
  p.channels = (int)x.size(1);
  torch::Tensor partial;
  if (split.has_value()) {
    const auto& t = split.value();
    TORCH_CHECK(t.size() == 3, "csr_gather: split must be (seg_out, multi_ptr, multi_rows)");
    for (const auto& a : t) {
      NVDREC_CHECK_INPUT(a, torch::kInt32);
    }
    TORCH_CHECK(t[0].numel() == p.segments && t[1].numel() == t[2].numel() + 1,
                "csr_gather: inconsistent split tables (", t[0].numel(), " segments for ", p.segments,
                " ranges, ", t[1].numel(), " slot offsets for ", t[2].numel(), " split rows)");
    p.seg_out = t[0].data_ptr<int>();
    p.multi_ptr = t[1].data_ptr<int>();
    p.multi_rows = t[2].data_ptr<int>();
    p.split_rows = (int)t[2].numel();
    partial = torch::empty({std::max<int64_t>(slots, 1), x.size(1)}, x.options());
    p.partial = partial.data_ptr<float>();
  } else {
    TORCH_CHECK(rows == p.segments, "csr_gather: ", rows, " rows requested from a CSR matrix with ",
                p.segments);
  }
  TORCH_CHECK(split_at >= 0 && split_at <= rows, "csr_gather: split_at ", split_at, " outside [0, ", rows,
              "]");
  auto y = torch::empty({split_at > 0 ? split_at : rows, x.size(1)}, x.options());
  auto y2 = torch::empty({split_at > 0 ? rows - split_at : 0, x.size(1)}, x.options());
  p.split_at = (int)split_at;
  p.y2 = y2.data_ptr<float>();
  p.row_ptr = row_ptr.data_ptr<int>();
  p.col = col.data_ptr<int>();
  p.val = val.data_ptr<float>();
  p.x = x.data_ptr<float>();
  p.y = y.data_ptr<float>();
  launch_csr_gather(p, nvdrec_stream());
  NVDREC_CHECK_LAUNCH();
  if (split_at > 0) return {y, y2};
  return {y};
}

}  // namespace nvdrec
