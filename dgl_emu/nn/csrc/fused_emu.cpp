// Fused EMU scoring: the scores of mutated negatives without forming them.
//
// For a query q (B, d), the positive's embedding p (B, d) and negatives n (C, K, d) shared by
// chunks of rows (chunk == 1: one set of negatives per row; row b uses n[(b + phase) / chunk],
// phase being the first row's place in its chunk), the mutated negative of row b, negative k is
//   m[b,k,j] = bit(b,k,j) ? n[(b + phase) / chunk, k, j] : p[b,j]  with bit() a pure function of
// (key, global row row0 + b, k, j) (dgl_emu.rng.counter_mask gives the same bits with torch ops).
// The forward pass returns f(m[b,k], q[b]) for every (b, k) and, optionally, f(n[b,k], q[b]):
//   kind 0: dot        sum_j q_j m_j
//   kind 1: L1         sum_j |m_j - q_j|
//   kind 2: L2         sqrt(sum_j (m_j - q_j)^2)
//   kind 3: complex    sum_i |m_i - q_i| over complex coordinates [re (d/2) | im (d/2)]
// The backward pass recomputes the bits and writes the gradients of q, p and n directly.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// keep[j] = 1 where the negative's coordinate j of (row, k) is kept, else 0: coordinates 2i and
// 2i + 1 take the high and low 32 bits of mix64(key + (row << 40 | k << 20 | i) * golden)
template <typename T>
inline void row_keep(uint64_t key, uint64_t row, uint64_t k, int64_t d, uint64_t threshold, uint32_t* u, T* keep) {
  if (threshold > 0xFFFFFFFFULL) {  // p = 1: every coordinate kept (the plain scores of shared negatives)
    for (int64_t j = 0; j < d; ++j) keep[j] = T(1);
    return;
  }
  const uint64_t base = key + ((row << 40) | (k << 20)) * kGolden;
  const int64_t pairs = (d + 1) / 2;
#pragma omp simd
  for (int64_t i = 0; i < pairs; ++i) {
    const uint64_t z = mix64(base + static_cast<uint64_t>(i) * kGolden);
    u[2 * i] = static_cast<uint32_t>(z >> 32);
    u[2 * i + 1] = static_cast<uint32_t>(z);
  }
#pragma omp simd
  for (int64_t j = 0; j < d; ++j) keep[j] = static_cast<uint64_t>(u[j]) < threshold ? T(1) : T(0);
}

template <typename T>
inline T sign_of(T x) {
  return static_cast<T>((x > 0) - (x < 0));
}

// scratch of one task: the uniforms (d rounded up to pairs) and the keep row
template <typename T>
struct Scratch {
  std::vector<uint32_t> u;
  std::vector<T> keep;
  std::vector<T> grad;  // one negative's gradient, before it is written or added to grad_n
  explicit Scratch(int64_t d) : u(d + 1), keep(d), grad(d) {}
};

template <typename T, int Kind, bool Plain>
void forward_impl(const T* q, const T* p, const T* n, T* emu, T* plain, int64_t B, int64_t K, int64_t d,
                  int64_t chunk, int64_t phase, uint64_t key, int64_t row0, uint64_t threshold) {
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    Scratch<T> s(d);
    T* kp = s.keep.data();
    const int64_t half = d / 2;
    for (int64_t b = begin; b < end; ++b) {
      const T* qb = q + b * d;
      const T* pb = p + b * d;
      const T* nb = n + ((b + phase) / chunk) * K * d;
      for (int64_t k = 0; k < K; ++k) {
        const T* nk = nb + k * d;
        row_keep(key, static_cast<uint64_t>(row0 + b), static_cast<uint64_t>(k), d, threshold, s.u.data(), kp);
        T se = 0, sp = 0;
        if (Kind == 3) {
#pragma omp simd reduction(+ : se, sp)
          for (int64_t i = 0; i < half; ++i) {
            const T mr = kp[i] != T(0) ? nk[i] : pb[i];
            const T mi = kp[half + i] != T(0) ? nk[half + i] : pb[half + i];
            const T er = mr - qb[i], ei = mi - qb[half + i];
            const T fr = nk[i] - qb[i], fi = nk[half + i] - qb[half + i];
            se += std::sqrt(er * er + ei * ei);
            if (Plain) sp += std::sqrt(fr * fr + fi * fi);
          }
        } else {
#pragma omp simd reduction(+ : se, sp)
          for (int64_t j = 0; j < d; ++j) {
            const T m = kp[j] != T(0) ? nk[j] : pb[j];
            if (Kind == 0) {
              se += qb[j] * m;
              if (Plain) sp += qb[j] * nk[j];
            } else if (Kind == 1) {
              se += std::abs(m - qb[j]);
              if (Plain) sp += std::abs(nk[j] - qb[j]);
            } else {
              se += (m - qb[j]) * (m - qb[j]);
              if (Plain) sp += (nk[j] - qb[j]) * (nk[j] - qb[j]);
            }
          }
          if (Kind == 2) {
            se = std::sqrt(se);
            sp = std::sqrt(sp);
          }
        }
        emu[b * K + k] = se;
        if (Plain) plain[b * K + k] = sp;
      }
    }
  });
}

// d score / d m (times the upstream gradient g) for one coordinate; dist: the row's L2 norm
template <typename T, int Kind>
inline T slope(T m, T qj, T g, T dist) {
  if (Kind == 0) return g * qj;
  if (Kind == 1) return g * sign_of(m - qj);
  return dist > 0 ? g * (m - qj) / dist : T(0);  // L2
}

// Gradients of one chunk of rows [c * chunk, (c + 1) * chunk): grad_n of its negatives is
// written by this task alone, so chunks run in parallel without atomics.
template <typename T, int Kind, bool Plain>
void backward_impl(const T* q, const T* p, const T* n, const T* g_emu, const T* g_plain, const T* emu,
                   const T* plain, T* gq, T* gp, T* gn, int64_t B, int64_t K, int64_t d, int64_t chunk,
                   int64_t phase, uint64_t key, int64_t row0, uint64_t threshold) {
  const int64_t chunks = (B + phase + chunk - 1) / chunk;
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    Scratch<T> s(d);
    T* kp = s.keep.data();
    T* v = s.grad.data();
    const int64_t half = d / 2;
    for (int64_t c = begin; c < end; ++c) {
      T* gnc = gn + c * K * d;
      const T* nb = n + c * K * d;
      const int64_t lo = std::max<int64_t>(0, c * chunk - phase), hi = std::min(B, (c + 1) * chunk - phase);
      for (int64_t b = lo; b < hi; ++b) {
        const bool first = b == lo;  // the chunk's first row writes its negatives' gradient, the others add
        const T* qb = q + b * d;
        const T* pb = p + b * d;
        T* gqb = gq + b * d;
        T* gpb = gp + b * d;
        for (int64_t k = 0; k < K; ++k) {
          const T* nk = nb + k * d;
          T* gnk = gnc + k * d;
          const T ge = g_emu[b * K + k];
          const T gpl = Plain ? g_plain[b * K + k] : T(0);
          row_keep(key, static_cast<uint64_t>(row0 + b), static_cast<uint64_t>(k), d, threshold, s.u.data(), kp);
          if (Kind == 3) {
#pragma omp simd
            for (int64_t i = 0; i < half; ++i) {
              const int64_t r = i, im = half + i;
              const T mr = kp[r] != T(0) ? nk[r] : pb[r], mi = kp[im] != T(0) ? nk[im] : pb[im];
              const T er = mr - qb[r], ei = mi - qb[im];
              const T mod = std::sqrt(er * er + ei * ei);
              const T sr = mod > 0 ? ge * er / mod : T(0), si = mod > 0 ? ge * ei / mod : T(0);
              T fr = 0, fi = 0;
              if (Plain) {
                const T dr = nk[r] - qb[r], di = nk[im] - qb[im];
                const T pm = std::sqrt(dr * dr + di * di);
                fr = pm > 0 ? gpl * dr / pm : T(0);
                fi = pm > 0 ? gpl * di / pm : T(0);
              }
              v[r] = kp[r] * sr + fr;
              v[im] = kp[im] * si + fi;
              gpb[r] += (T(1) - kp[r]) * sr;
              gpb[im] += (T(1) - kp[im]) * si;
              gqb[r] -= sr + fr;
              gqb[im] -= si + fi;
            }
          } else {
            const T de = Kind == 2 ? emu[b * K + k] : T(0);
            const T dp = (Kind == 2 && Plain) ? plain[b * K + k] : T(0);
#pragma omp simd
            for (int64_t j = 0; j < d; ++j) {
              const T m = kp[j] != T(0) ? nk[j] : pb[j];
              const T sl = slope<T, Kind>(m, qb[j], ge, de);
              const T f = Plain ? slope<T, Kind>(nk[j], qb[j], gpl, dp) : T(0);
              v[j] = kp[j] * sl + f;
              gpb[j] += (T(1) - kp[j]) * sl;
              if (Kind == 0) {
                gqb[j] += ge * m + (Plain ? gpl * nk[j] : T(0));
              } else {
                gqb[j] -= sl + f;
              }
            }
          }
          if (first) {  // plain stores: grad_n is not read where it is first written
#pragma omp simd
            for (int64_t j = 0; j < d; ++j) gnk[j] = v[j];
          } else {
#pragma omp simd
            for (int64_t j = 0; j < d; ++j) gnk[j] += v[j];
          }
        }
      }
    }
  });
}

void check(const torch::Tensor& q, const torch::Tensor& p, const torch::Tensor& n, int64_t chunk, int64_t phase) {
  TORCH_CHECK(q.device().is_cpu(), "fused EMU: CPU tensors only");
  TORCH_CHECK(q.dim() == 2 && p.sizes() == q.sizes(), "fused EMU: q and p must be (B, d) alike");
  TORCH_CHECK(n.dim() == 3 && n.size(2) == q.size(1), "fused EMU: n must be (C, K, d)");
  TORCH_CHECK(chunk >= 1 && phase >= 0 && phase < chunk, "fused EMU: need 0 <= phase < chunk");
  TORCH_CHECK(n.size(0) == (q.size(0) + phase + chunk - 1) / chunk, "fused EMU: n must hold ceil((B + phase) / chunk) rows");
  TORCH_CHECK(q.is_contiguous() && p.is_contiguous() && n.is_contiguous(), "fused EMU: contiguous tensors only");
  TORCH_CHECK(q.scalar_type() == p.scalar_type() && q.scalar_type() == n.scalar_type(), "fused EMU: one dtype");
}

template <typename T, bool Plain>
void dispatch_forward(int64_t kind, const T* q, const T* p, const T* n, T* e, T* pl, int64_t B, int64_t K,
                      int64_t d, int64_t chunk, int64_t phase, uint64_t key, int64_t row0, uint64_t thr) {
  switch (kind) {
    case 0: forward_impl<T, 0, Plain>(q, p, n, e, pl, B, K, d, chunk, phase, key, row0, thr); break;
    case 1: forward_impl<T, 1, Plain>(q, p, n, e, pl, B, K, d, chunk, phase, key, row0, thr); break;
    case 2: forward_impl<T, 2, Plain>(q, p, n, e, pl, B, K, d, chunk, phase, key, row0, thr); break;
    case 3: forward_impl<T, 3, Plain>(q, p, n, e, pl, B, K, d, chunk, phase, key, row0, thr); break;
    default: TORCH_CHECK(false, "fused EMU: unknown kind ", kind);
  }
}

template <typename T, bool Plain>
void dispatch_backward(int64_t kind, const T* q, const T* p, const T* n, const T* ge, const T* gpl, const T* e,
                       const T* pl, T* gq, T* gp, T* gn, int64_t B, int64_t K, int64_t d, int64_t chunk,
                       int64_t phase, uint64_t key, int64_t row0, uint64_t thr) {
  switch (kind) {
    case 0: backward_impl<T, 0, Plain>(q, p, n, ge, gpl, e, pl, gq, gp, gn, B, K, d, chunk, phase, key, row0,
                                                 thr); break;
    case 1: backward_impl<T, 1, Plain>(q, p, n, ge, gpl, e, pl, gq, gp, gn, B, K, d, chunk, phase, key, row0,
                                                 thr); break;
    case 2: backward_impl<T, 2, Plain>(q, p, n, ge, gpl, e, pl, gq, gp, gn, B, K, d, chunk, phase, key, row0,
                                                 thr); break;
    case 3: backward_impl<T, 3, Plain>(q, p, n, ge, gpl, e, pl, gq, gp, gn, B, K, d, chunk, phase, key, row0,
                                                 thr); break;
    default: TORCH_CHECK(false, "fused EMU: unknown kind ", kind);
  }
}

std::vector<torch::Tensor> forward(torch::Tensor q, torch::Tensor p, torch::Tensor n, int64_t kind, int64_t key,
                                   int64_t row0, int64_t threshold, bool with_plain, int64_t chunk, int64_t phase) {
  check(q, p, n, chunk, phase);
  const int64_t B = q.size(0), K = n.size(1), d = q.size(1);
  TORCH_CHECK(kind != 3 || d % 2 == 0, "fused EMU: complex rows need an even width");
  auto emu = torch::empty({B, K}, q.options());
  auto plain = with_plain ? torch::empty({B, K}, q.options()) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "fused_emu_forward", [&] {
    auto run = [&](auto plain_flag) {
      dispatch_forward<scalar_t, decltype(plain_flag)::value>(
          kind, q.data_ptr<scalar_t>(), p.data_ptr<scalar_t>(), n.data_ptr<scalar_t>(), emu.data_ptr<scalar_t>(),
          with_plain ? plain.data_ptr<scalar_t>() : nullptr, B, K, d, chunk, phase, static_cast<uint64_t>(key), row0,
          static_cast<uint64_t>(threshold));
    };
    if (with_plain) run(std::true_type{}); else run(std::false_type{});
  });
  return {emu, plain};
}

std::vector<torch::Tensor> backward(torch::Tensor q, torch::Tensor p, torch::Tensor n, torch::Tensor g_emu,
                                    torch::Tensor g_plain, torch::Tensor emu, torch::Tensor plain, int64_t kind,
                                    int64_t key, int64_t row0, int64_t threshold, int64_t chunk, int64_t phase) {
  check(q, p, n, chunk, phase);
  const int64_t B = q.size(0), K = n.size(1), d = q.size(1);
  const bool with_plain = g_plain.defined() && g_plain.numel() > 0;
  g_emu = g_emu.contiguous();
  if (with_plain) g_plain = g_plain.contiguous();
  auto gq = torch::zeros_like(q), gp = torch::zeros_like(p), gn = torch::empty_like(n);  // gn: written first
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "fused_emu_backward", [&] {
    auto run = [&](auto plain_flag) {
      dispatch_backward<scalar_t, decltype(plain_flag)::value>(
          kind, q.data_ptr<scalar_t>(), p.data_ptr<scalar_t>(), n.data_ptr<scalar_t>(), g_emu.data_ptr<scalar_t>(),
          with_plain ? g_plain.data_ptr<scalar_t>() : nullptr, emu.data_ptr<scalar_t>(),
          with_plain ? plain.data_ptr<scalar_t>() : nullptr, gq.data_ptr<scalar_t>(), gp.data_ptr<scalar_t>(),
          gn.data_ptr<scalar_t>(), B, K, d, chunk, phase, static_cast<uint64_t>(key), row0,
          static_cast<uint64_t>(threshold));
    };
    if (with_plain) run(std::true_type{}); else run(std::false_type{});
  });
  return {gq, gp, gn};
}

// the keep-mask of rows row0 .. row0 + B - 1: (B, K, d) of 0. and 1. (tests; the unfused path's fast mask)
torch::Tensor mask(int64_t key, int64_t row0, int64_t B, int64_t K, int64_t d, int64_t threshold,
                   torch::ScalarType dtype) {
  auto out = torch::empty({B, K, d}, torch::TensorOptions().dtype(dtype));
  AT_DISPATCH_FLOATING_TYPES(dtype, "fused_emu_mask", [&] {
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      std::vector<uint32_t> u(d + 1);
      for (int64_t b = begin; b < end; ++b)
        for (int64_t k = 0; k < K; ++k)
          row_keep(static_cast<uint64_t>(key), static_cast<uint64_t>(row0 + b), static_cast<uint64_t>(k), d,
                   static_cast<uint64_t>(threshold), u.data(), o + (b * K + k) * d);
    });
  });
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "fused EMU scores (emu, plain)");
  m.def("backward", &backward, "gradients of q, p, n");
  m.def("mask", &mask, "the keep-mask bytes of a draw");
}
