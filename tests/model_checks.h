// Checks shared by the suites that run whole models through `tpusim run --check`.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "test_util.h"

namespace tpusim::test {

// The run succeeded, and its checks found the simulated outputs bit-exact:
// "check: all N kernels match the reference ... (M bit-exact)" needs M == N, and every other
// check line (one per output) must say bit-exact.
inline void require_bit_exact(const CommandResult& r) {
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  // (Read without <regex>, whose GCC 12 headers warn under the sanitizers.)
  size_t checks = 0;
  for (size_t at = r.out.find("check: "); at != std::string::npos; at = r.out.find("check: ", at + 1)) {
    std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    INFO(line);
    const std::string all = "check: all ";
    const size_t exact = line.rfind(" bit-exact)"), open = line.rfind('(');
    if (line.starts_with(all) && line.find(" kernels match ") != std::string::npos && exact != std::string::npos &&
        open != std::string::npos) {
      const std::string kernels = line.substr(all.size(), line.find(' ', all.size()) - all.size());
      CHECK(kernels == line.substr(open + 1, exact - open - 1));
    } else {
      CHECK(line.find("bit-exact") != std::string::npos);
      ++checks;
    }
  }
  CHECK(checks >= 1);
}

}  // namespace tpusim::test
