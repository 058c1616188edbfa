// Small helpers over the HDF5 C API shared by the reader and the writer: an owning hid_t,
// error-stack handling, the float16 file type and its fast conversions.
#pragma once
#include <hdf5.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace ringscan::h5 {

/// Owns one HDF5 identifier and closes it with the matching H5?close function.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);

  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) {
    other.id_ = H5I_INVALID_HID;
  }
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      close_ = other.close_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  /// Closes now; returns the close status (0 when there was nothing to close).
  herr_t reset() {
    herr_t status = 0;
    if (id_ >= 0 && close_ != nullptr) status = close_(id_);
    id_ = H5I_INVALID_HID;
    return status;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

/// Turns off HDF5's printing of its error stack for the scope and restores it afterwards
/// (errors become exceptions with context instead).
class QuietErrors {
 public:
  QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

/// The most specific message on HDF5's current error stack ("" when it is empty).
inline std::string last_error() {
  std::string text;
  auto take_innermost = [](unsigned n, const H5E_error2_t* err, void* out) -> herr_t {
    // Walking upward, entry 0 is where HDF5 first detected the problem.
    if (n == 0 && err->desc != nullptr) *static_cast<std::string*>(out) = err->desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, &text);
  if (text.empty()) return "HDF5 call failed";
  // The file driver's failures ("file write failed: time = ..., filename = ..., errno = 28,
  // error message = 'No space left on device', buf = ...") come down to their first words
  // and the system's message.
  const auto message = text.find("error message = '");
  const auto what = text.find(": time = ");
  if (message != std::string::npos && what != std::string::npos) {
    const auto start = message + 17, end = text.find('\'', start);
    if (end != std::string::npos) return text.substr(0, what) + ": " + text.substr(start, end - start);
  }
  return text;
}

/// Throws E("<context>: <HDF5 reason>") when an HDF5 call returned a negative status.
template <class E, class T>
T check(T status, const std::string& context) {
  if (status < 0) throw E(context + ": " + last_error());
  return status;
}

/// Element type "float16" as stored in files (IEEE 754 binary16, little endian; the layout
/// numpy/h5py use).
inline Handle make_half_type() {
  Handle t(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
  if (!t.valid() || H5Tset_fields(t.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(t.get(), 2) < 0 ||
      H5Tset_precision(t.get(), 16) < 0 || H5Tset_ebias(t.get(), 15) < 0)
    return Handle();
  return t;
}

/// Converts IEEE binary16 bits to float (exact).
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = float(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RINGSCAN_HAVE_F16C_PATH 1
/// half_to_float over n values by the F16C instruction, 8 at a time (same results: both are
/// exact). Compiled for F16C whatever the build's target; called only where the CPU has it.
__attribute__((target("avx,f16c"))) inline void half_to_float_f16c(const uint16_t* in, float* out,
                                                                    int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) out[i] = half_to_float(in[i]);
}

/// Whether this CPU converts float16 by instruction. AVX2 stands for F16C, which not every
/// compiler's __builtin_cpu_supports knows: every CPU with AVX2 has F16C.
inline bool cpu_has_f16c() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

/// half_to_float over n values: by instruction where the CPU has one (float16 embeddings are
/// the largest thing ringscan reads), else one by one.
inline void half_to_float_n(const uint16_t* in, float* out, int64_t n) {
#ifdef RINGSCAN_HAVE_F16C_PATH
  if (cpu_has_f16c()) return half_to_float_f16c(in, out, n);
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = half_to_float(in[i]);
}

/// Converts float to IEEE binary16 bits, rounding to nearest even; overflow gives infinity.
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const auto sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t magnitude = x & 0x7fffffffu;
  if (magnitude >= 0x7f800000u)
    return uint16_t(sign | 0x7c00u | (magnitude > 0x7f800000u ? 0x200u : 0u));
  if (magnitude >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520 rounds past 65504
  if (magnitude < 0x38800000u) {
    // Below the smallest normal half (2^-14): scaling by 2^24 is exact, rint rounds to even.
    float a;
    std::memcpy(&a, &magnitude, sizeof a);
    return uint16_t(sign | uint16_t(std::nearbyint(a * 16777216.0f)));
  }
  uint32_t r = magnitude - (112u << 23);
  r += 0xfffu + ((r >> 13) & 1u);
  return uint16_t(sign | uint16_t(r >> 13));
}

/// Records whether HDF5 met a value out of the destination type's range during a read or write.
struct RangeGuard {
  bool out_of_range = false;
};

/// A dataset transfer property list that makes H5Dread/H5Dwrite fail (instead of clipping
/// silently) when a converted value does not fit the destination type; `guard` says why.
inline Handle make_range_checked_transfer(RangeGuard* guard) {
  Handle plist(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  auto on_exception = [](H5T_conv_except_t kind, hid_t, hid_t, void*, void*,
                         void* user) -> H5T_conv_ret_t {
    if (kind == H5T_CONV_EXCEPT_RANGE_HI || kind == H5T_CONV_EXCEPT_RANGE_LOW) {
      static_cast<RangeGuard*>(user)->out_of_range = true;
      return H5T_CONV_ABORT;
    }
    return H5T_CONV_UNHANDLED;
  };
  if (!plist.valid() || H5Pset_type_conv_cb(plist.get(), on_exception, guard) < 0) return Handle();
  return plist;
}

}  // namespace ringscan::h5
