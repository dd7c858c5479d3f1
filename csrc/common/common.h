// Shared helpers for nvdrec's CUDA kernels: checks, launch helpers, dual numbers.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#define NVDREC_HD __host__ __device__ __forceinline__
#define NVDREC_D __device__ __forceinline__

namespace nvdrec {

// Forward-mode dual number with N tangent directions: used by backward kernels to get
// exact derivatives of small closed-form functions without hand-written chain rules.
template <int N>
struct Dual {
  float v;
  float d[N];
  NVDREC_HD Dual() : v(0.f) {
#pragma unroll
    for (int i = 0; i < N; ++i) d[i] = 0.f;
  }
  NVDREC_HD Dual(float x) : v(x) {  // NOLINT: implicit from constants is intended
#pragma unroll
    for (int i = 0; i < N; ++i) d[i] = 0.f;
  }
  NVDREC_HD static Dual var(float x, int k) {
    Dual r(x);
    r.d[k] = 1.f;
    return r;
  }
};

#define NVDREC_DUAL_BINOP(OP, VAL, DER)                               \
  template <int N>                                                    \
  NVDREC_HD Dual<N> operator OP(const Dual<N>& a, const Dual<N>& b) { \
    Dual<N> r;                                                        \
    r.v = VAL;                                                        \
    for (int i = 0; i < N; ++i) r.d[i] = DER;                         \
    return r;                                                         \
  }
NVDREC_DUAL_BINOP(+, a.v + b.v, a.d[i] + b.d[i])
NVDREC_DUAL_BINOP(-, a.v - b.v, a.d[i] - b.d[i])
NVDREC_DUAL_BINOP(*, a.v* b.v, a.d[i] * b.v + a.v * b.d[i])
NVDREC_DUAL_BINOP(/, a.v / b.v, (a.d[i] * b.v - a.v * b.d[i]) / (b.v * b.v))
#undef NVDREC_DUAL_BINOP

template <int N>
NVDREC_HD Dual<N> operator-(const Dual<N>& a) {
  Dual<N> r;
  r.v = -a.v;
  for (int i = 0; i < N; ++i) r.d[i] = -a.d[i];
  return r;
}
template <int N>
NVDREC_HD Dual<N> operator*(const Dual<N>& a, float s) {
  Dual<N> r;
  r.v = a.v * s;
  for (int i = 0; i < N; ++i) r.d[i] = a.d[i] * s;
  return r;
}
template <int N>
NVDREC_HD Dual<N> operator*(float s, const Dual<N>& a) {
  return a * s;
}
template <int N>
NVDREC_HD Dual<N> operator+(const Dual<N>& a, float s) {
  Dual<N> r = a;
  r.v += s;
  return r;
}
template <int N>
NVDREC_HD Dual<N> operator-(const Dual<N>& a, float s) {
  Dual<N> r = a;
  r.v -= s;
  return r;
}
template <int N>
NVDREC_HD Dual<N> operator-(float s, const Dual<N>& a) {
  return -(a - s);
}

NVDREC_HD float value(float x) {
  return x;
}
template <int N>
NVDREC_HD float value(const Dual<N>& x) {
  return x.v;
}

// Order-preserving map of a float to an unsigned integer (for depth keys).
NVDREC_D uint32_t float_sortable(float f) {
  uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Depth/triangle key: depth order first, then triangle slot; fits a positive int64.
constexpr long long kEmptyKey = 0x7fffffffffffffffLL;
NVDREC_D long long make_key(float depth, int slot) {
  return (long long)(((unsigned long long)float_sortable(depth) << 31) | (unsigned int)slot);
}

inline int div_up(long long a, int b) {
  return (int)((a + b - 1) / b);
}

#ifdef __CUDACC__
// Launches kernel(p) with one thread per item: n items in blocks of 256; nothing for n <= 0.
template <class P>
inline void launch_per_item(void (*kernel)(P), const P& p, long long n, cudaStream_t s) {
  if (n > 0) kernel<<<div_up(n, 256), 256, 0, s>>>(p);
}

// Pixels of a [num_batch, height, width] image batch, as one count.
template <class P>
NVDREC_HD long long pixel_count(const P& p) {
  return (long long)p.num_batch * p.height * p.width;
}
#endif

// Runs of equal keys among the 32 lanes of a warp (all lanes must call): neighbouring
// pixels usually show the same triangle or touch the same texel, so gradients are summed
// over each run with a segmented shuffle reduction and written with one atomic per run.
struct WarpRuns {
  int end;      // first lane after this lane's run
  bool leader;  // first lane of its run
};

NVDREC_D WarpRuns warp_runs(unsigned long long key) {
  int lane = threadIdx.x & 31;
  unsigned long long prev = __shfl_up_sync(0xffffffffu, key, 1);
  bool start = lane == 0 || prev != key;
  unsigned starts = __ballot_sync(0xffffffffu, start);
  unsigned later = starts & ~((2u << lane) - 1u);
  WarpRuns r;
  r.end = later ? __ffs(later) - 1 : 32;
  r.leader = start;
  return r;
}

// Sum of v over the lanes from this lane to the end of its run (the full run sum on the
// leader). All lanes must call.
NVDREC_D float warp_run_sum(const WarpRuns& r, float v) {
  int lane = threadIdx.x & 31;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    float o = __shfl_down_sync(0xffffffffu, v, off);
    if (lane + off < r.end) v += o;
  }
  return v;
}

constexpr unsigned long long kNoKey = ~0ULL;

}  // namespace nvdrec
