// The divergence core's CPU kernel: every row sum the statistics need, one row at a time, in cache.
//
// Built on first use by cpu_kernel.py (torch.utils.cpp_extension, this machine's vector ISA) and
// registered as torch.ops.sparse_rlvr_divergence.row_sums. Notation as in fused.py: x, y = base and
// policy logits; a = (x - max x) / T, b = (y - max y) / T; S_a = sum e^a, S_b = sum e^b;
// d = log q - log p = (b - a) - (log S_b - log S_a).
//
// Why by hand: torch.compile makes one loop nest per reduction, so each pass streams the whole
// [C, V] chunk through memory. Here each thread takes whole rows and makes three passes over a
// row while it sits in its core's cache (bf16: 0.6 MB per row pair at V = 152k):
//   1. block maxima of x and y (the row max, and the top-k candidate blocks, as topk.py);
//   2. e^a, e^b (stored in a per-thread row buffer) and the sums S_a, S_b, sum e^a a, sum e^b b,
//      sum e^a (a - b), sum e^b (b - a);
//   3. JS from the stored exps and one log per element (only where |d| >= SERIES_BELOW; below
//      it the Taylor series of fused.py), and the count of x_v > x[policy top-1] (the rank).
// Two exps and at most one log per element, as the benchmark's roofline. Sums are float32
// within BLOCK-column blocks and float64 across blocks, as fused.py's _rowsum. Rows with NaN,
// +inf or -inf give non-finite sums; the caller recomputes them on the eager path.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using Vec = at::vec::Vectorized<float>;
constexpr int64_t BLOCK = 128;  // columns per block: top-k candidate blocks and float32 partial sums
constexpr float SERIES_BELOW = 0.5f;
constexpr int64_t SUMS = 8;  // S_a, S_b, sum e^a a, sum e^b b, sum e^a (a - b), sum e^b (b - a), 2 JS, #{x_v > x_top1}

// Two float vectors (2 * Vec::size() columns) from float, bfloat16 or half logits.
template <typename T>
inline void load2(const T* p, Vec& lo, Vec& hi) {
  if constexpr (std::is_same_v<T, float>) {
    lo = Vec::loadu(p);
    hi = Vec::loadu(p + Vec::size());
  } else {
    std::tie(lo, hi) = at::vec::convert_to_float<T>(at::vec::Vectorized<T>::loadu(p));
  }
}

constexpr int64_t STEP = 2 * Vec::size();  // columns per load2; BLOCK is a multiple of it

inline float hsum(const Vec& v) {
  return at::vec::vec_reduce_all<float>([](const Vec& a, const Vec& b) { return a + b; }, v);
}

inline float hmax(const Vec& v) {
  return at::vec::vec_reduce_all<float>([](const Vec& a, const Vec& b) { return at::vec::maximum(a, b); }, v);
}

// NaN sorts last, so comparisons stay a strict weak order on rows that hold one.
inline float key(float v) { return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v; }

// ln 2 - softplus(-e) = e/2 - e^2/8 + e^4/192 - e^6/2880 + 17 e^8/645120 (fused.py's series)
inline float series(float e) {
  float e2 = e * e;
  return e * 0.5f - e2 * (0.125f - e2 * (1.0f / 192 - e2 * (1.0f / 2880 - e2 * (17.0f / 645120))));
}

inline Vec series(const Vec& e) {
  Vec e2 = e * e;
  return e * Vec(0.5f) -
         e2 * (Vec(0.125f) - e2 * (Vec(1.0f / 192) - e2 * (Vec(1.0f / 2880) - e2 * Vec(17.0f / 645120))));
}

// One JS term (p + q) u - p relu(d) + q min(d, 0), scalar (row tails).
inline float js_term(float p, float q, float d) {
  float e = std::fabs(d);
  float u = e < SERIES_BELOW ? series(e)
                             : std::log(1.0f + std::fabs(q - p) / std::max(q + p, std::numeric_limits<float>::min()));
  return (p + q) * u - p * std::max(d, 0.0f) + q * std::min(d, 0.0f);
}

// Top-k (values, ids) of one row from its block maxima, as topk.py: the k blocks with the
// largest maxima (lowest block first on ties) plus the tail are the candidates; ties between
// values go to the lowest id.
template <typename T>
void row_topk(const T* x, const float* block_max, int64_t blocks, int64_t vocab, int64_t k, float* values, int64_t* ids,
              std::vector<int64_t>& order, std::vector<std::pair<float, int64_t>>& candidates) {
  int64_t chosen = std::min(k, blocks);
  order.resize(blocks);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + chosen, order.end(), [&](int64_t i, int64_t j) {
    float a = key(block_max[i]), b = key(block_max[j]);
    return a > b || (a == b && i < j);
  });
  candidates.clear();
  for (int64_t c = 0; c < chosen; ++c) {
    for (int64_t v = order[c] * BLOCK; v < (order[c] + 1) * BLOCK; ++v) {
      candidates.emplace_back(key(static_cast<float>(x[v])), v);
    }
  }
  for (int64_t v = blocks * BLOCK; v < vocab; ++v) {
    candidates.emplace_back(key(static_cast<float>(x[v])), v);
  }
  std::partial_sort(candidates.begin(), candidates.begin() + k, candidates.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  for (int64_t i = 0; i < k; ++i) {
    values[i] = static_cast<float>(x[candidates[i].second]);
    ids[i] = candidates[i].second;
  }
}

// Pass 1 for one row: block maxima and the row max (NaN-propagating).
template <typename T>
float row_max(const T* x, int64_t blocks, int64_t vocab, float* block_max) {
  float best = -std::numeric_limits<float>::infinity();
  for (int64_t blk = 0; blk < blocks; ++blk) {
    Vec m(-std::numeric_limits<float>::infinity());
    for (int64_t v = blk * BLOCK; v < (blk + 1) * BLOCK; v += STEP) {
      Vec lo, hi;
      load2(x + v, lo, hi);
      m = at::vec::maximum(m, at::vec::maximum(lo, hi));
    }
    block_max[blk] = hmax(m);
    best = std::isnan(best) || std::isnan(block_max[blk]) ? NAN : std::max(best, block_max[blk]);
  }
  for (int64_t v = blocks * BLOCK; v < vocab; ++v) {
    float value = static_cast<float>(x[v]);
    best = std::isnan(best) || std::isnan(value) ? NAN : std::max(best, value);
  }
  return best;
}

template <typename T>
void rows(const at::Tensor& base, const at::Tensor& policy, double inverse_t, int64_t k, at::Tensor& sums,
          at::Tensor& maxima, at::Tensor& base_top, at::Tensor& base_ids, at::Tensor& policy_top,
          at::Tensor& policy_ids, at::Tensor& at_top1) {
  const int64_t n = base.size(0), vocab = base.size(1), blocks = vocab / BLOCK;
  const int64_t base_stride = base.stride(0), policy_stride = policy.stride(0);
  const T* base_data = base.const_data_ptr<T>();
  const T* policy_data = policy.const_data_ptr<T>();
  double* sums_out = sums.data_ptr<double>();
  float* maxima_out = maxima.data_ptr<float>();
  float* base_top_out = base_top.data_ptr<float>();
  float* policy_top_out = policy_top.data_ptr<float>();
  int64_t* base_ids_out = base_ids.data_ptr<int64_t>();
  int64_t* policy_ids_out = policy_ids.data_ptr<int64_t>();
  float* at_top1_out = at_top1.data_ptr<float>();
  const float inv_t = static_cast<float>(inverse_t);

  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> exp_a(vocab), exp_b(vocab), block_max_x(blocks), block_max_y(blocks);
    std::vector<int64_t> order;
    std::vector<std::pair<float, int64_t>> candidates;
    for (int64_t r = begin; r < end; ++r) {
      const T* x = base_data + r * base_stride;
      const T* y = policy_data + r * policy_stride;
      double* out = sums_out + r * SUMS;

      // pass 1: maxima and top-k
      const float max_x = row_max(x, blocks, vocab, block_max_x.data());
      const float max_y = row_max(y, blocks, vocab, block_max_y.data());
      maxima_out[2 * r] = max_x;
      maxima_out[2 * r + 1] = max_y;
      row_topk(x, block_max_x.data(), blocks, vocab, k, base_top_out + r * k, base_ids_out + r * k, order, candidates);
      row_topk(y, block_max_y.data(), blocks, vocab, k, policy_top_out + r * k, policy_ids_out + r * k, order,
               candidates);
      const float x_top1 = static_cast<float>(x[policy_ids_out[r * k]]);
      at_top1_out[r] = x_top1;

      // pass 2: exps, stored, and their sums
      double total[6] = {0, 0, 0, 0, 0, 0};
      const Vec vmax_x(max_x), vmax_y(max_y), vinv_t(inv_t);
      for (int64_t blk = 0; blk < blocks; ++blk) {
        Vec acc[6] = {Vec(0.f), Vec(0.f), Vec(0.f), Vec(0.f), Vec(0.f), Vec(0.f)};
        for (int64_t v = blk * BLOCK; v < (blk + 1) * BLOCK; v += STEP) {
          Vec xs[2], ys[2];
          load2(x + v, xs[0], xs[1]);
          load2(y + v, ys[0], ys[1]);
          for (int h = 0; h < 2; ++h) {
            Vec a = (xs[h] - vmax_x) * vinv_t, b = (ys[h] - vmax_y) * vinv_t;
            Vec ea = a.exp(), eb = b.exp(), diff = a - b;
            ea.store(exp_a.data() + v + h * Vec::size());
            eb.store(exp_b.data() + v + h * Vec::size());
            acc[0] = acc[0] + ea;
            acc[1] = acc[1] + eb;
            acc[2] = at::vec::fmadd(ea, a, acc[2]);
            acc[3] = at::vec::fmadd(eb, b, acc[3]);
            acc[4] = at::vec::fmadd(ea, diff, acc[4]);
            acc[5] = acc[5] - eb * diff;
          }
        }
        for (int i = 0; i < 6; ++i) total[i] += hsum(acc[i]);
      }
      {
        float tail[6] = {0, 0, 0, 0, 0, 0};
        for (int64_t v = blocks * BLOCK; v < vocab; ++v) {
          float a = (static_cast<float>(x[v]) - max_x) * inv_t, b = (static_cast<float>(y[v]) - max_y) * inv_t;
          float ea = std::exp(a), eb = std::exp(b);
          exp_a[v] = ea;
          exp_b[v] = eb;
          tail[0] += ea;
          tail[1] += eb;
          tail[2] += ea * a;
          tail[3] += eb * b;
          tail[4] += ea * (a - b);
          tail[5] += eb * (b - a);
        }
        for (int i = 0; i < 6; ++i) out[i] = total[i] + tail[i];
      }

      // pass 3: JS and the rank, now that the normalisers are known
      const float shift = static_cast<float>(std::log(out[1]) - std::log(out[0]));
      const float inv_sa = static_cast<float>(1.0 / out[0]), inv_sb = static_cast<float>(1.0 / out[1]);
      const Vec vshift(shift), vinv_sa(inv_sa), vinv_sb(inv_sb), vtop(x_top1), zero(0.f), one(1.f);
      const Vec below(SERIES_BELOW), tiny(std::numeric_limits<float>::min());
      double js = 0, above = 0;
      for (int64_t blk = 0; blk < blocks; ++blk) {
        Vec js_acc(0.f), above_acc(0.f);
        for (int64_t v = blk * BLOCK; v < (blk + 1) * BLOCK; v += STEP) {
          Vec xs[2], ys[2];
          load2(x + v, xs[0], xs[1]);
          load2(y + v, ys[0], ys[1]);
          for (int h = 0; h < 2; ++h) {
            const int64_t at = v + h * Vec::size();
            above_acc = above_acc + Vec::blendv(zero, one, xs[h] > vtop);
            Vec a = (xs[h] - vmax_x) * vinv_t, b = (ys[h] - vmax_y) * vinv_t;
            Vec d = (b - a) - vshift;
            Vec p = Vec::loadu(exp_a.data() + at) * vinv_sa, q = Vec::loadu(exp_b.data() + at) * vinv_sb;
            Vec e = d.abs();
            Vec use_log = e >= below;
            Vec u = series(e);
            if (use_log.zero_mask() != (1 << Vec::size()) - 1) {  // some |d| >= SERIES_BELOW in this vector
              Vec ratio = (q - p).abs() / at::vec::maximum(q + p, tiny);
              u = Vec::blendv(u, (ratio + one).log(), use_log);
            }
            js_acc = js_acc + ((p + q) * u - p * at::vec::maximum(d, zero) + q * at::vec::minimum(d, zero));
          }
        }
        js += hsum(js_acc);
        above += hsum(above_acc);
      }
      float js_tail = 0, above_tail = 0;
      for (int64_t v = blocks * BLOCK; v < vocab; ++v) {
        float xv = static_cast<float>(x[v]);
        float a = (xv - max_x) * inv_t, b = (static_cast<float>(y[v]) - max_y) * inv_t;
        js_tail += js_term(exp_a[v] * inv_sa, exp_b[v] * inv_sb, (b - a) - shift);
        above_tail += xv > x_top1 ? 1.f : 0.f;
      }
      out[6] = js + js_tail;
      out[7] = above + above_tail;
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> row_sums(
    const at::Tensor& base, const at::Tensor& policy, double inverse_t, int64_t k) {
  TORCH_CHECK(base.device().is_cpu() && policy.device().is_cpu(), "row_sums: CPU tensors only");
  TORCH_CHECK(base.dim() == 2 && base.sizes() == policy.sizes(), "row_sums: two [C, V] tensors of one shape");
  TORCH_CHECK(base.scalar_type() == policy.scalar_type(), "row_sums: base and policy must share a dtype");
  TORCH_CHECK(base.stride(1) == 1 && policy.stride(1) == 1, "row_sums: rows must be contiguous");
  TORCH_CHECK(k >= 1 && k <= base.size(1), "row_sums: need 1 <= k <= V");
  const int64_t n = base.size(0);
  auto f32 = base.options().dtype(at::kFloat);
  at::Tensor sums = at::empty({n, SUMS}, base.options().dtype(at::kDouble));
  at::Tensor maxima = at::empty({n, 2}, f32);
  at::Tensor base_top = at::empty({n, k}, f32), policy_top = at::empty({n, k}, f32);
  at::Tensor base_ids = at::empty({n, k}, base.options().dtype(at::kLong));
  at::Tensor policy_ids = at::empty({n, k}, base.options().dtype(at::kLong));
  at::Tensor at_top1 = at::empty({n}, f32);
  switch (base.scalar_type()) {
    case at::kFloat:
      rows<float>(base, policy, inverse_t, k, sums, maxima, base_top, base_ids, policy_top, policy_ids, at_top1);
      break;
    case at::kBFloat16:
      rows<at::BFloat16>(base, policy, inverse_t, k, sums, maxima, base_top, base_ids, policy_top, policy_ids, at_top1);
      break;
    case at::kHalf:
      rows<at::Half>(base, policy, inverse_t, k, sums, maxima, base_top, base_ids, policy_top, policy_ids, at_top1);
      break;
    default:
      TORCH_CHECK(false, "row_sums: float32, bfloat16 or float16 logits only, got ", base.scalar_type());
  }
  return {sums, maxima, base_top, base_ids, policy_top, policy_ids, at_top1};
}

}  // namespace

TORCH_LIBRARY(sparse_rlvr_divergence, m) {
  m.def(
      "row_sums(Tensor base, Tensor policy, float inverse_t, int k) -> "
      "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.impl("row_sums", c10::DispatchKey::CPU, TORCH_FN(row_sums));
}
