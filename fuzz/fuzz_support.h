// What every fuzz target shares: bad input must end in a tpusim::Error; anything else (an
// InternalError, another exception, a sanitizer report, a hang, runaway memory) is a finding
// and crashes the target so libFuzzer saves the input. See docs/fuzzing.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "ir/diagnostics.h"

namespace tpusim::fuzz {

inline std::string as_text(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Runs `read` on the fuzzer's input: its result when the input is accepted, nullopt when it
// is rejected with a tpusim::Error (the expected answer to bad input). Any other exception
// propagates out of LLVMFuzzerTestOneInput, which terminates the process: a finding.
template <typename Read>
auto accepted(Read&& read) -> std::optional<decltype(read())> {
  try {
    return std::forward<Read>(read)();
  } catch (const Error&) {
    return std::nullopt;
  }
}

// A property that failed (e.g. a round trip that changed the text): print both sides and
// abort, so libFuzzer reports a crash and saves this input.
[[noreturn]] inline void property_failed(const char* what, std::string_view expected,
                                         std::string_view actual) {
  std::fprintf(stderr, "fuzz property failed: %s\n--- expected ---\n%.*s\n--- actual ---\n%.*s\n",
               what, static_cast<int>(expected.size()), expected.data(),
               static_cast<int>(actual.size()), actual.data());
  std::abort();
}

}  // namespace tpusim::fuzz
