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
  // Regimes of the robustness matrix (docs/benchmarks/robustness.md): each takes away or
  // blurs one kind of evidence the default traffic carries.
  bool ring_population_behaviour = false;  ///< ring members' clients vary as widely as anybody's
  int64_t noise_features = 0;         ///< extra behaviour columns of pure noise
  bool features = true;               ///< write /accounts/features
  bool times = true;                  ///< write /requests/time
  bool ring_sessions = false;         ///< rings work in 1-3 hour sessions, not 5-25 minute bursts
  bool light_rings = false;           ///< ring members send 2-5 requests each
  double ring_cover = -1;             ///< share of cover traffic of every ring (< 0: 0-35% per ring)
  /// Write /requests/infra (ip24, asn, client_fingerprint), /accounts/payment and
  /// /accounts/created: rings send from proxy pools (half of them rented from a proxy
  /// service that ordinary customers use too), teams from their office; the prompts, times
  /// and behaviour are the same as without.
  bool infrastructure = false;
  /// Share of all accounts run by one proxy ("hydra") network (0: none; needs
  /// `infrastructure`): its accounts send 1-3 requests a day, 50-90% of them ordinary
  /// traffic it resells, the rest from the operator's extraction templates, all through the
  /// proxy service that ordinary customers use too; prepaid cards and sign-up batches.
  double proxy_network = 0;
  /// Seed of the operators and the world they work in (topics, ring prompt pools, proxies,
  /// cards; 0: the seed): two files with one operator seed and different seeds hold the same
  /// operators' rings run through new accounts, amid other customers.
  uint64_t operator_seed = 0;
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
  TemplateApp = 5,  ///< ordinary customer of an app built on one public prompt template
  ProxyCustomer = 6,  ///< ordinary customer who sends through the proxy service a network uses
};

/// How a planted ring works (stored as /accounts/ring_style, -1 outside rings; detection
/// never reads it): `evaluate` reports recall per style.
enum class RingStyle : int64_t {
  Templates = 0,    ///< a few prompt templates with slot fills
  Pool = 1,         ///< a broad shared pool of prompts
  Split = 2,        ///< work split across sub-groups on different capabilities
  Paraphrased = 3,  ///< a few tasks, each asked in several wordings
  ProxyNetwork = 4, ///< many light accounts behind a proxy service, mostly resold ordinary traffic
};
/// "templates", "pool", "split", "paraphrased", "proxy-network", or "other".
const char* ring_style_name(int64_t style);

/// Checks every option's range (InvalidInput naming the option).
void validate_generate_options(const GenerateOptions& options);

/// Writes a synthetic input file (with /accounts/label) atomically to `path`.
/// Memory stays bounded: requests are produced and written in chunks.
GenerateSummary generate_dataset(const std::string& path, const GenerateOptions& options,
                                 const Context& ctx);

/// The same data as generate_dataset, in memory (for tests and benchmarks); `roles` [A]
/// receives each account's AccountRole, `styles` [A] its ring's RingStyle (-1 outside
/// rings), when given.
Dataset generate_in_memory(const GenerateOptions& options, const Context& ctx,
                           std::vector<int64_t>* roles = nullptr, std::vector<int64_t>* styles = nullptr);

}  // namespace ringscan
