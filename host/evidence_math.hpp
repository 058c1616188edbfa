// Per-element logic shared by the CPU and CUDA backends: compiled by g++ for the host stages
// and by nvcc for the kernels, so the CPU tests exercise the arithmetic the GPU runs.
//
// Every signal of an account pair is a surprise in nats, -ln p, where p is the chance of
// seeing at least what the pair shows if the two accounts were independent users of the same
// file; the nulls are estimated from the file itself (evidence_calibration.hpp). Surprises
// of independent signals add, and their sum is judged against the gamma distribution a sum
// of that many null surprises follows.
#pragma once
#include <cmath>
#include <cstdint>

#include "host_device.hpp"
#include "portable_math.hpp"
#include "tail_probability.hpp"

namespace ringscan {

/// Dot product of two [d] vectors with 16 independent partial sums: vectorisable without
/// fast-math and with a fixed summation order, so the result is the same everywhere.
RINGSCAN_HD inline float dot_product(const float* a, const float* b, int64_t d) {
  float part[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 16 <= d; i += 16)
    for (int j = 0; j < 16; ++j) part[j] += a[i + j] * b[i + j];
  for (; i < d; ++i) part[i & 15] += a[i] * b[i];
  float s = 0;
  for (int j = 0; j < 16; ++j) s += part[j];
  return s;
}

/// Scales v [d] to unit length in place (a zero vector stays zero). The squared norm is
/// summed in double, where float products are exact, so host and device agree bit for bit.
RINGSCAN_HD inline void normalise_to_unit(float* v, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += double(v[i]) * v[i];
  const float inv = s > 0 ? float(1.0 / sqrt(s)) : 0.0f;
  for (int64_t i = 0; i < d; ++i) v[i] *= inv;
}

/// First index i of the ascending array v [n] with v[i] >= key (n when none): std::lower_bound
/// for host and device code.
template <class T, class K>
RINGSCAN_HD inline int64_t first_not_below(const T* v, int64_t n, K key) {
  int64_t a = 0, b = n;
  while (a < b) {
    const int64_t m = a + (b - a) / 2;
    if (v[m] < key) a = m + 1;
    else b = m;
  }
  return a;
}

// ---------------------------------------------------------------------------------------
// Shared prompts

/// Surprise of two accounts sharing `shared` prompt groups. Under independence, account b
/// sends one of a's groups g (sent by n_g accounts) with probability about
/// (n_g - 1) p_b / P for b's p_b of the file's P tries (`volume_b`, `total_volume`: distinct
/// prompts, as a prompt sent again is no new try): the expected number of shared groups is
/// mass_a p_b / P, mass_a the sum of n_g - 1 over a's groups (the larger of the two
/// directions is taken), and the count of shared groups is Poisson. So a heavy account is
/// expected to share more, a group sent by many accounts is weak evidence, and one shared
/// prompt among thousands is a coincidence, whatever the embedding model.
RINGSCAN_HD inline float shared_groups_surprise(float shared, float mass_a, float mass_b, double volume_a,
                                                double volume_b, double total_volume) {
  if (!(shared > 0) || !(total_volume > 0)) return 0.0f;
  const double ab = double(mass_a) * volume_b, ba = double(mass_b) * volume_a;
  double expected = (ab > ba ? ab : ba) / total_volume;
  if (expected < 1e-12) expected = 1e-12;
  return surprise_of(log_poisson_tail(double(shared), expected));
}

// ---------------------------------------------------------------------------------------
// Shared infrastructure

/// Surprise of the infrastructure tokens two accounts share. `x` and `y` are the accounts'
/// tokens (ids ascending, so each kind's tokens are contiguous), `kind` and `users` each
/// token's kind and number of accounts. Per kind, the rarest token both used counts: a
/// random account uses a token of n users with chance (n - 1) / (A - 1), and the pair had
/// m = min(the two accounts' tokens of that kind) tries at it, so its surprise is
/// -ln min(1, m (n - 1) / (A - 1)). Counting more than one token per kind would take the
/// tokens of one kind as independent, and they are not: the customers of one proxy service
/// rotate through the same few hundred addresses. The kinds' surprises are summed and judged
/// against a gamma of shape `kinds`. `*rarest` receives the users of the rarest token shared
/// (0 when none is).
RINGSCAN_HD inline float shared_infrastructure_surprise(const int64_t* x, int64_t nx, const int64_t* y, int64_t ny,
                                                        const int32_t* kind, const int32_t* users, int64_t accounts,
                                                        int kinds, int32_t* rarest_shared) {
  double sum = 0;
  int32_t fewest = 0;
  int64_t i = 0, j = 0;
  while (i < nx || j < ny) {
    const int32_t k = j >= ny || (i < nx && kind[x[i]] <= kind[y[j]]) ? kind[x[i]] : kind[y[j]];
    int64_t ie = i, je = j;
    while (ie < nx && kind[x[ie]] == k) ++ie;
    while (je < ny && kind[y[je]] == k) ++je;
    int32_t rarest = 0;
    for (int64_t p = i, q = j; p < ie && q < je;) {
      if (x[p] < y[q]) {
        ++p;
      } else if (y[q] < x[p]) {
        ++q;
      } else {
        if (rarest == 0 || users[x[p]] < rarest) rarest = users[x[p]];
        ++p;
        ++q;
      }
    }
    if (rarest > 0) {
      if (fewest == 0 || rarest < fewest) fewest = rarest;
      const double tries = double(ie - i < je - j ? ie - i : je - j);
      const double chance = tries * double(rarest - 1) / double(accounts > 1 ? accounts - 1 : 1);
      if (chance < 1.0) sum -= portable_log(chance > 1e-300 ? chance : 1e-300);
    }
    i = ie;
    j = je;
  }
  *rarest_shared = fewest;
  return fewest > 0 ? surprise_of(log_gamma_tail(double(kinds > 0 ? kinds : 1), sum)) : 0.0f;
}

// ---------------------------------------------------------------------------------------
// Co-activity

/// Co-activity is measured at these scales (seconds): scripted simultaneous sends, bursts,
/// shared sessions, shifts of work. The best scale is chosen per pair, and its surprise pays
/// ln(kTimingScales) for the choice.
constexpr int kTimingScales = 4;
RINGSCAN_HD inline int64_t timing_scale(int s) {
  return s == 0 ? 60 : s == 1 ? 600 : s == 2 ? 3600 : 14400;
}
constexpr int kMaxTimingShifts = 6;

/// The null of co-activity: the other account's timeline moved by whole days (which keeps
/// its hours of the day, its timezone and office hours), circularly over the file's span
/// [origin, origin + period). Files of two to six days use what whole-day moves they have;
/// the rest, and a file of one day, moves by tens of minutes (which keeps less of a daily
/// rhythm).
struct TimingNull {
  int64_t origin = 0, period = 1;
  int shifts = 0;
  int64_t shift[kMaxTimingShifts] = {0, 0, 0, 0, 0, 0};
};

inline TimingNull timing_null(int64_t first_time, int64_t last_time) {
  TimingNull n;
  const int64_t day = 86400;
  const int64_t days = (last_time - first_time) / day + 1;
  n.origin = first_time;
  n.period = days * day;
  if (days >= 7) {
    const int64_t d[kMaxTimingShifts] = {1, 2, 3, -1, -2, -3};
    for (int i = 0; i < kMaxTimingShifts; ++i) n.shift[i] = d[i] * day;
    n.shifts = kMaxTimingShifts;
  } else if (days >= 2) {
    for (int64_t k = 1; k < days && n.shifts < kMaxTimingShifts; ++k) n.shift[n.shifts++] = k * day;
  }
  // Fill up with moves of tens of minutes, none a multiple of another or of an hour.
  const int64_t minutes[kMaxTimingShifts] = {37, -41, 83, -89, 131, -137};
  for (int i = 0; n.shifts < kMaxTimingShifts; ++i) n.shift[n.shifts++] = minutes[i] * 60;
  return n;
}

/// Episodes of x (times ascending; an episode is a run of requests with gaps of at most
/// `gap`) during which y sent a request within w of one of x's, y's timeline moved by `shift`
/// seconds, circularly over the null's period. Counting episodes rather than requests keeps a
/// session of many requests from counting as many coincidences.
RINGSCAN_HD inline int64_t coactive_episodes(const int64_t* x, int64_t nx, const int64_t* y, int64_t ny,
                                             int64_t w, int64_t gap, int64_t shift, const TimingNull& null) {
  if (nx == 0 || ny == 0) return 0;
  // The queries x - shift, wrapped into the period, ascend from index `start` to the end and
  // again from 0 to start: the span is at most the period, so they wrap at most once, where
  // x - shift - origin passes the next multiple of the period. `lift` wraps each run.
  int64_t start = 0, lift_first = 0, lift_second = 0;
  if (shift != 0) {
    const int64_t first = x[0] - shift - null.origin;
    int64_t base = first / null.period;
    if (first % null.period < 0) --base;  // floor division
    const int64_t edge = null.origin + shift + (base + 1) * null.period;  // first x that wraps
    start = first_not_below(x, nx, edge);
    lift_first = -shift - (base + 1) * null.period;  // for x[start..nx)
    lift_second = -shift - base * null.period;       // for x[0..start)
    if (start == nx) {  // no wrap: one run
      start = 0;
      lift_first = lift_second;
    }
  }
  // Episode ids follow the original order; the one at `start` may continue at the end of the
  // second pass (an episode straddling the wrap), where it must not count twice.
  int64_t straddling = 0;
  for (int64_t i = 1; i <= start; ++i) straddling += x[i] - x[i - 1] > gap;
  bool straddling_counted = false;
  int64_t count = 0;
  for (int run = 0; run < 2; ++run) {
    const int64_t begin = run == 0 ? start : 0, end = run == 0 ? nx : start;
    const int64_t lift = run == 0 ? lift_first : lift_second;
    int64_t episode = run == 0 ? straddling : 0, counted = -1, j = 0;
    for (int64_t i = begin; i < end; ++i) {
      if (i > begin && x[i] - x[i - 1] > gap) ++episode;
      if (episode == counted) continue;
      const int64_t q = x[i] + lift;
      while (j < ny && y[j] < q - w) ++j;
      if (j < ny && y[j] <= q + w) {
        counted = episode;
        if (run == 0 && episode == straddling) straddling_counted = true;
        if (!(run == 1 && episode == straddling && straddling_counted)) ++count;
      }
    }
  }
  return count;
}

/// Surprise of two accounts' co-activity (times ascending): at each scale w, the episodes of
/// the account with fewer requests during which the other
/// was active, against the same count with the other's timeline moved as the null says. The
/// moved counts estimate a Poisson mean (with one pseudo-count, so that moves that all find
/// nothing do not make one coincidence certain); the best scale's surprise, less
/// ln(kTimingScales) for choosing it. A single coincident episode is never evidence.
/// Episodes are runs with gaps of at most max(w, min_gap): the pooled timelines of clusters
/// pass a session's length, so that one session two clusters happen to share is one
/// coincidence, not the dozens of episodes of its many members (such clumps would make the
/// count far more variable than a Poisson count).
RINGSCAN_HD inline float synchrony_surprise(const int64_t* a, int64_t na, const int64_t* b, int64_t nb,
                                            const TimingNull& null, int64_t min_gap = 0) {
  if (na == 0 || nb == 0 || null.shifts == 0) return 0.0f;
  const bool a_lighter = na <= nb;
  const int64_t* x = a_lighter ? a : b;
  const int64_t* y = a_lighter ? b : a;
  const int64_t nx = a_lighter ? na : nb, ny = a_lighter ? nb : na;
  double best = 0;
  for (int s = 0; s < kTimingScales; ++s) {
    const int64_t w = timing_scale(s), gap = w > min_gap ? w : min_gap;
    const int64_t seen = coactive_episodes(x, nx, y, ny, w, gap, 0, null);
    if (seen < 2) continue;
    int64_t moved = 0;
    for (int k = 0; k < null.shifts; ++k) moved += coactive_episodes(x, nx, y, ny, w, gap, null.shift[k], null);
    const double expected = (double(moved) + 1.0) / double(null.shifts + 1);
    const double surprise = -log_poisson_tail(double(seen), expected);
    best = surprise > best ? surprise : best;
  }
  return surprise_of(-(best - portable_log(double(kTimingScales))));
}

// ---------------------------------------------------------------------------------------
// Empirical nulls

/// The distribution of a statistic over random account pairs of the file: its sorted values
/// (`values` [n], ascending), and an exponential tail fitted to the top of them (beyond
/// `tail_start`, the mean excess `tail_scale`) for values no sample reached. No family of
/// distributions is assumed for the body: a behaviour sum is a mixture (half of the clients
/// on an SDK's defaults), which no gamma fits.
struct EmpiricalNull {
  const float* values = nullptr;
  int64_t n = 0;
  float tail_start = 0, tail_scale = 1;
  double tail_log_share = 0;  ///< ln of the share of the null at or above tail_start
};

/// Surprise of a statistic x against the null: -ln P(null >= x), with one pseudo-count in
/// the body and the exponential tail beyond it.
RINGSCAN_HD inline float null_surprise(float x, const EmpiricalNull& null) {
  if (null.n == 0) return 0.0f;
  if (x > null.tail_start) {
    const double s = -null.tail_log_share + (double(x) - double(null.tail_start)) / double(null.tail_scale);
    return float(s < kMaxSurprise ? s : kMaxSurprise);
  }
  const int64_t above = null.n - first_not_below(null.values, null.n, x);
  return float(-portable_log((double(above) + 1.0) / (double(null.n) + 1.0)));
}

// ---------------------------------------------------------------------------------------
// Behaviour

/// Surprise of one behaviour feature of two accounts from their mid-ranks u (the share of
/// accounts below the value plus half of those at it) and tie shares t (the share of
/// accounts at exactly the value): the chance that a random account sits as close to a is
/// about 2 |u_a - u_b|, and exactly at a's value t_a, so a shared SDK default is no evidence
/// and a shared unusual setting is. A categorical feature is evidence only when equal.
RINGSCAN_HD inline float feature_surprise(float ua, float ub, float ta, bool categorical) {
  if (ua == ub) return float(-portable_log(double(ta > 0 ? ta : 1.0f)));
  if (categorical) return 0.0f;
  const double p = 2.0 * fabs(double(ua) - double(ub));
  return p >= 1.0 ? 0.0f : float(-portable_log(p));
}

/// The same for two groups of accounts (clusters), from each group's median rank m, the tie
/// share t at it and the precision d of the median (the spread of the members' ranks over the
/// square root of their number; 0 for one account): two groups run by one operator with one
/// scripted client have medians closer than their spread says two independent groups would,
/// while groups of varied clients both sit near the population's median and the floor of
/// their imprecision keeps that from counting.
RINGSCAN_HD inline float group_feature_surprise(float mu, float tu, float du, float mv, float dv, bool categorical) {
  if (categorical) return mu == mv ? float(-portable_log(double(tu > 0 ? tu : 1.0f))) : 0.0f;
  const double floor = 2.0 * (double(du) + double(dv));
  double p = mu == mv ? double(tu) : 2.0 * fabs(double(mu) - double(mv));
  p = p > floor ? p : floor;
  return p >= 1.0 ? 0.0f : float(-portable_log(p > 1e-300 ? p : 1e-300));
}

/// The weighted sum of the features' surprises (weights learnt from the file, zero for a
/// feature that does not bring coordinated accounts closer than random pairs).
RINGSCAN_HD inline float behaviour_statistic(const float* rank_a, const float* rank_b, const float* tie_a,
                                             const float* weight, const uint8_t* categorical, int64_t dims) {
  double sum = 0;
  for (int64_t f = 0; f < dims; ++f) {
    if (!(weight[f] > 0)) continue;
    sum += double(weight[f]) * feature_surprise(rank_a[f], rank_b[f], tie_a[f], categorical[f] != 0);
  }
  return float(sum);
}

// ---------------------------------------------------------------------------------------
// Fusion

/// Evidence of an edge in nats: the signals' surprises summed and judged against a gamma of
/// shape `signals` (the sum of that many null surprises, each exponential), less `penalty`
/// (what the search that proposed the pair had already selected for). One overwhelming
/// signal can make an edge; several weak ones can; a coincidence in one of many cannot.
RINGSCAN_HD inline float edge_evidence(float prompts, float synchrony, float behaviour, float infrastructure,
                                       int signals, float penalty) {
  const double sum = double(prompts) + double(synchrony) + double(behaviour) + double(infrastructure);
  const double e = double(surprise_of(log_gamma_tail(double(signals > 0 ? signals : 1), sum))) - penalty;
  return float(e > 0 ? e : 0.0);
}

/// What a pair of units (clusters, or accounts outside them) of `size_u` and `size_v`
/// accounts that the account index linked pays for having been picked: the index proposes
/// about 2k of the A accounts to each account, so a random pair of accounts is linked with
/// chance 2k / A (`account_penalty` = ln(A / 2k)), and a random pair of units, through any of
/// its size_u x size_v pairs of members, with chance about size_u size_v 2k / A.
RINGSCAN_HD inline float unit_pair_index_penalty(float account_penalty, int64_t size_u, int64_t size_v) {
  const double pairs = double(size_u > 1 ? size_u : 1) * double(size_v > 1 ? size_v : 1);
  const double p = double(account_penalty) - portable_log(pairs);
  return float(p > 0 ? p : 0.0);
}

/// The same without infrastructure evidence.
RINGSCAN_HD inline float edge_evidence(float prompts, float synchrony, float behaviour, int signals, float penalty) {
  return edge_evidence(prompts, synchrony, behaviour, 0.0f, signals, penalty);
}


}  // namespace ringscan
