// Synthetic input files with planted rings and hard look-alikes, for demos, tests, benchmarks.
#pragma once
#include <cstdint>
#include <string>

#include <vector>

#include "ringscan/context.hpp"
#include "ringscan/dataset.hpp"

namespace ringscan {

struct GenerateOptions {
  int64_t accounts = 10000;           ///< total accounts
  int64_t dim = 384;                  ///< embedding width D
  uint64_t seed = 1;                  ///< everything is a function of the seed
  double requests_per_account = 25;   ///< mean of the heavy-tailed request counts
  double ring_fraction = 0.03;        ///< share of accounts that belong to rings
  double lookalike_fraction = 0.04;   ///< share of accounts in teams and trending crowds
  int64_t viral_prompts = 5;          ///< prompts pasted by many unrelated accounts
  int64_t days = 7;                   ///< time span of the traffic
  bool float16 = false;               ///< store embeddings as IEEE half floats
  bool shuffle = true;                ///< interleave requests across accounts
};

struct GenerateSummary {
  int64_t accounts = 0, requests = 0, rings = 0, ring_accounts = 0;
  int64_t teams = 0, crowds = 0, viral_prompts = 0, viral_accounts = 0;
};

/// What an account is in generated data (stored as /accounts/role; detection never reads it).
enum class AccountRole : int64_t {
  Legit = 0,        ///< an ordinary customer
  Ring = 1,         ///< member of a planted ring (label >= 0)
  Team = 2,         ///< company team on one client: look-alike, not a ring
  Crowd = 3,        ///< asks about a trending topic: look-alike, not a ring
  ViralSharer = 4,  ///< ordinary customer who pasted a viral prompt
};

/// Writes a synthetic input file (with /accounts/label) atomically to `path`.
/// Memory stays bounded: requests are produced and written in chunks.
GenerateSummary generate_dataset(const std::string& path, const GenerateOptions& options,
                                 const Context& ctx);

/// The same data as generate_dataset, in memory (for tests and benchmarks); `roles` [A]
/// receives each account's AccountRole when given.
Dataset generate_in_memory(const GenerateOptions& options, const Context& ctx,
                           std::vector<int64_t>* roles = nullptr);

}  // namespace ringscan
