#include "ringscan/near_duplicates.hpp"

#include <faiss/VectorTransform.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "evidence_math.hpp"
#include "faiss_util.hpp"
#include "request_index.hpp"
#include "self_join.hpp"
#include "stage_variants.hpp"
#include "ringscan/error.hpp"
#include "union_find.hpp"
#include "parallel.hpp"
#include "prompt_pairs.hpp"
#include "ringscan/sizes.hpp"

namespace ringscan {
namespace {

constexpr int64_t kProjectBatch = 8192;
// Candidates are taken a little beyond the threshold, then verified exactly, so results do
// not depend on FAISS's (BLAS, thread-count dependent) rounding.
constexpr float kCandidateSlack = 0.02f;
/// Neighbours per prompt searched below the near-duplicate cosine, for template groups.
constexpr int64_t kTemplateNeighbours = 8;

}  // namespace

std::vector<RequestPair> near_duplicate_pairs(const CanonicalRequests& req,
                                              const DetectOptions& options, const Context& ctx,
                                              bool* exact_index) {
  return near_duplicate_pairs(req, options, ctx, exact_index, host_self_join());
}

RequestIndexPlan request_index_plan(int64_t R, int64_t D, const DetectOptions& options, const SelfJoin& join) {
  RequestIndexPlan plan;
  plan.tau = join_similarity(options);
  RINGSCAN_EXPECTS(plan.tau > 0 && plan.tau <= 1, "--duplicate-similarity must be in (0, 1]");
  RINGSCAN_EXPECTS(options.duplicate_neighbours >= 1, "--duplicate-neighbours must be >= 1");
  plan.exact = R <= std::max(join.exact_up_to, options.exact_request_limit) || D <= 8;
  // Large inputs on the CPU: the IVF self-join over a PCA projection (orthonormal rows, so
  // projected distances are lower bounds of true ones and the radius test there loses no true
  // near-duplicate of a cell). Small inputs, and the device's join: full dimension.
  plan.project = !plan.exact && !join.full_dimension;
  plan.reduced = plan.project ? std::min<int64_t>(std::max<int64_t>(options.reduced_dim, 8), D) : D;
  // Unit vectors: squared L2 distance 2 - 2 cos. Candidates are taken a little beyond the
  // radius, then verified exactly in full dimension.
  auto candidate_radius = [](float cosine) { return 2.0f * (1.0f - cosine) + kCandidateSlack; };
  plan.radius = candidate_radius(plan.tau);
  plan.cap = options.duplicate_neighbours;
  // Below the near-duplicate cosine (template groups) a few neighbours per prompt suffice.
  if (plan.tau < options.duplicate_similarity) {
    plan.tiers.near = candidate_radius(options.duplicate_similarity);
    plan.tiers.far_cap = kTemplateNeighbours;
  }
  return plan;
}

JoinFilter verified_cosine(const float* unit_rows, int64_t D, float tau) {
  return [unit_rows, D, tau](int64_t q, int64_t other, float, float* sim) {
    *sim = dot_product(unit_rows + q * D, unit_rows + other * D, D);
    return *sim >= tau;
  };
}

std::vector<int64_t> strided_positions(int64_t n, int64_t want) {
  const int64_t step = std::max<int64_t>(1, n / std::max<int64_t>(1, want));
  std::vector<int64_t> at;
  for (int64_t i = 0; i < n && int64_t(at.size()) < want; i += step) at.push_back(i);
  return at;
}

RequestProjection::RequestProjection(int64_t dim, int64_t reduced)
    : pca_(std::make_unique<faiss::PCAMatrix>(dim, reduced, 0.0f, false)), dim_(dim), reduced_(reduced) {}
RequestProjection::~RequestProjection() = default;

// BLAS runs single-threaded here, and every batch it is given is full: OpenBLAS rounds
// small products (and a thread's share of a split one) through other kernels, so a row's
// projection would otherwise depend on how many rows share its batch, and a distributed
// index, whose batches start elsewhere, would project some rows differently.
void RequestProjection::train(const float* sample, int64_t n) {
  SerialBlasScope serial_blas;
  faiss_call("projecting requests for the request index", [&] { pca_->train(n, sample); });
}

void RequestProjection::apply(const float* rows, int64_t n, float* out) const {
  SerialBlasScope serial_blas;
  faiss_call("projecting requests for the request index", [&] {
    const int64_t batches = (n + kProjectBatch - 1) / kProjectBatch;
    detail::parallel_for(batches, 1, [&](int64_t b) {
      const int64_t first = b * kProjectBatch, count = std::min(kProjectBatch, n - first);
      if (count == kProjectBatch) {
        pca_->apply_noalloc(count, rows + first * dim_, out + first * reduced_);
        return;
      }
      std::vector<float> in(kProjectBatch * dim_, 0.0f), projected(kProjectBatch * reduced_);
      std::copy_n(rows + first * dim_, count * dim_, in.data());
      pca_->apply_noalloc(kProjectBatch, in.data(), projected.data());
      std::copy_n(projected.data(), count * reduced_, out + first * reduced_);
    });
  });
}

std::vector<uint8_t> RequestProjection::saved() const {
  faiss::VectorIOWriter out;
  faiss_call("saving the request projection", [&] { faiss::write_VectorTransform(pca_.get(), &out); });
  return out.data;
}

void RequestProjection::load(const std::vector<uint8_t>& bytes) {
  faiss::VectorIOReader in;
  in.data = bytes;
  std::unique_ptr<faiss::VectorTransform> vt;
  faiss_call("loading the request projection", [&] { vt.reset(faiss::read_VectorTransform(&in)); });
  auto* pca = dynamic_cast<faiss::PCAMatrix*>(vt.get());
  if (pca == nullptr || pca->d_in != dim_ || pca->d_out != reduced_)
    throw InternalError("request projection: the bytes hold another transform");
  vt.release();
  pca_.reset(pca);
}

std::vector<RequestPair> near_duplicate_pairs(const CanonicalRequests& req,
                                              const DetectOptions& options, const Context& ctx,
                                              bool* exact_index, const SelfJoin& join) {
  const int64_t R = req.num_requests, D = req.dim;
  const RequestIndexPlan plan = request_index_plan(R, D, options, join);
  if (exact_index) *exact_index = true;
  if (R < 2) return {};
  ThreadScope threads(ctx.threads);
  if (exact_index) *exact_index = plan.exact;
  const int64_t dr = plan.reduced;
  ctx.require_memory(size_from_double(double(R) * dr * 4 * (plan.project ? 1 : 0) + double(R) * 8 * 16 +
                             double(kProjectBatch) * options.duplicate_neighbours * 24 * 4),
                     "request index");
  const float* base = req.unit_embeddings.data();
  std::vector<float> reduced;
  if (plan.project) {
    RequestProjection projection(D, dr);
    std::vector<float> sample;
    const std::vector<int64_t> at = strided_positions(R, std::min<int64_t>(R, kProjectionSample));
    sample.reserve(at.size() * D);
    for (int64_t r : at) sample.insert(sample.end(), base + r * D, base + (r + 1) * D);
    projection.train(sample.data(), int64_t(at.size()));
    reduced.resize(R * dr);
    projection.apply(base, R, reduced.data());
  }
  return join.run(plan.project ? reduced.data() : base, R, dr, plan.exact, plan.radius, plan.cap,
                  verified_cosine(base, D, plan.tau), ctx, "request index", plan.tiers);
}


void account_evidence_groups(const CanonicalRequests& req, const PromptGroups& groups, int64_t a,
                             std::vector<int64_t>& out) {
  out.clear();
  for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
    const int64_t g = groups.group_of_request[r];
    if (g >= 0 && groups.is_evidence(g)) out.push_back(g);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

void account_evidence_groups(const CanonicalRequests& req, const PromptGroups& groups, int64_t a,
                             std::vector<int64_t>& out, std::vector<int64_t>& requests) {
  std::vector<int64_t> sent;  // one entry a request
  for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
    const int64_t g = groups.group_of_request[r];
    if (g >= 0 && groups.is_evidence(g)) sent.push_back(g);
  }
  std::sort(sent.begin(), sent.end());
  out.clear();
  requests.clear();
  for (std::size_t i = 0; i < sent.size();) {
    std::size_t j = i;
    while (j < sent.size() && sent[j] == sent[i]) ++j;
    out.push_back(sent[i]);
    requests.push_back(int64_t(j - i));
    i = j;
  }
}

std::vector<int64_t> distinct_prompts(const CanonicalRequests& req, const PromptGroups& groups) {
  const int64_t A = req.num_accounts;
  RINGSCAN_ASSERT(int64_t(groups.group_of_request.size()) == req.num_requests, "prompt groups of another input");
  std::vector<int64_t> out(A, 0);
  detail::parallel_for(A, 256, [&](int64_t a) {
    std::vector<int64_t> sent;
    for (int64_t r = req.account_offsets[a]; r < req.account_offsets[a + 1]; ++r) {
      const int64_t g = groups.group_of_request[r];
      if (g < 0) ++out[a];
      else sent.push_back(g);
    }
    std::sort(sent.begin(), sent.end());
    out[a] += int64_t(std::unique(sent.begin(), sent.end()) - sent.begin());
  });
  return out;
}

int64_t common_group_accounts(int64_t num_accounts, float max_prompt_share) {
  return std::max<int64_t>(64, int64_t(double(max_prompt_share) * double(num_accounts)));
}

PromptGroups prompt_groups(const CanonicalRequests& req, const std::vector<RequestPair>& pairs,
                           const DetectOptions& options) {
  const int64_t R = req.num_requests, A = req.num_accounts;
  PromptGroups g;
  g.near_duplicate_pairs = int64_t(pairs.size());
  g.group_of_request.assign(R, -1);
  std::vector<int64_t> parent(R);
  std::iota(parent.begin(), parent.end(), 0);
  std::vector<uint8_t> paired(R, 0);
  for (const auto& p : pairs) {
    paired[p.first] = paired[p.second] = 1;
    union_sets(parent.data(), p.first, p.second);
  }
  std::vector<int64_t> group_of_root(R, -1);
  for (int64_t r = 0; r < R; ++r) {
    if (!paired[r]) continue;
    const int64_t root = find_root(parent.data(), r);
    if (group_of_root[root] < 0) group_of_root[root] = g.num_groups++;
    g.group_of_request[r] = group_of_root[root];
  }
  // Distinct accounts per group: requests are ordered by account, so a group's accounts
  // arrive ascending and a repeat is always the last one seen.
  std::vector<int64_t> last(g.num_groups, -1), count(g.num_groups, 0);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t grp = g.group_of_request[r];
    if (grp >= 0 && last[grp] != req.request_owner[r]) {
      last[grp] = req.request_owner[r];
      ++count[grp];
    }
  }
  g.account_offsets.assign(g.num_groups + 1, 0);
  for (int64_t i = 0; i < g.num_groups; ++i) g.account_offsets[i + 1] = g.account_offsets[i] + count[i];
  g.group_accounts.resize(g.account_offsets.back());
  std::fill(last.begin(), last.end(), -1);
  std::vector<int64_t> fill(g.account_offsets.begin(), g.account_offsets.end() - 1);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t grp = g.group_of_request[r];
    if (grp >= 0 && last[grp] != req.request_owner[r]) {
      last[grp] = req.request_owner[r];
      g.group_accounts[fill[grp]++] = req.request_owner[r];
    }
  }
  const int64_t common = common_group_accounts(A, options.max_prompt_share);
  g.idf.resize(g.num_groups);
  g.common.resize(g.num_groups);
  for (int64_t i = 0; i < g.num_groups; ++i) {
    g.idf[i] = prompt_group_idf(A, count[i]);
    g.common[i] = count[i] > common;
  }
  return g;
}

}  // namespace ringscan
