// Quality of a detection against ground truth: Jaccard ring matching, account precision and
// recall, adjusted Rand index. Everything is O(A) through one contingency table.
#include "ringscan/evaluate.hpp"
#include "ringscan/generate.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>

#include "ringscan/error.hpp"

namespace ringscan {
namespace {

// Labels below zero all mean "not in a ring". The contract uses -1; treating every negative
// value the same keeps evaluate from inventing a ring out of a stray -2.
bool in_ring(int64_t label) { return label >= 0; }

struct PairHash {
  std::size_t operator()(const std::pair<int64_t, int64_t>& p) const noexcept {
    // splitmix64-style mixing: ring ids are small consecutive integers, which a plain
    // XOR of std::hash values would pile into few buckets.
    uint64_t x = static_cast<uint64_t>(p.first) * 0x9E3779B97F4A7C15ull ^
                 (static_cast<uint64_t>(p.second) + 0x632BE59BD9B4E019ull);
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return static_cast<std::size_t>(x);
  }
};

// Pairs among n items, as double: n can reach 1e8 accounts, whose pair count (5e15) is
// still exact in a double and far from overflowing the later products.
double pairs(int64_t n) { return 0.5 * static_cast<double>(n) * static_cast<double>(n - 1); }

}  // namespace

Evaluation evaluate_rings(const std::vector<int64_t>& reported_ring,
                          const std::vector<int64_t>& truth_label) {
  RINGSCAN_EXPECTS(reported_ring.size() == truth_label.size(),
                   "evaluate: " + std::to_string(reported_ring.size()) +
                       " reported labels but " + std::to_string(truth_label.size()) +
                       " truth labels (they must be aligned on the same accounts)");
  const int64_t n = static_cast<int64_t>(reported_ring.size());

  std::unordered_map<int64_t, int64_t> reported_size, truth_size;
  std::unordered_map<std::pair<int64_t, int64_t>, int64_t, PairHash> overlap;
  int64_t reported_accounts = 0, truth_accounts = 0, both = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = reported_ring[static_cast<std::size_t>(i)];
    const int64_t t = truth_label[static_cast<std::size_t>(i)];
    if (in_ring(r)) {
      ++reported_size[r];
      ++reported_accounts;
    }
    if (in_ring(t)) {
      ++truth_size[t];
      ++truth_accounts;
    }
    if (in_ring(r) && in_ring(t)) {
      ++overlap[{r, t}];
      ++both;
    }
  }

  Evaluation ev;
  ev.planted_rings = static_cast<int64_t>(truth_size.size());
  ev.reported_rings = static_cast<int64_t>(reported_size.size());
  ev.false_ring_accounts = reported_accounts - both;
  // Nothing reported accuses nobody: precision 1 (no false accusation was made), so an idle
  // detector is judged by its recall alone rather than by an undefined 0/0.
  ev.account_precision =
      reported_accounts > 0 ? static_cast<double>(both) / static_cast<double>(reported_accounts)
                            : 1.0;
  // Nothing planted leaves nothing to miss.
  ev.account_recall =
      truth_accounts > 0 ? static_cast<double>(both) / static_cast<double>(truth_accounts) : 1.0;

  // Best reported ring per planted ring. Jaccard = |R n T| / (|R| + |T| - |R n T|); only
  // overlapping pairs can have a positive Jaccard, so the contingency cells suffice.
  struct Best {
    int64_t ring = -1, inter = 0, uni = 1;
  };
  std::unordered_map<int64_t, Best> best;
  best.reserve(truth_size.size());
  for (const auto& [key, inter] : overlap) {
    const auto [r, t] = key;
    const int64_t uni = reported_size[r] + truth_size[t] - inter;
    Best& b = best[t];
    // Compare inter/uni exactly by cross-multiplication (both factors <= A, so the products
    // stay below 2^63 for any realistic A); ties go to the smaller ring id so the result
    // does not depend on hash-map order.
    const int64_t lhs = inter * b.uni, rhs = b.inter * uni;
    if (b.ring < 0 || lhs > rhs || (lhs == rhs && r < b.ring)) b = Best{r, inter, uni};
  }

  ev.matches.reserve(truth_size.size());
  for (const auto& [t, size] : truth_size) {
    RingMatch m;
    m.truth_label = t;
    m.truth_size = size;
    const auto it = best.find(t);
    if (it != best.end()) {
      m.best_ring = it->second.ring;
      m.jaccard = static_cast<double>(it->second.inter) / static_cast<double>(it->second.uni);
      // Integer test, so that exactly one half (a ring split in two) counts as found
      // regardless of rounding.
      m.found = 2 * it->second.inter >= it->second.uni;
    }
    if (m.found) ++ev.found_rings;
    ev.matches.push_back(m);
  }
  std::sort(ev.matches.begin(), ev.matches.end(),
            [](const RingMatch& a, const RingMatch& b) { return a.truth_label < b.truth_label; });
  ev.ring_recall = ev.planted_rings > 0 ? static_cast<double>(ev.found_rings) /
                                              static_cast<double>(ev.planted_rings)
                                        : 1.0;

  // Adjusted Rand index (Hubert & Arabie). Each account outside a ring is its own singleton
  // cluster; singletons contribute C(1,2) = 0 to every sum, so only ring cells are counted.
  double sum_cells = 0, sum_reported = 0, sum_truth = 0;
  for (const auto& [key, count] : overlap) sum_cells += pairs(count);
  for (const auto& [r, size] : reported_size) sum_reported += pairs(size);
  for (const auto& [t, size] : truth_size) sum_truth += pairs(size);
  const double total = pairs(n);
  if (total <= 0) {
    ev.adjusted_rand_index = 1.0;  // fewer than two accounts: any two partitions agree
  } else {
    const double expected = sum_reported * sum_truth / total;
    const double max_index = 0.5 * (sum_reported + sum_truth);
    const double denominator = max_index - expected;
    // The denominator vanishes only when both partitions are all singletons or both are one
    // cluster (AM-GM), i.e. when they are identical: a perfect agreement. The tolerance
    // absorbs the rounding of sum_reported * sum_truth / total at very large A.
    ev.adjusted_rand_index = denominator > 1e-12 * max_index
                                 ? (sum_cells - expected) / denominator
                                 : 1.0;
  }
  return ev;
}

LookalikeAccusations lookalike_accusations(const std::vector<int64_t>& reported_ring,
                                           const std::vector<int64_t>& truth_label,
                                           const std::vector<int64_t>& roles) {
  RINGSCAN_EXPECTS(reported_ring.size() == truth_label.size() && roles.size() == truth_label.size(),
                   "lookalike_accusations: reported rings, labels and roles must be aligned");
  LookalikeAccusations out;
  std::unordered_map<int64_t, std::pair<int64_t, int64_t>> per_ring;  // (members, innocent)
  for (std::size_t i = 0; i < roles.size(); ++i) {
    if (reported_ring[i] < 0) continue;
    auto& counts = per_ring[reported_ring[i]];
    ++counts.first;
    if (truth_label[i] >= 0) continue;
    ++counts.second;
    switch (static_cast<AccountRole>(roles[i])) {
      case AccountRole::Team: ++out.team_accounts; break;
      case AccountRole::Crowd: ++out.crowd_accounts; break;
      case AccountRole::ViralSharer: ++out.viral_sharer_accounts; break;
      case AccountRole::TemplateApp: ++out.template_app_accounts; break;
      case AccountRole::ProxyCustomer: ++out.proxy_customer_accounts; break;
      default: ++out.other_innocent_accounts; break;
    }
  }
  for (const auto& [ring, counts] : per_ring) out.mostly_innocent_rings += 2 * counts.second >= counts.first;
  return out;
}

}  // namespace ringscan
