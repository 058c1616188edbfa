// Synthetic traffic with planted rings and look-alikes. The world (topics, ring prompt pools,
// schedules, look-alike groups) is small and built once; each account's requests then come
// from its own random stream, so accounts are generated in parallel blocks with bounded
// memory and the file is identical for any thread count.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <vector>

#include "input_writer.hpp"
#include "random.hpp"
#include "ringscan/error.hpp"
#include "ringscan/generate.hpp"
#include "parallel.hpp"
#include "ringscan/sizes.hpp"

namespace ringscan {
namespace {

constexpr int64_t kTopics = 48;
constexpr int64_t kFeatures = 8;
constexpr int64_t kEpoch = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kBlockAccounts = 4096;
const std::array<const char*, kFeatures> kFeatureNames = {
    "log_prompt_tokens", "log_completion_tokens", "log_requests_per_hour", "temperature",
    "top_p",             "log_max_tokens",        "stream_fraction",       "tool_use_fraction"};

enum class Role { Legit, Ring, Team, Crowd };

using Behaviour = std::array<float, kFeatures>;
using Vec = std::vector<float>;

// Streams of the world, by kind.
enum : uint64_t { kWorld = 1, kRingKind, kTeamKind, kCrowdKind, kViralKind, kAccountKind, kShuffleKind, kNoiseKind,
                  kInfraKind };

void normalise(float* v, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += double(v[i]) * v[i];
  const float inv = s > 0 ? float(1.0 / std::sqrt(s)) : 0.f;
  for (int64_t i = 0; i < d; ++i) v[i] *= inv;
}

Vec random_unit(Rng& r, int64_t d) {
  Vec v(d);
  for (auto& x : v) x = float(r.normal());
  normalise(v.data(), d);
  return v;
}

/// A fresh prompt about topic `c`: shares the topic direction, otherwise its own.
Vec topic_prompt(Rng& r, const float* c, int64_t d) {
  Vec v = random_unit(r, d);
  for (int64_t i = 0; i < d; ++i) v[i] = 0.6f * c[i] + 0.8f * v[i];
  normalise(v.data(), d);
  return v;
}

/// A rewording of `base`: cosine to base about 1/sqrt(1 + eps^2).
void perturbed(Rng& r, const float* base, double eps, int64_t d, float* out) {
  const double scale = eps / std::sqrt(double(d));
  for (int64_t i = 0; i < d; ++i) out[i] = base[i] + float(scale * r.normal());
  normalise(out, d);
}

/// Behaviour of a client drawn from the population; half use an SDK's defaults.
Behaviour population_behaviour(Rng& r) {
  Behaviour b{};
  b[0] = float(5.5 + 0.9 * r.normal());
  b[1] = float(6.0 + 0.8 * r.normal());
  b[2] = float(1.0 + 0.7 * r.normal());
  const bool defaults = r.chance(0.5);
  b[3] = defaults ? 1.0f : float(std::clamp(0.7 + 0.3 * r.normal(), 0.0, 2.0));
  b[4] = defaults ? 1.0f : float(std::clamp(0.9 + 0.1 * r.normal(), 0.1, 1.0));
  b[5] = defaults ? float(std::log(4096.0)) : float(6.5 + 1.0 * r.normal());
  b[6] = defaults ? float(r.chance(0.5)) : float(r.uniform());
  b[7] = float(std::clamp(0.1 + 0.15 * r.normal(), 0.0, 1.0));
  return b;
}
constexpr std::array<float, kFeatures> kBehaviourSpread = {0.9f, 0.8f, 0.7f, 0.3f,
                                                           0.1f, 1.0f, 0.3f, 0.15f};

struct RingSpec {
  RingStyle style;
  std::vector<std::vector<Vec>> pools;  // per sub-group: its prompt pool
  double noise;                         // rewording strength of pool prompts
  std::vector<std::pair<int64_t, int64_t>> bursts;  // (start, duration) seconds from epoch
  Behaviour behaviour;
  double jitter, cover, participation, rotation;
  int64_t members = 0;
};
struct TeamSpec {
  std::vector<int64_t> topics;
  int64_t tz_hours;
  Behaviour behaviour;
  std::vector<Vec> shared_docs;
  double doc_probability;
};
struct CrowdSpec {
  std::vector<Vec> questions;
  int64_t day;
};
struct AccountPlan {
  Role role = Role::Legit;
  int64_t group = -1;     // ring, team or crowd index
  int64_t subgroup = 0;   // capability of a split ring
};

struct World {
  GenerateOptions options;
  int64_t dim = 0, days = 0;
  double mean_requests = 0;
  uint64_t seed = 0, operator_seed = 0;
  std::vector<Vec> topics;
  std::vector<Vec> viral;
  std::vector<double> viral_share;
  std::vector<RingSpec> rings;
  std::vector<TeamSpec> teams;
  std::vector<CrowdSpec> crowds;
  std::vector<AccountPlan> plan;  // [A]
};

std::vector<int64_t> split_sizes(Rng& r, int64_t total, int64_t lo, int64_t hi) {
  std::vector<int64_t> sizes;
  while (total >= lo) {
    const double u = r.uniform();
    int64_t s = int64_t(std::round(std::exp(std::log(double(lo)) +
                                            u * (std::log(double(hi)) - std::log(double(lo))))));
    s = std::clamp<int64_t>(s, lo, hi);
    if (total - s < lo) s = total;
    sizes.push_back(s);
    total -= s;
  }
  return sizes;
}

int64_t random_topic(Rng& r) { return int64_t(kTopics * r.uniform() * r.uniform()); }

World build_world(const GenerateOptions& o) {
  World w;
  w.options = o;
  w.dim = o.dim;
  w.days = o.days;
  w.mean_requests = o.requests_per_account;
  w.seed = o.seed;
  // The operators (their rings, prompt pools, proxies, cards) and the world they work in
  // (topics, the proxy service) come from the operator seed; everybody else from the seed.
  w.operator_seed = o.operator_seed != 0 ? o.operator_seed : o.seed;
  Rng r(stream_key(w.operator_seed, kWorld, 0));
  for (int64_t t = 0; t < kTopics; ++t) w.topics.push_back(random_unit(r, o.dim));
  const int64_t span = o.days * 86400;
  const int64_t A = o.accounts;

  // Roles over a random permutation of accounts, so no role is contiguous in the file.
  std::vector<int64_t> perm(A);
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t i = A - 1; i > 0; --i) std::swap(perm[i], perm[r.below(i + 1)]);
  w.plan.assign(A, AccountPlan{});
  int64_t next = 0;

  const int64_t ring_accounts = int64_t(std::round(o.ring_fraction * double(A)));
  const auto ring_sizes = split_sizes(r, ring_accounts, 6, std::max<int64_t>(6, std::min<int64_t>(120, ring_accounts / 3)));
  for (std::size_t k = 0; k < ring_sizes.size(); ++k) {
    Rng rr(stream_key(w.operator_seed, kRingKind, k));
    RingSpec ring;
    ring.style = static_cast<RingStyle>(k % 3);
    const int64_t groups = ring.style == RingStyle::Split && ring_sizes[k] >= 12 ? 2 + rr.below(2) : 1;
    for (int64_t g = 0; g < groups; ++g) {
      std::vector<Vec> pool;
      const bool broad = ring.style == RingStyle::Pool;
      // A broad pool is reused a few times over by the ring's traffic; a pool so large that
      // no prompt recurs would be indistinguishable from ordinary traffic by content.
      const double per_member = o.light_rings ? 3.5 : o.requests_per_account;  // light: 2-5 requests
      const double volume = double(ring_sizes[k]) * per_member / double(groups);
      const int64_t n = broad ? std::max<int64_t>(12, int64_t(volume / rr.uniform(2.0, 8.0)))
                              : 4 + rr.below(9);
      const int64_t ntopics = broad ? 3 + rr.below(4) : 1 + rr.below(2);
      std::vector<int64_t> topics;
      for (int64_t t = 0; t < ntopics; ++t) topics.push_back(random_topic(rr));
      for (int64_t p = 0; p < n; ++p)
        pool.push_back(topic_prompt(rr, w.topics[topics[rr.below(ntopics)]].data(), o.dim));
      ring.pools.push_back(std::move(pool));
    }
    ring.noise = rr.uniform(0.12, 0.28);
    const int64_t nb = 8 + rr.below(30);
    // Bursts of 5-25 minutes, or (ring_sessions) sessions of 1-3 hours in which two members
    // rarely send within the same minutes.
    for (int64_t b = 0; b < nb; ++b)
      ring.bursts.emplace_back(rr.below(std::max<int64_t>(1, span - (o.ring_sessions ? 10800 : 3600))),
                               o.ring_sessions ? 3600 + rr.below(7200) : 300 + rr.below(1500));
    ring.behaviour = population_behaviour(rr);
    ring.jitter = rr.uniform(0.03, 0.2);
    ring.cover = rr.uniform(0.0, 0.35);
    if (o.ring_cover >= 0) ring.cover = o.ring_cover;
    ring.participation = rr.uniform(0.5, 0.9);
    ring.rotation = rr.uniform(0.0, 0.4);
    for (int64_t m = 0; m < ring_sizes[k]; ++m) {
      auto& p = w.plan[perm[next++]];
      p.role = Role::Ring;
      p.group = int64_t(k);
      p.subgroup = int64_t(m % groups);
    }
    w.rings.push_back(std::move(ring));
  }

  // One proxy network: its extraction templates recur a few to a dozen times each in the
  // file, sent round the clock by its scheduler; its accounts signed up in batches.
  if (const int64_t network = std::min<int64_t>(A - next, int64_t(std::round(o.proxy_network * double(A))));
      network > 0) {
    Rng nr(stream_key(w.operator_seed, kRingKind, uint64_t(ring_sizes.size())));
    RingSpec ring;
    ring.style = RingStyle::ProxyNetwork;
    const double extraction = double(network) * double(o.days) * 2.0 * 0.3;  // 1-3 a day, 10-50% of it
    std::vector<Vec> pool;
    const int64_t templates = std::max<int64_t>(12, int64_t(extraction / std::exp(nr.uniform(std::log(4.0), std::log(16.0)))));
    for (int64_t p = 0; p < templates; ++p) pool.push_back(topic_prompt(nr, w.topics[random_topic(nr)].data(), o.dim));
    ring.pools.push_back(std::move(pool));
    ring.noise = nr.uniform(0.12, 0.28);
    ring.behaviour = population_behaviour(nr);
    ring.jitter = ring.cover = ring.participation = ring.rotation = 0;
    ring.members = network;
    for (int64_t m = 0; m < network; ++m) {
      auto& p = w.plan[perm[next++]];
      p.role = Role::Ring;
      p.group = int64_t(w.rings.size());
      p.subgroup = m;  // its place in the network: sign-up batch and cards follow it
    }
    w.rings.push_back(std::move(ring));
  }

  const int64_t lookalikes = std::min<int64_t>(A - next, int64_t(std::round(o.lookalike_fraction * double(A))));
  const auto team_sizes = split_sizes(r, lookalikes / 2, 5, 30);
  for (std::size_t k = 0; k < team_sizes.size(); ++k) {
    Rng tr(stream_key(o.seed, kTeamKind, k));
    TeamSpec team;
    for (int64_t t = 0, n = 2 + tr.below(2); t < n; ++t) team.topics.push_back(random_topic(tr));
    const int64_t zones[] = {-8, -5, 0, 1, 8};
    team.tz_hours = zones[tr.below(5)];
    team.behaviour = population_behaviour(tr);
    for (int64_t d = 0, n = 1 + tr.below(2); d < n; ++d)
      team.shared_docs.push_back(topic_prompt(tr, w.topics[team.topics[0]].data(), o.dim));
    team.doc_probability = tr.uniform(0.2, 0.4);
    for (int64_t m = 0; m < team_sizes[k]; ++m) {
      auto& p = w.plan[perm[next++]];
      p.role = Role::Team;
      p.group = int64_t(k);
    }
    w.teams.push_back(std::move(team));
  }
  const auto crowd_sizes = split_sizes(r, lookalikes - lookalikes / 2, 30, 200);
  for (std::size_t k = 0; k < crowd_sizes.size(); ++k) {
    Rng cr(stream_key(o.seed, kCrowdKind, k));
    CrowdSpec crowd;
    const Vec& topic = w.topics[random_topic(cr)];
    for (int64_t q = 0, n = 2 + cr.below(4); q < n; ++q) crowd.questions.push_back(topic_prompt(cr, topic.data(), o.dim));
    crowd.day = cr.below(std::max<int64_t>(1, o.days));
    for (int64_t m = 0; m < crowd_sizes[k]; ++m) {
      auto& p = w.plan[perm[next++]];
      p.role = Role::Crowd;
      p.group = int64_t(k);
    }
    w.crowds.push_back(std::move(crowd));
  }
  for (int64_t v = 0; v < o.viral_prompts; ++v) {
    Rng vr(stream_key(o.seed, kViralKind, v));
    w.viral.push_back(topic_prompt(vr, w.topics[random_topic(vr)].data(), o.dim));
    w.viral_share.push_back(vr.uniform(0.03, 0.12));
  }
  return w;
}

/// Who sent a request: the account's own traffic, its ring's, or its team's office work.
enum class Source : uint8_t { Own, Ring, Office };

struct Request {
  int64_t time;
  Vec embedding;
  Source source = Source::Own;
};

/// Everything one account does: its requests, its behaviour vector, its label.
struct AccountTraffic {
  std::vector<Request> requests;
  Behaviour behaviour{};
  int64_t label = -1;
  bool viral = false;
  bool proxy_customer = false;  // an ordinary customer sending through the proxy service
  std::vector<int64_t> infra;  // [requests x kInfraKinds] with options.infrastructure
  int64_t payment = 0, created = 0;
};

int64_t legit_time(Rng& r, int64_t tz_hours, double start_hour, double length_hours, int64_t days) {
  const int64_t day = r.below(days);
  const double local = r.chance(0.1) ? r.uniform(0, 24) : start_hour + r.uniform(0, length_hours);
  double utc = local - double(tz_hours);
  int64_t t = day * 86400 + int64_t(utc * 3600.0);
  const int64_t span = days * 86400;
  t %= span;
  if (t < 0) t += span;
  return kEpoch + t;
}

constexpr int64_t kInfraKinds = 3;
const std::array<const char*, kInfraKinds> kInfraNames = {"ip24", "asn", "client_fingerprint"};
constexpr int64_t kProxyServiceTokens = 300;
constexpr int64_t kDay = 86400;

/// A token of kind `kind` (a namespace of the generator's own) and number `n`: never 0.
int64_t token(uint64_t seed, uint64_t kind, uint64_t n) {
  return int64_t(mix64(mix64(seed ^ (kind << 56)) + n) >> 2) | 1;
}
enum : uint64_t { kHomeIp = 1, kCarrierIp, kProxyIp, kPrivateIp, kOfficeIp, kAsn, kFingerprint, kCard };

/// Infrastructure of one account, from a stream of its own (the rest of the account does not
/// change): its home line, a mobile carrier, a proxy service some customers use; a ring's
/// proxy pool (from the service or private), its script's fingerprint, prepaid cards and a
/// sign-up burst; a team's office line, internal tool and company card.
void add_infrastructure(const World& w, int64_t index, AccountTraffic& acct) {
  Rng r(stream_key(w.seed, kInfraKind, uint64_t(index)));
  const uint64_t s = w.seed, op = w.operator_seed;
  const AccountPlan& plan = w.plan[index];
  const int64_t A = int64_t(w.plan.size());
  // Households of two neighbouring accounts share a line and sometimes a card.
  const bool household = r.chance(0.2);
  const int64_t home = token(s, kHomeIp, uint64_t(household ? index & ~int64_t(1) : index));
  const int64_t home_asn = token(s, kAsn, uint64_t(50 * r.uniform() * r.uniform()));
  const double mobile = r.chance(0.4) ? 0.3 : 0.0, proxied = r.chance(0.05) ? 0.5 : 0.0;
  const int64_t sdk = r.chance(0.1) ? token(s, kFingerprint, 1000 + uint64_t(index))
                                    : token(s, kFingerprint, uint64_t(40 * std::pow(r.uniform(), 3.0)));
  acct.payment = r.chance(0.1) ? 0 : token(s, kCard, uint64_t(household && r.chance(0.5) ? index & ~int64_t(1) : index));
  acct.created = r.chance(0.05) ? 0 : kEpoch - int64_t(r.uniform(1.0, 730.0) * kDay);

  acct.proxy_customer = plan.role == Role::Legit && proxied > 0;

  // A proxy network sends everything through the proxy service, its extraction with its
  // scheduler's fingerprint; a third of its cards fund about three accounts each, and most
  // accounts were signed up in batches of about fifty within a few hours.
  if (plan.role == Role::Ring && w.rings[plan.group].style == RingStyle::ProxyNetwork) {
    const int64_t members = w.rings[plan.group].members;
    if (r.chance(1.0 / 3.0)) acct.payment = token(op, kCard, 3000000 + r.below(std::max<int64_t>(1, members / 9)));
    if (r.chance(0.7)) {
      Rng b(stream_key(op, kInfraKind, uint64_t(2 * A) + uint64_t(plan.subgroup / 50)));
      acct.created = kEpoch - int64_t(b.uniform(10.0, 300.0) * kDay) + r.below(4 * 3600);
    }
    acct.infra.resize(acct.requests.size() * kInfraKinds);
    for (std::size_t q = 0; q < acct.requests.size(); ++q) {
      int64_t* t = &acct.infra[q * kInfraKinds];
      t[0] = token(op, kProxyIp, r.below(kProxyServiceTokens));
      t[1] = token(op, kAsn, 200 + r.below(3));
      t[2] = acct.requests[q].source == Source::Ring ? token(op, kFingerprint, 7000) : sdk;
    }
    return;
  }

  // A ring's and a team's shared infrastructure, drawn from their own streams.
  std::vector<int64_t> pool;
  int64_t group_asn = 0, group_fingerprint = 0;
  if (plan.role == Role::Ring || plan.role == Role::Team) {
    Rng g(stream_key(plan.role == Role::Ring ? op : s, kInfraKind,
                     uint64_t(A) + 2 * uint64_t(plan.group) + (plan.role == Role::Team)));
    if (plan.role == Role::Ring) {
      const bool rented = g.chance(0.5);
      for (int64_t i = 0, n = 4 + g.below(27); i < n; ++i)
        pool.push_back(rented ? token(op, kProxyIp, g.below(kProxyServiceTokens))
                              : token(op, kPrivateIp, uint64_t(plan.group) * 64 + uint64_t(i)));
      group_asn = token(op, kAsn, rented ? 200 + g.below(3) : 300 + g.below(20));
      group_fingerprint = g.chance(0.7) ? token(op, kFingerprint, 5000 + uint64_t(plan.group)) : 0;
      const int64_t cards = g.chance(0.5) ? 1 + g.below(3) : 0;
      if (cards > 0) acct.payment = token(op, kCard, 1000000 + uint64_t(plan.group) * 4 + r.below(cards));
      if (g.chance(0.6)) {  // signed up in one burst of a few hours
        const int64_t start = kEpoch - int64_t(g.uniform(10.0, 300.0) * kDay);
        acct.created = start + r.below(6 * 3600);
      }
    } else {
      pool.push_back(token(s, kOfficeIp, uint64_t(plan.group)));
      group_asn = token(s, kAsn, 400 + uint64_t(plan.group));
      group_fingerprint = g.chance(0.6) ? token(s, kFingerprint, 9000 + uint64_t(plan.group)) : 0;
      acct.payment = token(s, kCard, 2000000 + uint64_t(plan.group));
    }
  }

  acct.infra.resize(acct.requests.size() * kInfraKinds);
  for (std::size_t q = 0; q < acct.requests.size(); ++q) {
    int64_t* t = &acct.infra[q * kInfraKinds];
    // A ring sends its cover traffic from its proxies too; a team member works from the
    // office on office work.
    const bool group = plan.role == Role::Ring || (plan.role == Role::Team && acct.requests[q].source == Source::Office &&
                                                  r.chance(0.8));
    if (group) {
      t[0] = pool[r.below(int64_t(pool.size()))];
      t[1] = group_asn;
      t[2] = group_fingerprint != 0 ? group_fingerprint : sdk;
    } else if (r.chance(proxied)) {
      t[0] = token(op, kProxyIp, r.below(kProxyServiceTokens));
      t[1] = token(op, kAsn, 200 + r.below(3));
      t[2] = sdk;
    } else if (r.chance(mobile)) {
      t[0] = token(s, kCarrierIp, r.below(std::max<int64_t>(1, A / 20)));
      t[1] = token(s, kAsn, 100 + r.below(5));
      t[2] = sdk;
    } else {
      t[0] = home;
      t[1] = home_asn;
      t[2] = sdk;
    }
  }
}

AccountTraffic generate_account(const World& w, int64_t index) {
  Rng r(stream_key(w.seed, kAccountKind, uint64_t(index)));
  const AccountPlan& plan = w.plan[index];
  const int64_t d = w.dim;
  AccountTraffic acct;

  // Heavy-tailed volume; ring accounts stay under per-account thresholds (less spread).
  const double sigma = plan.role == Role::Ring ? 0.6 : 1.0;
  int64_t n = int64_t(std::llround(r.lognormal_with_mean(w.mean_requests, sigma)));
  n = std::clamp<int64_t>(n, plan.role == Role::Ring ? 3 : 1, int64_t(50 * w.mean_requests) + 1);
  if (plan.role == Role::Ring && w.options.light_rings) n = 2 + r.below(4);

  // Personal habits every account has (used for cover traffic too).
  const int64_t zones[] = {-8, -5, 0, 1, 8};
  const int64_t tz = zones[r.below(5)];
  const double start_hour = r.uniform(6, 13), length = r.uniform(6, 14);
  std::vector<int64_t> interests;
  for (int64_t t = 0, k = 1 + r.below(3); t < k; ++t) interests.push_back(random_topic(r));
  acct.behaviour = population_behaviour(r);

  auto personal_request = [&](std::vector<Request>& out) {
    Request q;
    q.time = legit_time(r, tz, start_hour, length, w.days);
    if (!out.empty() && r.chance(0.15)) {
      q.embedding.resize(d);
      perturbed(r, out[r.below(int64_t(out.size()))].embedding.data(), 0.15, d, q.embedding.data());
    } else {
      q.embedding = topic_prompt(r, w.topics[interests[r.below(int64_t(interests.size()))]].data(), d);
    }
    out.push_back(std::move(q));
  };

  if (plan.role == Role::Ring && w.rings[plan.group].style == RingStyle::ProxyNetwork) {
    // 1-3 requests a day; the resold customers' ordinary traffic, with their own clients
    // (the account's behaviour stays the population's), and extraction round the clock.
    const RingSpec& network = w.rings[plan.group];
    acct.label = plan.group;
    const double resold = r.uniform(0.5, 0.9);
    const int64_t m = std::max<int64_t>(1, int64_t(std::llround(double(w.days) * r.uniform(1.0, 3.0))));
    const auto& pool = network.pools[0];
    for (int64_t i = 0; i < m; ++i) {
      if (r.chance(resold)) {
        personal_request(acct.requests);
        continue;
      }
      Request q;
      q.source = Source::Ring;
      q.time = kEpoch + r.below(w.days * kDay);
      q.embedding.resize(d);
      perturbed(r, pool[r.below(int64_t(pool.size()))].data(), network.noise, d, q.embedding.data());
      acct.requests.push_back(std::move(q));
    }
  } else if (plan.role == Role::Ring) {
    const RingSpec& ring = w.rings[plan.group];
    acct.label = plan.group;
    // With ring_population_behaviour the member keeps the client it drew like anybody else.
    for (int64_t f = 0; f < kFeatures && !w.options.ring_population_behaviour; ++f)
      acct.behaviour[f] = ring.behaviour[f] + float(ring.jitter * kBehaviourSpread[f] * r.normal());
    if (!w.options.ring_population_behaviour && r.chance(ring.rotation)) {  // a rotated client: a couple of settings differ
      const Behaviour other = population_behaviour(r);
      for (int k = 0; k < 2; ++k) {
        const int64_t f = 3 + r.below(5);
        acct.behaviour[f] = other[f];
      }
    }
    std::vector<int64_t> mine;
    for (int64_t b = 0; b < int64_t(ring.bursts.size()); ++b)
      if (r.chance(ring.participation)) mine.push_back(b);
    if (mine.empty()) mine.push_back(r.below(int64_t(ring.bursts.size())));
    const auto& pool = ring.pools[plan.subgroup];
    for (int64_t i = 0; i < n; ++i) {
      if (r.chance(ring.cover)) {
        personal_request(acct.requests);
        continue;
      }
      const auto& burst = ring.bursts[mine[r.below(int64_t(mine.size()))]];
      Request q;
      q.source = Source::Ring;
      q.time = kEpoch + burst.first + r.below(burst.second);
      q.embedding.resize(d);
      perturbed(r, pool[r.below(int64_t(pool.size()))].data(), ring.noise, d, q.embedding.data());
      acct.requests.push_back(std::move(q));
    }
  } else if (plan.role == Role::Team) {
    const TeamSpec& team = w.teams[plan.group];
    for (int64_t f = 0; f < kFeatures; ++f)
      acct.behaviour[f] = team.behaviour[f] + float(0.05 * kBehaviourSpread[f] * r.normal());
    for (int64_t i = 0; i < n; ++i) {
      Request q;
      int64_t day = r.below(w.days);
      if (day % 7 >= 5) day = (day + 2) % w.days;  // office days
      double utc = r.uniform(9, 17) - double(team.tz_hours);
      int64_t t = (day * 86400 + int64_t(utc * 3600)) % (w.days * 86400);
      if (t < 0) t += w.days * 86400;
      q.time = kEpoch + t;
      q.source = Source::Office;
      q.embedding = topic_prompt(r, w.topics[team.topics[r.below(int64_t(team.topics.size()))]].data(), d);
      acct.requests.push_back(std::move(q));
    }
    for (const auto& doc : team.shared_docs) {
      if (!r.chance(team.doc_probability)) continue;
      Request q;
      q.time = legit_time(r, team.tz_hours, 9, 8, w.days);
      q.source = Source::Office;
      q.embedding.resize(d);
      perturbed(r, doc.data(), 0.1, d, q.embedding.data());
      acct.requests.push_back(std::move(q));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) personal_request(acct.requests);
    if (plan.role == Role::Crowd) {
      const CrowdSpec& crowd = w.crowds[plan.group];
      for (int64_t i = 0, k = 1 + r.below(3); i < k; ++i) {
        Request q;
        q.time = kEpoch + crowd.day * 86400 + r.below(86400);
        q.embedding.resize(d);
        perturbed(r, crowd.questions[r.below(int64_t(crowd.questions.size()))].data(),
                  r.uniform(0.3, 0.75), d, q.embedding.data());
        acct.requests.push_back(std::move(q));
      }
    }
  }
  if (plan.role != Role::Ring) {
    for (std::size_t v = 0; v < w.viral.size(); ++v) {
      if (!r.chance(w.viral_share[v])) continue;
      acct.viral = true;
      Request q;
      q.time = legit_time(r, tz, start_hour, length, w.days);
      q.embedding.resize(d);
      perturbed(r, w.viral[v].data(), 0.08, d, q.embedding.data());
      acct.requests.push_back(std::move(q));
    }
  }
  if (w.options.infrastructure) add_infrastructure(w, index, acct);
  return acct;
}

}  // namespace

void validate_generate_options(const GenerateOptions& o) {
  RINGSCAN_EXPECTS(o.accounts >= 1, "generate: --accounts must be at least 1");
  RINGSCAN_EXPECTS(o.dim >= 2 && o.dim <= 65536, "generate: --dim must be in [2, 65536]");
  RINGSCAN_EXPECTS(o.requests_per_account > 0 && o.requests_per_account <= 10000,
                   "generate: --requests-per-account must be in (0, 10000]");
  RINGSCAN_EXPECTS(o.ring_fraction >= 0 && o.lookalike_fraction >= 0 &&
                       o.ring_fraction + o.lookalike_fraction <= 0.9,
                   "generate: ring and look-alike fractions must be >= 0 and sum to at most 0.9");
  RINGSCAN_EXPECTS(o.days >= 1 && o.days <= 3660, "generate: --days must be in [1, 3660]");
  RINGSCAN_EXPECTS(o.viral_prompts >= 0 && o.viral_prompts <= 1000,
                   "generate: --viral-prompts must be in [0, 1000]");
  RINGSCAN_EXPECTS(o.noise_features >= 0 && o.noise_features <= 1000,
                   "generate: --noise-features must be in [0, 1000]");
  RINGSCAN_EXPECTS(o.noise_features == 0 || o.features,
                   "generate: --noise-features needs the feature columns (not with --no-features)");
  RINGSCAN_EXPECTS(o.ring_cover < 0 || o.ring_cover <= 0.9,
                   "generate: --ring-cover must be in [0, 0.9]");
  RINGSCAN_EXPECTS(o.proxy_network >= 0 && o.proxy_network <= 0.5,
                   "generate: --proxy-network must be in [0, 0.5]");
  RINGSCAN_EXPECTS(o.proxy_network == 0 || o.infrastructure,
                   "generate: --proxy-network needs the infrastructure datasets (--infra)");
  RINGSCAN_EXPECTS(o.ring_fraction + o.proxy_network + o.lookalike_fraction <= 0.9,
                   "generate: ring, proxy-network and look-alike fractions must sum to at most 0.9");
}

namespace {

/// Receives the generated data: requests in blocks, then the accounts.
struct Sink {
  virtual ~Sink() = default;
  virtual void requests(const int64_t* account, const float* embedding, const int64_t* time,
                        const int64_t* infra, int64_t n) = 0;
  virtual void accounts(const std::vector<int64_t>& ids, const std::vector<float>& features,
                        const std::vector<std::string>& names, const std::vector<int64_t>& labels,
                        const std::vector<int64_t>& roles, const std::vector<int64_t>& styles) = 0;
  /// With options.infrastructure: each account's payment instrument and sign-up time.
  virtual void payment_and_sign_up(const std::vector<int64_t>& payment, const std::vector<int64_t>& created) = 0;
};

/// Callers validate the options first (generate_dataset before it creates its file).
GenerateSummary generate(const GenerateOptions& o, const Context& ctx, Sink& sink) {
  ThreadScope threads(ctx.threads);
  // One block of requests in memory at a time (float32 plus the per-request vectors).
  ctx.require_memory(size_from_double(double(kBlockAccounts) * o.requests_per_account * 4 * double(o.dim) * 3 +
                             double(o.accounts) * ((kFeatures + o.noise_features) * 4 + 64)),
                     "generate");

  ctx.report("generate", 0, o.accounts);  // the stage starts now, not at its first block
  const World w = build_world(o);
  const int64_t A = o.accounts;
  // The behaviour columns: the generator's own, then the noise columns, or none at all.
  std::vector<std::string> names;
  if (o.features) {
    names.assign(kFeatureNames.begin(), kFeatureNames.end());
    for (int64_t f = 0; f < o.noise_features; ++f) names.push_back("noise_" + std::to_string(f));
  }
  const int64_t B = int64_t(names.size());
  std::vector<int64_t> ids(A), labels(A), roles(A), styles(A), payment, created;
  if (o.infrastructure) {
    payment.resize(A);
    created.resize(A);
  }
  std::vector<float> features(A * B);
  for (int64_t i = 0; i < A; ++i) ids[i] = int64_t(mix64(o.seed * 0x100000001b3ULL + uint64_t(i)) >> 2);
  GenerateSummary summary;
  summary.accounts = A;
  summary.rings = int64_t(w.rings.size());
  summary.teams = int64_t(w.teams.size());
  summary.crowds = int64_t(w.crowds.size());
  summary.viral_prompts = int64_t(w.viral.size());

  std::vector<AccountTraffic> block;
  for (int64_t first = 0; first < A; first += kBlockAccounts) {
    const int64_t count = std::min(kBlockAccounts, A - first);
    block.assign(count, AccountTraffic{});
    detail::parallel_for(count, 16, [&](int64_t i) { block[i] = generate_account(w, first + i); });

    std::vector<std::pair<int64_t, int64_t>> order;  // (account in block, request)
    for (int64_t i = 0; i < count; ++i) {
      const auto& a = block[i];
      labels[first + i] = a.label;
      styles[first + i] = a.label >= 0 ? int64_t(w.rings[a.label].style) : -1;
      const Role role = w.plan[first + i].role;
      roles[first + i] = int64_t(role == Role::Ring    ? AccountRole::Ring
                                 : role == Role::Team  ? AccountRole::Team
                                 : role == Role::Crowd ? AccountRole::Crowd
                                 : a.viral             ? AccountRole::ViralSharer
                                 : a.proxy_customer    ? AccountRole::ProxyCustomer
                                                       : AccountRole::Legit);
      if (B > 0) {
        float* row = features.data() + (first + i) * B;
        std::copy(a.behaviour.begin(), a.behaviour.end(), row);
        // Noise columns from a stream of their own (the other columns do not change): a
        // continuous one, a small categorical one and a heavy-tailed one in turn.
        Rng nr(stream_key(o.seed, kNoiseKind, uint64_t(first + i)));
        for (int64_t f = kFeatures; f < B; ++f) {
          const int64_t kind = (f - kFeatures) % 3;
          row[f] = kind == 0 ? float(nr.normal()) : kind == 1 ? float(nr.below(5)) : float(std::exp(nr.normal()));
        }
      }
      if (o.infrastructure) {
        payment[first + i] = a.payment;
        created[first + i] = a.created;
      }
      summary.ring_accounts += a.label >= 0;
      summary.viral_accounts += a.viral;
      for (int64_t q = 0; q < int64_t(a.requests.size()); ++q) order.emplace_back(i, q);
    }
    if (o.shuffle) {
      Rng sr(stream_key(o.seed, kShuffleKind, uint64_t(first)));
      for (int64_t i = int64_t(order.size()) - 1; i > 0; --i) std::swap(order[i], order[sr.below(i + 1)]);
    }
    const int64_t n = int64_t(order.size());
    std::vector<int64_t> acc(n), time(n), infra(o.infrastructure ? n * kInfraKinds : 0);
    std::vector<float> emb(n * o.dim);
    for (int64_t k = 0; k < n; ++k) {
      const auto& a = block[order[k].first];
      const auto& req = a.requests[order[k].second];
      acc[k] = ids[first + order[k].first];
      time[k] = req.time;
      std::copy(req.embedding.begin(), req.embedding.end(), emb.begin() + k * o.dim);
      if (o.infrastructure)
        std::copy_n(&a.infra[order[k].second * kInfraKinds], kInfraKinds, &infra[k * kInfraKinds]);
    }
    sink.requests(acc.data(), emb.data(), o.times ? time.data() : nullptr, o.infrastructure ? infra.data() : nullptr, n);
    summary.requests += n;
    // Complete only once the accounts are written too (below).
    if (first + count < A) ctx.report("generate", first + count, A);
  }
  sink.accounts(ids, features, names, labels, roles, styles);
  if (o.infrastructure) sink.payment_and_sign_up(payment, created);
  ctx.report("generate", A, A);
  return summary;
}

}  // namespace

const char* ring_style_name(int64_t style) {
  switch (style) {
    case int64_t(RingStyle::Templates): return "templates";
    case int64_t(RingStyle::Pool): return "pool";
    case int64_t(RingStyle::Split): return "split";
    case int64_t(RingStyle::Paraphrased): return "paraphrased";
    case int64_t(RingStyle::ProxyNetwork): return "proxy-network";
    default: return "other";
  }
}

GenerateSummary generate_dataset(const std::string& path, const GenerateOptions& o,
                                 const Context& ctx) {
  validate_generate_options(o);
  struct FileSink final : Sink {
    InputFileWriter writer;
    FileSink(const std::string& path, const GenerateOptions& o)
        : writer(path, o.dim, o.float16 ? EmbeddingType::Float16 : EmbeddingType::Float32, o.times) {
      if (o.infrastructure) writer.declare_infra({kInfraNames.begin(), kInfraNames.end()});
    }
    void requests(const int64_t* account, const float* embedding, const int64_t* time, const int64_t* infra,
                  int64_t n) override {
      writer.append_requests(account, embedding, time, n, infra);
    }
    void payment_and_sign_up(const std::vector<int64_t>& payment, const std::vector<int64_t>& created) override {
      writer.write_account_column("payment", payment);
      writer.write_account_column("created", created);
    }
    void accounts(const std::vector<int64_t>& ids, const std::vector<float>& features,
                  const std::vector<std::string>& names, const std::vector<int64_t>& labels,
                  const std::vector<int64_t>& roles, const std::vector<int64_t>& styles) override {
      writer.write_accounts(ids, features, int64_t(names.size()), names, labels);
      writer.write_account_column("role", roles);
      writer.write_account_column("ring_style", styles);
    }
  } sink(path, o);
  const GenerateSummary summary = generate(o, ctx, sink);
  sink.writer.commit();
  return summary;
}

Dataset generate_in_memory(const GenerateOptions& o, const Context& ctx,
                           std::vector<int64_t>* roles, std::vector<int64_t>* styles) {
  struct MemorySink final : Sink {
    Dataset data;
    std::vector<int64_t> account_of_request, roles, styles;
    void requests(const int64_t* account, const float* embedding, const int64_t* time, const int64_t* infra,
                  int64_t n) override {
      account_of_request.insert(account_of_request.end(), account, account + n);
      data.embeddings.insert(data.embeddings.end(), embedding, embedding + n * data.dim);
      if (time != nullptr) data.request_time.insert(data.request_time.end(), time, time + n);
      if (infra != nullptr) data.request_infra.insert(data.request_infra.end(), infra, infra + n * kInfraKinds);
    }
    void payment_and_sign_up(const std::vector<int64_t>& payment, const std::vector<int64_t>& created) override {
      data.account_payment = payment;
      data.account_created = created;
    }
    void accounts(const std::vector<int64_t>& ids, const std::vector<float>& features,
                  const std::vector<std::string>& names, const std::vector<int64_t>& labels,
                  const std::vector<int64_t>& r, const std::vector<int64_t>& st) override {
      data.account_ids = ids;
      data.features = features;
      data.feature_dim = int64_t(names.size());
      data.feature_names = names;
      data.labels = labels;
      roles = r;
      styles = st;
    }
  } sink;
  validate_generate_options(o);
  sink.data.dim = o.dim;
  sink.data.source = "generated(seed=" + std::to_string(o.seed) + ")";
  if (o.infrastructure) {
    sink.data.infra_dim = kInfraKinds;
    sink.data.infra_names.assign(kInfraNames.begin(), kInfraNames.end());
  }
  generate(o, ctx, sink);
  // Generated ids are a bijective hash of the account index; map them back by sorting.
  std::vector<std::pair<int64_t, int64_t>> by_id(sink.data.account_ids.size());
  for (std::size_t i = 0; i < by_id.size(); ++i) by_id[i] = {sink.data.account_ids[i], int64_t(i)};
  std::sort(by_id.begin(), by_id.end());
  sink.data.request_account.resize(sink.account_of_request.size());
  for (std::size_t r = 0; r < sink.account_of_request.size(); ++r)
    sink.data.request_account[r] =
        std::lower_bound(by_id.begin(), by_id.end(), std::make_pair(sink.account_of_request[r], int64_t(INT64_MIN)))->second;
  if (roles) *roles = std::move(sink.roles);
  if (styles) *styles = std::move(sink.styles);
  return std::move(sink.data);
}

}  // namespace ringscan
