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

#define NVDREC_DUAL_BINOP(OP, VAL, DER)                                   \
  template <int N>                                                        \
  NVDREC_HD Dual<N> operator OP(const Dual<N>& a, const Dual<N>& b) {     \
    Dual<N> r;                                                            \
    r.v = VAL;                                                            \
    for (int i = 0; i < N; ++i) r.d[i] = DER;                             \
    return r;                                                             \
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
NVDREC_HD Dual<N> operator*(float s, const Dual<N>& a) { return a * s; }
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
NVDREC_HD Dual<N> operator-(float s, const Dual<N>& a) { return -(a - s); }

NVDREC_HD float value(float x) { return x; }
template <int N>
NVDREC_HD float value(const Dual<N>& x) { return x.v; }

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

inline int div_up(long long a, int b) { return (int)((a + b - 1) / b); }

// Lanes of the calling warp that pass the same key (the active lanes only).
NVDREC_D unsigned warp_peers(unsigned long long key) { return __match_any_sync(__activemask(), key); }

// Sum of val over the lanes in peers (every lane of the group gets the sum).
NVDREC_D float warp_group_sum(unsigned peers, float val) {
  float sum = 0.f;
  for (unsigned rem = peers; rem; rem &= rem - 1) sum += __shfl_sync(peers, val, __ffs(rem) - 1);
  return sum;
}

NVDREC_D bool warp_group_leader(unsigned peers) { return (int)(threadIdx.x & 31) == __ffs(peers) - 1; }


}  // namespace nvdrec
