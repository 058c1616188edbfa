// exp and log from +, -, *, / and exact operations only (rint, frexp, ldexp), so that the
// host and the device compute the same bits: CUDA's expf is within 2 ulp and glibc's within
// 1, and one ulp of an edge's evidence at the edge threshold decides whether the edge exists.
// Needs the device code built without multiply-add contraction (CMakeLists: --fmad=false),
// as the host code is (-ffp-contract=off).
#pragma once
#include <cmath>

#include "host_device.hpp"

namespace ringscan {

/// e^x in double precision (relative error about 1e-16).
RINGSCAN_HD inline double portable_exp(double x) {
  if (x != x) return x;
  if (x < -745.2) return 0.0;
  if (x > 709.7) return INFINITY;
  // x = k ln2 + r, |r| <= ln2 / 2; ln2 split so that k * kLn2High is exact.
  constexpr double kLn2High = 6.93147180369123816490e-01, kLn2Low = 1.90821492927058770002e-10;
  const double k = rint(x * 1.4426950408889634);
  const double r = (x - k * kLn2High) - k * kLn2Low;
  // Taylor series to r^13 (truncation below 1e-17 for |r| <= 0.35), by Horner's rule.
  double p = 1.6059043836821613e-10;
  p = p * r + 2.08767569878681e-09;
  p = p * r + 2.505210838544172e-08;
  p = p * r + 2.755731922398589e-07;
  p = p * r + 2.7557319223985893e-06;
  p = p * r + 2.48015873015873e-05;
  p = p * r + 0.0001984126984126984;
  p = p * r + 0.001388888888888889;
  p = p * r + 0.008333333333333333;
  p = p * r + 0.041666666666666664;
  p = p * r + 0.16666666666666666;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  return ldexp(p, int(k));
}

/// ln x in double precision (relative error about 1e-16); -inf at 0, NaN below.
RINGSCAN_HD inline double portable_log(double x) {
  if (x != x || x < 0) return NAN;
  if (x == 0) return -INFINITY;
  if (x == INFINITY) return x;
  // x = m 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m - 1) / (m + 1).
  int e = 0;
  double m = frexp(x, &e);
  if (m < 0.7071067811865476) {
    m *= 2;
    --e;
  }
  const double s = (m - 1) / (m + 1), s2 = s * s;  // s2 <= 0.0295
  double p = 0.043478260869565216;  // 1/23: truncation below 1e-17
  p = p * s2 + 0.047619047619047616;
  p = p * s2 + 0.05263157894736842;
  p = p * s2 + 0.058823529411764705;
  p = p * s2 + 0.06666666666666667;
  p = p * s2 + 0.07692307692307693;
  p = p * s2 + 0.09090909090909091;
  p = p * s2 + 0.1111111111111111;
  p = p * s2 + 0.14285714285714285;
  p = p * s2 + 0.2;
  p = p * s2 + 0.3333333333333333;
  p = p * s2 + 1.0;
  constexpr double kLn2High = 6.93147180369123816490e-01, kLn2Low = 1.90821492927058770002e-10;
  const double k = double(e);
  return k * kLn2High + (k * kLn2Low + 2 * s * p);
}

}  // namespace ringscan
