// Checks shared by the suites that run whole models through `tpusim run --check`.
#pragma once

#include <catch2/catch.hpp>

#include <regex>
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
  static const std::regex kernels_line(R"(check: all (\d+) kernels match .*\((\d+) bit-exact\))");
  size_t checks = 0;
  for (size_t at = r.out.find("check: "); at != std::string::npos; at = r.out.find("check: ", at + 1)) {
    std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    INFO(line);
    std::smatch m;
    if (std::regex_search(line, m, kernels_line)) {
      CHECK(m[1].str() == m[2].str());
    } else {
      CHECK(line.find("bit-exact") != std::string::npos);
      ++checks;
    }
  }
  CHECK(checks >= 1);
}

}  // namespace tpusim::test
