#include "ir/resource_limits.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "ir/sizes.h"

namespace tpusim {

namespace {

// The control group's memory limit (cgroup v2, then v1), or 0 when there is none.
int64_t cgroup_memory_limit() {
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(path);
    std::string text;
    if (!(in >> text) || text == "max") continue;
    try {
      return static_cast<int64_t>(std::stoull(text));
    } catch (...) {
      continue;
    }
  }
  return 0;
}

}  // namespace

int64_t default_max_memory_bytes() {
  static const int64_t bytes = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
    int64_t physical = pages > 0 && page_size > 0 ? static_cast<int64_t>(pages) * page_size : int64_t{8} << 30;
    int64_t limited = cgroup_memory_limit();
    if (limited > 0) physical = std::min(physical, limited);
    return std::max<int64_t>(physical / 2, int64_t{64} << 20);
  }();
  return bytes;
}

void require_memory(int64_t bytes, const ResourceLimits& limits, const SourceLocation& where, std::string_view what) {
  if (bytes <= limits.max_memory_bytes) return;
  throw Error(where, fmt::format("{} would take {} of memory, more than --max-memory allows ({}); use smaller tensors, "
                                 "or raise --max-memory if this machine has the memory",
                                 what, bytes_text(bytes), bytes_text(limits.max_memory_bytes)));
}

}  // namespace tpusim
