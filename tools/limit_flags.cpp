// `--max-memory`, `--max-cycles`, `--max-instructions` and `--seed`: flags whose values are
// numbers a user types, checked here so that a mistake is an error naming the flag, not a
// wrapped or clamped number.
#include <charconv>

#include <fmt/format.h>

#include "simulator/arch.h"
#include "tools/commands.h"

namespace tpusim::cli {

namespace {

// A decimal integer in [minimum, maximum], or an error naming `flag`.
uint64_t read_flag_integer(const std::string& flag, const std::string& text, uint64_t minimum, uint64_t maximum) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || stop != end || error != std::errc() || value < minimum || value > maximum) {
    throw Error(fmt::format("{}: expected an integer from {} to {}, got '{}'", flag, minimum, maximum, text));
  }
  return value;
}

}  // namespace

void add_limit_flags(CLI::App* cmd, LimitFlags& flags, bool simulates) {
  cmd->add_option("--max-memory", flags.max_memory,
                  "Refuse a run whose tensors need more host memory than this, e.g. 4GiB (default: half of this "
                  "machine's memory)");
  if (!simulates) return;
  cmd->add_option("--max-cycles", flags.max_cycles, "Stop a simulation that reaches this many cycles (default 10^11)");
  cmd->add_option("--max-instructions", flags.max_instructions,
                  "Refuse a program that executes more instructions than this, each loop iteration counted "
                  "(default 10^9)");
}

ResourceLimits resource_limits(const LimitFlags& flags) {
  ResourceLimits limits;
  if (!flags.max_memory.empty()) {
    limits.max_memory_bytes = parse_byte_size(flags.max_memory, SourceLocation{"--max-memory", 0, 0, ""});
    if (limits.max_memory_bytes < 1) throw Error(fmt::format("--max-memory: must be at least 1 byte, got '{}'", flags.max_memory));
  }
  constexpr uint64_t kLargest = static_cast<uint64_t>(INT64_MAX);
  if (!flags.max_cycles.empty()) {
    limits.max_cycles = static_cast<int64_t>(read_flag_integer("--max-cycles", flags.max_cycles, 1, kLargest));
  }
  if (!flags.max_instructions.empty()) {
    limits.max_instructions =
        static_cast<int64_t>(read_flag_integer("--max-instructions", flags.max_instructions, 1, kLargest));
  }
  return limits;
}

uint64_t parse_seed(const std::string& text) { return read_flag_integer("--seed", text, 0, UINT64_MAX); }

}  // namespace tpusim::cli
