// Tail probabilities of the Poisson and gamma distributions in log space, from
// portable_exp/portable_log only, so that the host and the device compute the same bits.
// Evidence is measured in nats of surprise, -ln p, and p can be far below the smallest
// double (two accounts sending the same thirty rare prompts): every function here returns
// ln p directly, never p.
#pragma once
#include <cmath>

#include "host_device.hpp"
#include "portable_math.hpp"

namespace ringscan {

/// ln Gamma(x) for x > 0 (Lanczos, g = 7, nine terms: relative error about 1e-15).
RINGSCAN_HD inline double portable_lgamma(double x) {
  if (!(x > 0)) return NAN;
  // Gamma(x + 1) = x Gamma(x): the approximation is used from 0.5 up.
  if (x < 0.5) return portable_lgamma(x + 1.0) - portable_log(x);
  const double c[9] = {0.99999999999980993,  676.5203681218851,     -1259.1392167224028,
                       771.32342877765313,   -176.61502916214059,   12.507343278686905,
                       -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7};
  const double z = x - 1.0;
  double s = c[0];
  for (int i = 1; i < 9; ++i) s += c[i] / (z + double(i));
  const double t = z + 7.5;
  // ln(sqrt(2 pi)) = 0.91893853320467274
  return 0.91893853320467274 + (z + 0.5) * portable_log(t) - t + portable_log(s);
}

/// ln(1 + x) for x > -1, accurate near 0 (where portable_log(1 + x) loses digits).
RINGSCAN_HD inline double portable_log1p(double x) {
  if (fabs(x) > 1e-4) return portable_log(1.0 + x);
  return x * (1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x)));
}

namespace detail {

/// ln of the regularised lower incomplete gamma P(a, x) by its series (x < a + 1).
RINGSCAN_HD inline double log_lower_gamma_series(double a, double x) {
  double term = 1.0, sum = 1.0;
  for (int n = 1; n < 1000; ++n) {
    term *= x / (a + double(n));
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return -x + a * portable_log(x) - portable_lgamma(a + 1.0) + portable_log(sum);
}

/// ln of the regularised upper incomplete gamma Q(a, x) by its continued fraction
/// (modified Lentz; x >= a + 1).
RINGSCAN_HD inline double log_upper_gamma_fraction(double a, double x) {
  constexpr double kTiny = 1e-300;
  double b = x + 1.0 - a, c = 1.0 / kTiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -double(i) * (double(i) - a);
    b += 2.0;
    d = an * d + b;
    if (fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (fabs(delta - 1.0) < 1e-16) break;
  }
  return -x + a * portable_log(x) - portable_lgamma(a) + portable_log(h);
}

}  // namespace detail

/// ln P(G >= x) for G ~ Gamma(shape a > 0, scale 1): 0 for x <= 0.
RINGSCAN_HD inline double log_gamma_tail(double a, double x) {
  if (!(x > 0)) return 0.0;
  if (x < a + 1.0) {
    const double lower = detail::log_lower_gamma_series(a, x);
    return portable_log1p(-portable_exp(lower));
  }
  return detail::log_upper_gamma_fraction(a, x);
}

/// ln P(X >= k) for X ~ Poisson(mu), mu > 0: 0 for k <= 0. P(X >= k) = P(k, mu), the
/// regularised lower incomplete gamma.
RINGSCAN_HD inline double log_poisson_tail(double k, double mu) {
  if (!(k > 0)) return 0.0;
  if (!(mu > 0)) return -INFINITY;
  if (mu < k + 1.0) return detail::log_lower_gamma_series(k, mu);
  const double upper = detail::log_upper_gamma_fraction(k, mu);
  return portable_log1p(-portable_exp(upper));
}

/// Surprise in nats, -ln p, of a p-value given as ln p; never negative, capped so that
/// float sums of many signals stay finite.
constexpr double kMaxSurprise = 1000.0;
RINGSCAN_HD inline float surprise_of(double log_p) {
  const double s = -log_p;
  return float(s < 0 ? 0.0 : (s > kMaxSurprise ? kMaxSurprise : s));
}

}  // namespace ringscan
