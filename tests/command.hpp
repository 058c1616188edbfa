// Running a shell command from a test: its exit code and its stdout and stderr together.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace ringscan::testing {

struct CommandRun {
  int code = -1;
  std::string output;  // stdout and stderr together
};

inline CommandRun run_command(const std::string& cmd) {
  CommandRun r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace ringscan::testing
