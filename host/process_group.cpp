#include "ringscan/process_group.hpp"

#include <new>

#include "ringscan/error.hpp"

namespace ringscan {
namespace {

/// Error kinds carried across ranks.
enum class Kind : char { Input = 'I', Budget = 'B', Memory = 'M', Device = 'D', Other = 'O' };

Kind kind_of(const std::exception_ptr& failure, std::string& message) {
  try {
    std::rethrow_exception(failure);
  } catch (const BudgetExceeded& e) {
    message = e.what();
    return Kind::Budget;
  } catch (const InvalidInput& e) {
    message = e.what();
    return Kind::Input;
  } catch (const OutOfMemory& e) {
    message = e.what();
    return Kind::Memory;
  } catch (const std::bad_alloc&) {
    message = "out of memory (std::bad_alloc)";
    return Kind::Memory;
  } catch (const DeviceError& e) {
    message = e.what();
    return Kind::Device;
  } catch (const std::exception& e) {
    message = e.what();
    return Kind::Other;
  } catch (...) {
    message = "unknown failure";
    return Kind::Other;
  }
}

[[noreturn]] void throw_kind(Kind kind, const std::string& message) {
  switch (kind) {
    case Kind::Budget: throw BudgetExceeded(message);
    case Kind::Input: throw InvalidInput(message);
    case Kind::Memory: throw OutOfMemory(message);
    case Kind::Device: throw DeviceError(message);
    default: throw InternalError(message);
  }
}

}  // namespace

Bytes failure_status(const std::exception_ptr& failure) {
  Bytes status;
  if (failure) {
    std::string message;
    status.push_back(char(kind_of(failure, message)));
    status.insert(status.end(), message.begin(), message.end());
  }
  return status;
}

void throw_failure_status(const Bytes& status, const std::string& prefix) {
  if (status.empty()) throw InternalError(prefix + "a failure without its status");
  throw_kind(Kind(status[0]), prefix + std::string(status.begin() + 1, status.end()));
}

void agree(ProcessGroup& group, std::exception_ptr failure) {
  const Bytes status = failure_status(failure);
  group.wait_for_all();
  const std::vector<Bytes> all = group.all_gather(status);
  for (int r = 0; r < int(all.size()); ++r)
    if (!all[r].empty()) {
      group.stop_together();
      throw_failure_status(all[r], "rank " + std::to_string(r) + ": ");
    }
}

}  // namespace ringscan
