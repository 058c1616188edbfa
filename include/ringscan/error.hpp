// ringscan's exception family and the checks that raise it.
#pragma once
#include <stdexcept>
#include <string>

namespace ringscan {

/// Base of every error ringscan throws; `what()` carries the full context.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad usage or bad input data (CLI exit code 2): names the file, the dataset and the problem.
class InvalidInput : public Error {
 public:
  using Error::Error;
};

/// A job that does not fit its memory budget (exit code 2: the user must change the job).
class BudgetExceeded : public InvalidInput {
 public:
  using InvalidInput::InvalidInput;
};

/// A broken internal invariant or a failure of the system (I/O, allocation): exit code 1.
class InternalError : public Error {
 public:
  using Error::Error;
};

/// A failed allocation (exit code 1, whether in this process or in the reader's child): the
/// machine ran short, which the job's declared sizes did not predict.
class OutOfMemory : public InternalError {
 public:
  using InternalError::InternalError;
};

/// A failed CUDA or cuBLAS call (file, line and call in the message). A sticky error (an
/// illegal address) leaves the device unusable: nothing after it can be trusted.
class DeviceError : public InternalError {
 public:
  using InternalError::InternalError;
};

namespace detail {
[[noreturn]] void throw_invalid_input(const std::string& message);
[[noreturn]] void throw_internal(const char* file, int line, const char* condition,
                                 const std::string& message);
}  // namespace detail

}  // namespace ringscan

/// Checks a condition on user input; throws ringscan::InvalidInput with the message otherwise.
#define RINGSCAN_EXPECTS(cond, message)                                            \
  do {                                                                             \
    if (!(cond)) ::ringscan::detail::throw_invalid_input(message);                 \
  } while (0)

/// Checks an internal invariant; throws ringscan::InternalError with file and line otherwise.
#define RINGSCAN_ASSERT(cond, message)                                                   \
  do {                                                                                   \
    if (!(cond)) ::ringscan::detail::throw_internal(__FILE__, __LINE__, #cond, message); \
  } while (0)
