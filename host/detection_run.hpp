// One detection from the canonical requests on: the stages after the request index, and
// the timing and result they share. detect_rings drives it in one process; the distributed
// detection (distributed_detect.cpp) feeds it what its processes computed together.
#pragma once
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "ringscan/account_profiles.hpp"
#include "ringscan/backend.hpp"
#include "ringscan/error.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/ring_indicators.hpp"
#include "self_join.hpp"
#include "stage_variants.hpp"
#include "stopwatch.hpp"

namespace ringscan {

class DetectionRun {
 public:
  /// Checks the options and makes their backend; the result names `source`.
  DetectionRun(const DetectOptions& options, const Context& ctx, const std::string& source,
               std::vector<int64_t> account_ids);
  ~DetectionRun();
  DetectionRun(const DetectionRun&) = delete;
  DetectionRun& operator=(const DetectionRun&) = delete;

  /// Runs a stage: announced for progress, its wall time recorded under `name`, a failed
  /// allocation reported as OutOfMemory naming it.
  template <class Run>
  auto timed(const char* name, const char* label, Run&& run) {
    begin_stage(label);
    const Stopwatch watch;
    const auto seconds = [&] { return watch.seconds(); };
    try {
      if constexpr (std::is_void_v<decltype(run())>) {
        run();
        end_stage(name, seconds());
      } else {
        auto out = run();
        end_stage(name, seconds());
        return out;
      }
    } catch (const std::bad_alloc&) {
      throw OutOfMemory(std::string(label) +
                        ": out of memory (std::bad_alloc); lower --memory-budget to be refused "
                        "up front, or split the input");
    }
  }

  Backend& backend() { return *backend_; }
  /// A figure for the result's statistics.
  void add_statistic(std::string name, double value) { result_.statistics.emplace_back(std::move(name), value); }
  /// Sets the options the request index runs with from the file's background similarity.
  void resolve(const BackgroundSimilarity& background);
  const DetectOptions& resolved() const { return resolved_; }
  /// The prompt groups of the request index's pairs (a stage).
  PromptGroups prompt_groups(const CanonicalRequests& req, std::vector<RequestPair> pairs);
  /// Where the evidence graph's candidate pairs are evaluated, instead of the backend: an
  /// evaluator for the profiles and calibration (a distributed run spreads them over ranks).
  using PairEvaluation = std::function<PairEvaluator(const AccountProfiles&, const EvidenceCalibration&)>;
  void evaluate_pairs_with(PairEvaluation evaluation) { pair_evaluation_ = std::move(evaluation); }
  /// How the account index joins the profiles, instead of the backend's join (a distributed
  /// run spreads its cells over ranks).
  void join_accounts_with(SelfJoin join) { account_join_ = std::move(join); }
  /// Where the ring indicators' exemplar rows come from, instead of the requests' embeddings
  /// (a distributed run fetches them from the ranks that hold them).
  void fetch_rows_with(RequestRows rows) { request_rows_ = std::move(rows); }
  /// The known indicators' prompt hits of every request, found where the rows are, instead of
  /// from the requests' embeddings (a distributed run: each rank's requests' hits, in order).
  void indicator_prompt_hits_from(PromptHits hits) { indicator_hits_ = std::move(hits); }
  /// The account stages, ring scoring and the statistics: the finished result. `req` needs
  /// its embeddings only when indicators are collected or matched, and neither
  /// fetch_rows_with nor indicator_prompt_hits_from supplied what they need.
  DetectionResult finish(const CanonicalRequests& req, const PromptGroups& groups, const AccountProfiles& profiles,
                         bool exact);

 private:
  void begin_stage(const char* label) const;
  void end_stage(const char* name, double seconds);

  DetectOptions options_, resolved_;
  const Context& ctx_;
  std::unique_ptr<Backend> backend_;
  BackgroundSimilarity background_;
  int64_t request_pairs_ = 0;
  PairEvaluation pair_evaluation_;
  SelfJoin account_join_;
  RequestRows request_rows_;
  std::optional<PromptHits> indicator_hits_;
  DetectionResult result_;
};

}  // namespace ringscan
