#include "ringscan/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <new>
#include <sstream>
#include <tuple>

#include "detection_run.hpp"
#include "pair_evidence.hpp"
#include "self_join.hpp"
#include "ringscan/backend.hpp"
#include "ringscan/error.hpp"
#include "ringscan/ring_indicators.hpp"
#include "ringscan/ring_scoring.hpp"
#include "ringscan/clustering.hpp"
#include "ringscan/distributed_detect.hpp"
#include "ringscan/shared_infrastructure.hpp"
#include "ringscan/sizes.hpp"

namespace ringscan {
namespace {

template <class T>
std::string text(T v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

/// What the investigator's knowledge did: the seeds found and the rings holding them, what the
/// allowlist suppressed.
void add_knowledge_statistics(const DetectOptions& options, const EvidenceCalibration& calibration,
                              const SharedInfrastructure& infra, const std::vector<uint8_t>& allowed,
                              int64_t allowed_edges, int64_t seeded_rings, DetectionResult& result) {
  auto count = [](const std::vector<uint8_t>& flags) { return double(std::count(flags.begin(), flags.end(), 1)); };
  if (!options.seeds.empty()) {
    result.statistics.emplace_back("seed_accounts", count(calibration.seed));
    result.statistics.emplace_back("seed_prior_nats", double(calibration.seed_prior));
    result.statistics.emplace_back("rings_with_seeds", double(seeded_rings));
  }
  if (!options.known_indicators.empty()) {
    int64_t matched = 0, in_rings = 0;
    for (std::size_t i = 0; i < result.indicator_matches.size(); ++i)
      if (result.indicator_matches[i].ring >= 0) {
        ++matched;
        in_rings += result.ring[i] >= 0;
      }
    result.statistics.emplace_back("indicator_matched_accounts", double(matched));
    result.statistics.emplace_back("indicator_matched_in_rings", double(in_rings));
  }
  if (!options.allow.empty()) {
    result.statistics.emplace_back("allowed_accounts", count(allowed));
    result.statistics.emplace_back("allowed_edges_removed", double(allowed_edges));
    result.statistics.emplace_back("allowed_shared_tokens", count(infra.allowed));
  }
}

}  // namespace

void validate_detect_options(const DetectOptions& o) {
  RINGSCAN_EXPECTS(o.duplicate_similarity > 0 && o.duplicate_similarity <= 1,
                   "--duplicate-similarity must be in (0, 1]");
  RINGSCAN_EXPECTS(o.template_similarity >= 0 && o.template_similarity <= 1,
                   "--template-similarity must be in [0, 1] (0: from the file)");
  RINGSCAN_EXPECTS(o.duplicate_neighbours >= 1 && o.duplicate_neighbours <= 2048,
                   "--duplicate-neighbours must be in [1, 2048]");
  RINGSCAN_EXPECTS(o.exact_request_limit >= 0, "--exact-request-limit must be >= 0");
  RINGSCAN_EXPECTS(o.reduced_dim >= 8, "--reduced-dim must be >= 8");
  RINGSCAN_EXPECTS(o.max_prompt_share > 0 && o.max_prompt_share <= 1,
                   "--max-prompt-share must be in (0, 1]");
  RINGSCAN_EXPECTS(o.time_window_seconds >= 1 && o.time_window_seconds <= 366LL * 86400,
                   "--time-window must be between 1 second and a year");
  RINGSCAN_EXPECTS(o.exact_account_limit >= 0, "--exact-account-limit must be >= 0");
  RINGSCAN_EXPECTS(o.account_neighbours >= 0 && o.account_neighbours <= 2048,
                   "--account-neighbours must be in [0, 2048]");
  RINGSCAN_EXPECTS(o.false_edges_per_million > 0 && o.false_edges_per_million <= 1e6,
                   "--false-edges must be in (0, 1000000] per million pairs");
  RINGSCAN_EXPECTS(o.min_core_degree >= 1, "--min-core-degree must be >= 1");
  RINGSCAN_EXPECTS(o.min_ring_size >= 2, "--min-ring-size must be >= 2");
  RINGSCAN_EXPECTS(o.ring_threshold >= 0 && o.ring_threshold <= 1, "--ring-threshold must be in [0, 1]");
  RINGSCAN_EXPECTS(o.report_examples >= 0, "--report-examples must be >= 0");
}

std::vector<std::pair<std::string, std::string>> DetectOptions::describe() const {
  return {{"device", device_name(device)},
          {"duplicate_similarity", text(duplicate_similarity)},
          {"template_similarity", template_similarity > 0 ? text(template_similarity) : "auto"},
          {"duplicate_neighbours", text(duplicate_neighbours)},
          {"exact_request_limit", text(exact_request_limit)},
          {"reduced_dim", text(reduced_dim)},
          {"max_prompt_share", text(max_prompt_share)},
          {"time_window_seconds", text(time_window_seconds)},
          {"account_neighbours", text(account_neighbours)},
          {"exact_account_limit", text(exact_account_limit)},
          {"false_edges_per_million", text(false_edges_per_million)},
          {"min_core_degree", text(min_core_degree)},
          {"merge_clusters", merge_clusters ? "true" : "false"},
          {"min_ring_size", text(min_ring_size)},
          {"ring_threshold", text(ring_threshold)},
          {"report_examples", text(report_examples)},
          {"seeds", seeds.empty() ? "none"
                                  : (seeds_source.empty() ? std::string("given") : seeds_source) + " (" +
                                        text(int64_t(seeds.size())) + " accounts)"},
          {"indicators_in", known_indicators.empty() ? "none"
                                                     : (known_indicators_source.empty() ? std::string("given")
                                                                                        : known_indicators_source) +
                                                           " (" + text(int64_t(known_indicators.rings.size())) + " rings)"},
          {"allow", allow.empty() ? "none"
                                  : (allow.source.empty() ? std::string("given") : allow.source) + " (" +
                                        text(int64_t(allow.accounts.size())) + " accounts, " +
                                        text(int64_t(allow.tokens.size())) + " tokens)"}};
}

// The estimate follows the stages' peaks: the process itself, the arrays held through the
// whole pipeline (the embeddings, normalised in place, and per-request bookkeeping), plus
// the larger of the request index's and the account stages' working sets. The constants
// were fitted to the peak RSS of `ringscan detect --threads 2` on generated files (docs/reliability.md).
namespace {
constexpr int64_t kProcessBytes = int64_t{32} << 20;  ///< code, libraries, stacks, BLAS buffers
constexpr int64_t kRequestBookkeeping = 96;  ///< per request: ids, times, order, groups, pairs
/// Per request, the request index's pairs below the near-duplicate cosine (template groups:
/// up to 8 neighbours a prompt in each leaf cell it visits, found from both ends and sorted).
constexpr int64_t kTemplatePairBytes = 8 * 16 * 2 * kLeafProbes;
constexpr int64_t kPcaSample = 65536;        ///< rows sampled to train the request projection
constexpr int64_t kAccountIndexCopies = 3;   ///< content profile, index vectors, projection
}  // namespace

int64_t estimate_detection_memory(const InputShape& shape, const DetectOptions& options) {
  const int64_t R = std::max<int64_t>(shape.num_requests, 0), D = std::max<int64_t>(shape.dim, 0);
  const int64_t A = shape.accounts_derived ? 0 : std::max<int64_t>(shape.num_accounts, 0);
  const int64_t B = std::max<int64_t>(shape.feature_dim, 0);
  const int64_t row = saturating_multiply(D, 4);
  int64_t held = saturating_multiply(R, row);
  held = saturating_add(held, saturating_multiply(R, kRequestBookkeeping));
  if (options.template_similarity == 0 || options.template_similarity < options.duplicate_similarity)
    held = saturating_add(held, saturating_multiply(R, kTemplatePairBytes));
  int64_t request_index = 0;
  if (R > options.exact_request_limit && D > 8) {
    const int64_t dr = std::min<int64_t>(std::max<int64_t>(options.reduced_dim, 8), D);
    request_index = saturating_add(saturating_multiply(std::min(R, kPcaSample), row),
                                   saturating_multiply(R, saturating_multiply(dr, 4)));
  }
  const int64_t k = std::max<int64_t>(options.account_neighbours, 0);
  const int64_t per_account =
      saturating_add(saturating_multiply(row, kAccountIndexCopies),
                     saturating_add(saturating_multiply(B, 8), saturating_multiply(k, 48)));
  const int64_t accounts = saturating_multiply(A, per_account);
  return saturating_add(saturating_add(kProcessBytes, held), std::max(request_index, accounts));
}

void require_detection_memory(const InputShape& shape, const DetectOptions& options,
                              const Context& ctx, int ranks) {
  if (ctx.memory_budget <= 0) return;
  const bool distributed = ranks > 1;
  const int64_t bytes = distributed ? estimate_distributed_memory(shape, options, ranks)
                                    : estimate_detection_memory(shape, options);
  if (bytes <= ctx.memory_budget) return;
  throw BudgetExceeded(
      shape.path + ": detect on " + std::to_string(shape.num_requests) + " requests x " +
      std::to_string(shape.dim) + " dimensions, " +
      (shape.accounts_derived ? std::string("accounts derived") :
                                std::to_string(shape.num_accounts) + " accounts") +
      (distributed ? " over " + std::to_string(ranks) + " ranks" : std::string()) + " needs an estimated " +
      format_size(bytes) + (distributed ? " on each rank" : "") + " at its peak, more than the memory budget of " +
      format_size(ctx.memory_budget) + (distributed ? " (raise --memory-budget or add ranks)"
                                                    : " (raise --memory-budget or split the input)"));
}

DetectionRun::DetectionRun(const DetectOptions& options, const Context& ctx, const std::string& source,
                           std::vector<int64_t> account_ids)
    : options_(options), ctx_(ctx), backend_(make_backend(options.device)) {
  validate_detect_options(options);
  result_.backend = backend_->name();
  result_.input_path = source;
  result_.parameters = options.describe();
  result_.parameters.emplace_back("threads", text(ctx.threads));
  result_.parameters.emplace_back("memory_budget", text(ctx.memory_budget));
  result_.account_ids = std::move(account_ids);
}

DetectionRun::~DetectionRun() = default;

void DetectionRun::begin_stage(const char* label) const { ctx_.report(label, 0, 0); }

void DetectionRun::end_stage(const char* name, double seconds) { result_.stage_seconds.emplace_back(name, seconds); }

void DetectionRun::resolve(const BackgroundSimilarity& background) {
  background_ = background;
  resolved_ = options_;
  // Similarities are on the background's scale: the file's cosines from its median unrelated
  // pair up. The template floor, unless given, from what unrelated prompts look like here.
  resolved_.duplicate_similarity = on_background_scale(background, options_.duplicate_similarity);
  resolved_.template_similarity = options_.template_similarity > 0
                                      ? on_background_scale(background, options_.template_similarity)
                                      : estimated_template_similarity(background, resolved_.duplicate_similarity);
}

PromptGroups DetectionRun::prompt_groups(const CanonicalRequests& req, std::vector<RequestPair> pairs) {
  request_pairs_ = int64_t(pairs.size());
  return timed("prompt_groups", "prompt groups", [&] {
    return backend_->prompt_groups(req, prompt_links(req, std::move(pairs), resolved_, 1.0f - background_offset(background_)),
                                   resolved_, ctx_);
  });
}

DetectionResult DetectionRun::finish(const CanonicalRequests& req, const PromptGroups& groups,
                                     const AccountProfiles& profiles, bool exact) {
  const DetectOptions& options = options_;
  const Context& ctx = ctx_;
  const BackgroundSimilarity& background = background_;
  const DetectOptions& resolved = resolved_;
  const int64_t request_pairs = request_pairs_;
  Backend* backend = backend_.get();
  DetectionResult& result = result_;
  const auto stage = [&](const char* name, const char* label, auto&& run) { return timed(name, label, run); };
  // The shared tokens and the candidate pairs they propose, timed as one stage.
  std::vector<std::pair<int64_t, int64_t>> token_pairs;
  const SharedInfrastructure infra = stage("infrastructure", "shared infrastructure", [&] {
    const bool tokens = !req.infra.empty() || !req.payment.empty();
    SharedInfrastructure s =
        shared_infrastructure(req, tokens ? backend->token_uses(req, ctx) : std::vector<TokenUse>{}, options, ctx);
    token_pairs = infrastructure_pairs(s, ctx);
    return s;
  });
  // Candidates: the account index's pairs and the pairs that share a rare token.
  const auto account_pairs = stage("account_index", "account index", [&] {
    auto pairs = account_join_.run ? account_candidate_pairs(profiles, options, ctx, account_join_)
                                   : backend->account_candidate_pairs(profiles, options, ctx);
    return token_pairs.empty() ? pairs : pair_union(pairs, token_pairs);
  });
  token_pairs = {};
  const EvidenceCalibration calibration = stage("calibration", "calibration", [&] {
    EvidenceCalibration c = calibrate_evidence(req, groups, profiles, infra, options, ctx);
    c.weak_edge_threshold = weak_edge_threshold_nats(double(shared_prompt_pairs(groups)) + double(account_pairs.size()),
                                                     req.num_accounts, c.edge_threshold);
    return c;
  });
  result.notes = calibration.notes;
  if (const std::string note = allowlist_note(options.allow, infra); !note.empty()) result.notes.push_back(note);
  if (crowded_background(background))
    result.notes.push_back("unrelated prompts sit close together in this embedding space (1% of random pairs at cosine " +
                           text(background.upper) + " or more): near-duplicates at cosine " +
                           text(resolved.duplicate_similarity) + " (--duplicate-similarity " +
                           text(options.duplicate_similarity) + ") may join unrelated prompts; consider a higher value");
  // The allowlist's accounts, and every account that used one of its tokens, stay out of
  // clusters: their edges go before clustering and they leave any cluster a merge gave them.
  const std::vector<uint8_t> allowed = options.allow.empty() ? std::vector<uint8_t>{} : allowed_accounts(req, options.allow);
  int64_t allowed_edges = 0;
  // The graph with its weak edges, and the strong edges alone.
  EvidenceGraph graph;
  const EvidenceGraph weak_graph = stage("evidence_graph", "evidence graph", [&] {
    EvidenceGraph g = pair_evaluation_ ? evidence_graph(groups, profiles.num_accounts, account_pairs,
                                                        edge_rule(calibration), ctx,
                                                        pair_evaluation_(profiles, calibration))
                                       : backend->evidence_graph(groups, profiles, calibration, account_pairs, options, ctx);
    // The allowlist's count is of edges, not weak edges.
    const EdgeRule rule = edge_rule(calibration);
    const auto edges = [&](const EvidenceGraph& x) {
      return std::count_if(x.evidence.begin(), x.evidence.end(), [&](const PairEvidence& e) { return rule.is_edge(e); }) / 2;
    };
    if (!allowed.empty()) {
      const int64_t before = edges(g);
      int64_t removed = 0;
      g = without_accounts(g, allowed, &removed);
      allowed_edges = before - edges(g);
    }
    graph = strong_edges(g, rule);
    return g;
  });
  int64_t weak_cores = 0, weak_cores_cut = 0;
  MergeSummary merged;
  const Clustering clusters = stage("clustering", "clustering", [&] {
    Clustering c = merge_clusters(
        with_weak_cores(backend->cluster_accounts(graph, options, ctx), weak_graph, req, groups, infra, calibration,
                        options, &weak_cores, &weak_cores_cut), req,
        groups, calibration, account_pairs, options, ctx, &merged);
    return allowed.empty() ? c : without_accounts(std::move(c), allowed);
  });
  result.rings = stage("ring_scoring", "ring scoring", [&] {
    return rings_from_tallies(req, groups, clusters,
                              backend->cluster_tallies(req, groups, graph, clusters, ctx), options, ctx);
  });

  describe_ring_infrastructure(infra, req, options.report_examples, result.rings);
  const int64_t seeded_rings = mark_seeds(options.seeds, result.rings);
  if (options.collect_indicators) {
    result.indicators = ring_indicators(req, groups, infra, clusters, result.rings, ctx, request_rows_);
    result.indicators.source = result.input_path;
  }
  if (!options.known_indicators.empty()) {
    const std::vector<IndicatorMatch> matches = stage("indicators", "indicator matching", [&] {
      return match_indicators(req, options.known_indicators, resolved.duplicate_similarity,
                              options.known_indicators_source, ctx, indicator_hits_ ? &*indicator_hits_ : nullptr);
    });
    result.indicator_matches.resize(req.num_accounts);
    for (int64_t a = 0; a < req.num_accounts; ++a) result.indicator_matches[req.account_row[a]] = matches[a];
  }

  const int64_t A = req.num_accounts;
  std::vector<int64_t> ring_of_cluster(clusters.num_clusters, -1);
  std::vector<float> score_of_cluster(clusters.num_clusters, 0.0f);
  for (const Ring& r : result.rings) {
    ring_of_cluster[r.cluster] = r.id;
    score_of_cluster[r.cluster] = r.score;
  }
  result.cluster.assign(A, -1);
  result.ring.assign(A, -1);
  result.ring_score.assign(A, 0.0f);
  for (int64_t a = 0; a < A; ++a) {
    const int64_t row = req.account_row[a], c = clusters.label[a];
    result.cluster[row] = c;
    if (c >= 0) {
      result.ring[row] = ring_of_cluster[c];
      result.ring_score[row] = score_of_cluster[c];
    }
  }
  // The evidence inside each ring, for the analyst (export, reports).
  {
    const EdgeRule rule = edge_rule(calibration);
    for (int64_t a = 0; a < A; ++a)
      for (int64_t at = weak_graph.offsets[a]; at < weak_graph.offsets[a + 1]; ++at) {
        const int64_t b = weak_graph.neighbours[at];
        const int64_t ra = req.account_row[a], rb = req.account_row[b];
        if (b <= a || result.ring[ra] < 0 || result.ring[ra] != result.ring[rb]) continue;
        const PairEvidence& e = weak_graph.evidence[at];
        result.ring_edges.push_back({result.ring[ra], std::min(ra, rb), std::max(ra, rb), e.shared_prompts, e.synchrony,
                                     e.behaviour, e.infrastructure, e.weight, !rule.is_edge(e)});
      }
    std::sort(result.ring_edges.begin(), result.ring_edges.end(), [](const RingEdge& x, const RingEdge& y) {
      return std::tie(x.ring, x.first, x.second) < std::tie(y.ring, y.first, y.second);
    });
  }
  int64_t shared_groups = 0;
  for (int64_t g = 0; g < groups.num_groups; ++g) shared_groups += groups.is_evidence(g);
  const auto earlier = std::move(result.statistics);  // added by the stages before these
  result.statistics = {{"accounts", double(A)},
                       {"requests", double(req.num_requests)},
                       {"exact_request_index", exact ? 1.0 : 0.0},
                       {"request_index_pairs", double(request_pairs)},
                       {"near_duplicate_pairs", double(groups.near_duplicate_pairs)},
                       {"prompt_groups", double(groups.num_groups)},
                       {"shared_prompt_groups", double(shared_groups)},
                       {"account_index_pairs", double(account_pairs.size())},
                       {"candidate_pairs", double(graph.candidate_pairs)},
                       {"edges", double(graph.num_edges())},
                       {"weak_edges", double(weak_graph.num_edges() - graph.num_edges())},
                       {"weak_core_clusters", double(weak_cores)},
                       {"weak_cores_cut", double(weak_cores_cut)},
                       {"light_members_joined", double(merged.light_members)},
                       {"clusters", double(clusters.num_clusters)},
                       {"rings", double(result.rings.size())}};
  result.statistics.insert(result.statistics.end(), earlier.begin(), earlier.end());
  for (auto& figure : backend->statistics()) result.statistics.push_back(std::move(figure));
  // What the evidence was measured against in this input (docs/method.md).
  result.statistics.emplace_back("background_median_cosine", double(background.median));
  result.statistics.emplace_back("background_upper_cosine", double(background.upper));
  result.statistics.emplace_back("duplicate_cosine", double(resolved.duplicate_similarity));
  result.statistics.emplace_back("template_similarity", double(join_similarity(resolved)));
  result.statistics.emplace_back("edge_threshold_nats", double(calibration.edge_threshold));
  result.statistics.emplace_back("weak_edge_threshold_nats", double(calibration.weak_edge_threshold));
  result.statistics.emplace_back("merge_threshold_nats", double(merged.first_threshold));
  result.statistics.emplace_back("index_penalty_nats", double(calibration.index_penalty));
  result.statistics.emplace_back("evidence_signals", double(calibration.signals));
  result.statistics.emplace_back("anchor_pairs", double(calibration.anchor_pairs));
  if (infra.present()) result.statistics.emplace_back("shared_infrastructure_tokens", double(infra.evidence_tokens));
  add_knowledge_statistics(options, calibration, infra, allowed, allowed_edges, seeded_rings, result);
  for (int64_t f = 0; f < calibration.feature_dim; ++f)
    result.statistics.emplace_back("feature_weight." + calibration.feature_names[f],
                                   double(calibration.feature_weight[f]));
  return std::move(result);
}

namespace {

/// The pipeline after loading; `make_order(backend, host_seconds)` produces the canonical
/// requests (by copy or by taking the dataset's embeddings over).
template <class MakeOrder>
DetectionResult run_pipeline(const Dataset& data, const DetectOptions& options, const Context& ctx,
                             MakeOrder&& make_order) {
  DetectionRun run(options, ctx, data.source, data.account_ids);
  double order_host_seconds = 0;
  const CanonicalRequests req =
      run.timed("order", "order", [&] { return make_order(run.backend(), &order_host_seconds); });
  // What of the order stage stays on the host with either backend: it bounds a device's gain.
  run.add_statistic("order_host_seconds", order_host_seconds);
  run.resolve(run.timed("background", "background similarity", [&] { return background_similarity(req); }));
  bool exact = true;
  auto pairs = run.timed("request_index", "request index", [&] {
    return run.backend().near_duplicate_pairs(req, run.resolved(), ctx, &exact);
  });
  const PromptGroups groups = run.prompt_groups(req, std::move(pairs));
  const AccountProfiles profiles = run.timed("account_profiles", "account profiles", [&] {
    return run.backend().account_profiles(req, options, ctx);
  });
  return run.finish(req, groups, profiles, exact);
}

}  // namespace

DetectionResult detect_rings(const Dataset& data, const DetectOptions& options,
                             const Context& ctx) {
  return run_pipeline(data, options, ctx,
                      [&](Backend& backend, double* host) { return backend.canonical_requests(data, ctx, host); });
}

DetectionResult detect_rings(Dataset&& data, const DetectOptions& options, const Context& ctx) {
  return run_pipeline(data, options, ctx, [&](Backend& backend, double* host) {
    return backend.canonical_requests(std::move(data), ctx, host);
  });
}

}  // namespace ringscan
