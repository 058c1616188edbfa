// Which near-duplicate pairs link prompts into groups, and the file's background similarity
// that sets how far below the near-duplicate cosine template groups are looked for
// (near_duplicates.hpp).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "evidence_math.hpp"
#include "random.hpp"
#include "ringscan/near_duplicates.hpp"
#include "union_find.hpp"

namespace ringscan {
namespace {

/// Similarity between consecutive levels of the template search, on the background's scale
/// (a cosine where unrelated prompts sit at 0; on_background_scale).
constexpr float kLevelStep = 0.05f;
/// Requests per account a template group holds at least: an operator reuses a template (half
/// the accounts, on average, sent two of its instances), while people asking about a
/// trending topic in their own words send one or two prompts each. Chosen on the tuning
/// files (docs/method.md).
constexpr double kTemplateReuse = 1.5;
/// Random pairs of requests the background is measured on.
constexpr int64_t kBackgroundPairs = 200000;
/// The template floor sits this many background scales above the median unrelated pair: a
/// pair of unrelated prompts reaches it about once in 700 (a normal's 3 sigma).
constexpr double kFloorScales = 3.0;
/// The 99th percentile of a normal, in standard deviations: turns the background's spread
/// between its median and its 99th percentile into a scale.
constexpr double kUpperQuantileScales = 2.326;
/// Background upper percentile, on the background's scale, at which the near-duplicate
/// similarity is likely too low for the embedding model (unrelated prompts then reach within
/// 0.2 of the default 0.9).
constexpr float kCrowdedBackground = 0.7f;

/// Requests and distinct accounts of each component (indexed by root) among the requests
/// `in`; requests are in canonical order (by account), so a root's accounts arrive ascending
/// and a repeat is always the last one seen.
void count_members(int64_t* parent, const std::vector<int64_t>& in, const std::vector<int64_t>& owner,
                   std::vector<int64_t>& root, std::vector<int64_t>& requests, std::vector<int64_t>& accounts,
                   std::vector<int64_t>& last) {
  for (int64_t r : in) {
    requests[r] = accounts[r] = 0;
    last[r] = -1;
  }
  for (int64_t r : in) {
    const int64_t x = find_root(parent, r);
    root[r] = x;
    ++requests[x];
    if (last[x] != owner[r]) {
      last[x] = owner[r];
      ++accounts[x];
    }
  }
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> background_pairs(const CanonicalRequests& req) {
  std::vector<std::pair<int64_t, int64_t>> pairs;
  const int64_t R = req.num_requests;
  if (R < 2 || req.num_accounts < 2 || req.dim == 0) return pairs;
  // Pairs drawn over canonical indices with a fixed stream: the same sample for any order of
  // the input's rows.
  Rng rng(stream_key(0x6261636b67726f75ULL, uint64_t(R), uint64_t(req.num_accounts)));
  pairs.reserve(kBackgroundPairs);
  for (int64_t tries = 0; tries < 4 * kBackgroundPairs && int64_t(pairs.size()) < kBackgroundPairs; ++tries) {
    const int64_t a = rng.below(R), b = rng.below(R);
    if (req.request_owner[a] != req.request_owner[b]) pairs.emplace_back(a, b);
  }
  return pairs;
}

BackgroundSimilarity background_from_cosines(std::vector<float> cosines) {
  BackgroundSimilarity bg;
  if (cosines.size() < 100) return bg;
  bg.pairs = int64_t(cosines.size());
  // Order statistics: the same values whatever order the cosines came in.
  auto quantile = [&](double q) {
    const auto at = cosines.begin() + int64_t(q * double(cosines.size() - 1));
    std::nth_element(cosines.begin(), at, cosines.end());
    return *at;
  };
  bg.median = quantile(0.5);
  bg.upper = quantile(0.99);
  return bg;
}

BackgroundSimilarity background_similarity(const CanonicalRequests& req) {
  const int64_t D = req.dim;
  std::vector<float> cosines;
  for (const auto& [a, b] : background_pairs(req))
    cosines.push_back(dot_product(req.unit_embeddings.data() + a * D, req.unit_embeddings.data() + b * D, D));
  return background_from_cosines(std::move(cosines));
}

float background_offset(const BackgroundSimilarity& bg) { return bg.pairs > 0 ? std::max(0.0f, bg.median) : 0.0f; }

float on_background_scale(const BackgroundSimilarity& bg, float similarity) {
  const double m = background_offset(bg);
  return float(std::min(1.0, m + double(similarity) * (1.0 - m)));
}

float estimated_template_similarity(const BackgroundSimilarity& bg, float duplicate_similarity) {
  if (bg.pairs == 0) return duplicate_similarity;  // nothing to compare with: no template search
  const double m = background_offset(bg);
  const double scale = std::max(0.0, double(bg.upper) - double(bg.median)) / kUpperQuantileScales;
  const double floor = std::max(double(bg.median) + kFloorScales * scale, m + 0.5 * (double(duplicate_similarity) - m));
  return float(std::min(floor, double(duplicate_similarity)));
}

bool crowded_background(const BackgroundSimilarity& bg) {
  const double m = background_offset(bg);
  return bg.pairs > 0 && m < 1.0 && (double(bg.upper) - m) / (1.0 - m) >= double(kCrowdedBackground);
}

float join_similarity(const DetectOptions& options) {
  return options.template_similarity > 0 ? std::min(options.duplicate_similarity, options.template_similarity)
                                         : options.duplicate_similarity;
}

std::vector<RequestPair> prompt_links(const CanonicalRequests& req, std::vector<RequestPair> pairs,
                                      const DetectOptions& options, float scale) {
  const float step = kLevelStep * std::clamp(scale, 0.01f, 1.0f);
  const int64_t R = req.num_requests, A = req.num_accounts;
  const float tau = options.duplicate_similarity, floor = join_similarity(options);
  auto by_requests = [](const RequestPair& a, const RequestPair& b) {
    return a.first != b.first ? a.first < b.first : a.second < b.second;
  };
  // Near-duplicates proper: every pair at or above the near-duplicate cosine, first. The
  // pairs are reordered and trimmed in place: they are the stage's largest array.
  const auto near_end = std::partition(pairs.begin(), pairs.end(),
                                       [&](const RequestPair& p) { return p.similarity >= tau; });
  const int levels = int(std::floor((double(tau) - double(floor)) / double(step) + 1e-4));
  if (levels < 2) {
    pairs.erase(near_end, pairs.end());
    return pairs;
  }
  std::vector<int64_t> parent(R);
  std::iota(parent.begin(), parent.end(), 0);
  for (auto p = pairs.begin(); p != near_end; ++p) union_sets(parent.data(), p->first, p->second);

  // Requests no other account sent a near-duplicate of.
  std::vector<int64_t> all(R), root(R), requests(R), accounts(R), last(R);
  std::iota(all.begin(), all.end(), 0);
  count_members(parent.data(), all, req.request_owner, root, requests, accounts, last);
  std::vector<int64_t> alone;
  std::vector<uint8_t> is_alone(R, 0);
  for (int64_t r = 0; r < R; ++r)
    if (accounts[root[r]] < 2) {
      alone.push_back(r);
      is_alone[r] = 1;
    }

  // Among those, template groups, from the pairs below the near-duplicate cosine joined level
  // by level (cosine descending). A component is a template group at a level when it is rare
  // (sent by no more accounts than a common group), reused (kTemplateReuse) and stable (one
  // level further down it has at most a quarter more accounts): a template's instances form
  // a clump apart from other prompts, while ordinary prompts on one topic form a continuum
  // whose components grow at every level. Each request takes the widest such group it is
  // in; the rest keep their near-duplicates only.
  const auto below = near_end;
  const auto below_end = std::partition(
      below, pairs.end(), [&](const RequestPair& p) { return is_alone[p.first] && is_alone[p.second]; });
  std::sort(below, below_end, [&](const RequestPair& a, const RequestPair& b) {
    return a.similarity != b.similarity ? a.similarity > b.similarity : by_requests(a, b);
  });
  const int64_t common = common_group_accounts(A, options.max_prompt_share);
  auto level_cosine = [&](int64_t l) { return tau - float(l) * step; };
  std::vector<int64_t> chosen_level(R, -1), chosen_root(R, -1), previous_root(R, -1), previous_accounts(R, 0),
      previous_requests(R, 0);
  auto next = below;
  for (int64_t l = 1; l <= levels; ++l) {
    const float level = level_cosine(l);
    for (; next != below_end && next->similarity >= level; ++next) union_sets(parent.data(), next->first, next->second);
    count_members(parent.data(), alone, req.request_owner, root, requests, accounts, last);
    // The previous level's components are judged now that this one is known.
    if (l >= 2)
      for (int64_t r : alone) {
        const int64_t before = previous_accounts[r], now = accounts[root[r]];
        const bool reused = double(previous_requests[r]) >= kTemplateReuse * double(before);
        if (before >= 2 && before <= common && reused && now <= before + std::max<int64_t>(1, before / 4)) {
          chosen_level[r] = l - 1;
          chosen_root[r] = previous_root[r];
        }
      }
    for (int64_t r : alone) {
      previous_root[r] = root[r];
      previous_requests[r] = requests[root[r]];
      previous_accounts[r] = accounts[root[r]];
    }
  }
  // The pairs inside each chosen group at or above its level: they connect exactly the group.
  const auto kept_end = std::remove_if(below, below_end, [&](const RequestPair& p) {
    const int64_t l = chosen_level[p.first];
    return l < 0 || l != chosen_level[p.second] || chosen_root[p.first] != chosen_root[p.second] ||
           p.similarity < level_cosine(l);
  });
  pairs.erase(kept_end, pairs.end());
  std::sort(pairs.begin(), pairs.end(), by_requests);
  return pairs;
}

}  // namespace ringscan
