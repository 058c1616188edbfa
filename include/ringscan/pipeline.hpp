// The detection pipeline of DESIGN.md: parameters, and one call that runs every stage.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ringscan/context.hpp"
#include "ringscan/dataset.hpp"
#include "ringscan/io.hpp"
#include "ringscan/result.hpp"

namespace ringscan {

/// Accounts and infrastructure tokens known to be legitimate (a verified enterprise's API
/// keys, an evaluation lab's address range).
struct Allowlist {
  std::string source;                                   ///< where it was read from (for the parameters)
  std::vector<int64_t> accounts;                        ///< account ids
  std::vector<std::pair<std::string, int64_t>> tokens;  ///< (kind, value): a name of /requests/infra or "payment"

  bool empty() const { return accounts.empty() && tokens.empty(); }
};

/// Reads an allowlist: one entry a line, an account id or KIND:VALUE for a token (`ip24:1234`,
/// `payment:99`); blank lines and lines starting with # are skipped. Or an HDF5 file: the
/// integer datasets of its group /allow, `accounts` for account ids and any other name for
/// the tokens of that kind. InvalidInput naming the file (and the line or the dataset) for
/// anything else; BudgetExceeded for a dataset larger than `memory_budget` (0: no bound).
Allowlist read_allowlist(const std::string& path, int64_t memory_budget = 0);

/// Reads the account ids of `detect --seeds`: one a line; blank lines and lines starting
/// with # are skipped. Or an HDF5 file: its integer dataset /seeds, or, in the output of
/// an earlier `detect`, the accounts it reported in rings. InvalidInput naming the file (and
/// the line or the dataset) for anything else; BudgetExceeded for a dataset larger than
/// `memory_budget` (0: no bound).
std::vector<int64_t> read_seed_accounts(const std::string& path, int64_t memory_budget = 0);

/// read_allowlist and read_seed_accounts in a child process (see load_dataset_isolated): an
/// HDF5 file that crashes the library takes the child down, not the caller.
Allowlist read_allowlist_isolated(const std::string& path, const Context& ctx, const IsolationLimits& limits);
std::vector<int64_t> read_seed_accounts_isolated(const std::string& path, const Context& ctx,
                                                 const IsolationLimits& limits);

/// Parameters of detection. The defaults work across sizes without retuning.
struct DetectOptions {
  Device device = Device::Auto;
  // near-duplicate prompts
  /// Similarity at or above which two prompts are near-duplicates, measured from the file's
  /// median unrelated pair (cosine m > 0): the cosine m + duplicate_similarity (1 - m).
  float duplicate_similarity = 0.90f;
  float template_similarity = 0.0f;     ///< lowest similarity of template groups, measured so; 0: from the file's background
  int64_t duplicate_neighbours = 24;    ///< k of the request kNN
  int64_t exact_request_limit = 5000;   ///< exact (flat) request index up to this many requests
  int64_t reduced_dim = 96;             ///< projection width of the IVF request index
  float max_prompt_share = 0.02f;       ///< groups sent by more than this share of accounts are common
  // timing
  int64_t time_window_seconds = 600;    ///< activity buckets of the account index's timing sketch are 2x this
  // account index
  int64_t account_neighbours = 16;      ///< k of each account kNN (content; timing+behaviour)
  int64_t exact_account_limit = 5000;   ///< exact account indices up to this many accounts
  // evidence fusion and clustering
  double false_edges_per_million = 10.0;  ///< expected edges between independent accounts per million pairs
  int64_t min_core_degree = 2;          ///< edges an account needs to be a cluster core
  bool merge_clusters = true;           ///< merge clusters whose members are synchronised or alike
  int64_t min_ring_size = 3;            ///< smallest ring reported
  float ring_threshold = 0.2f;          ///< share (lower bound) of a cluster's requests in prompts its members share
  int64_t report_examples = 3;          ///< shared-prompt examples per ring in the report
  /// Allowed tokens give no evidence; allowed accounts, and every account that used an allowed
  /// token, are never in a cluster or a ring.
  Allowlist allow;
  /// Accounts known to be in rings (--seeds). A pair with a seed is held to 1,000 expected
  /// false edges per million instead of false_edges_per_million: its evidence gains the
  /// difference of the two thresholds. Rings that contain seeds are marked.
  std::vector<int64_t> seeds;
  std::string seeds_source;  ///< where they were read from (for the parameters)
  /// Fill DetectionResult::indicators (--indicators-out).
  bool collect_indicators = false;
  /// Indicators of another run to match every account against (--indicators-in): an account
  /// matches a ring's indicators with two requests within duplicate_similarity (measured in this
  /// input, from its median unrelated pair) of its
  /// prompts, or one and one of its tokens (DetectionResult::indicator_matches).
  Indicators known_indicators;
  std::string known_indicators_source;  ///< where they were read from (for the parameters)

  /// name = value pairs, for the output's attributes.
  std::vector<std::pair<std::string, std::string>> describe() const;
};

/// Peak memory of a whole `detect` job (load and every stage, CPU backend), in bytes, from
/// the declared shapes alone; saturates at INT64_MAX. Calibrated against the peak RSS of
/// `ringscan detect` (docs/reliability.md). When accounts are derived (A unknown up
/// front) the account terms are left out: the loader checks them once A is known.
int64_t estimate_detection_memory(const InputShape& shape, const DetectOptions& options);

/// Refuses up front, with the estimate and the budget in the message (BudgetExceeded), a job
/// whose estimate exceeds ctx.memory_budget; does nothing without a budget. Over `ranks` > 1
/// ranks of a distributed run, the estimate is one rank's and the budget each rank's.
void require_detection_memory(const InputShape& shape, const DetectOptions& options,
                              const Context& ctx, int ranks = 1);

/// Checks every option's range (InvalidInput naming the option); detect_rings does too, but
/// a command line checks before it reads anything.
void validate_detect_options(const DetectOptions& options);

/// Runs every stage on `data` and returns labels in the input's account order.
/// Deterministic for any thread count and any order of requests or accounts in the input.
DetectionResult detect_rings(const Dataset& data, const DetectOptions& options,
                             const Context& ctx);
/// The same, taking the embeddings of `data` over (the largest array is not copied).
DetectionResult detect_rings(Dataset&& data, const DetectOptions& options, const Context& ctx);

}  // namespace ringscan
