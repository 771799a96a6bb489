// Fuzzes the machine description reader: parse_arch_yaml with `--set` overrides. Lines of
// the form `#set key.path=value` are YAML comments, so they leave the document alone, and
// are also passed as overrides — one input exercises both. An accepted config must come
// back equal through arch_to_yaml -> parse_arch_yaml.
#include <sstream>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "simulator/arch.h"

using namespace tpusim;

namespace {

std::vector<std::string> overrides_in(const std::string& text) {
  constexpr std::string_view kPrefix = "#set ";
  std::vector<std::string> overrides;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(kPrefix)) overrides.push_back(line.substr(kPrefix.size()));
  }
  return overrides;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text = fuzz::as_text(data, size);
  auto arch = fuzz::accepted([&] { return parse_arch_yaml(text, "fuzz.yaml", overrides_in(text)); });
  if (!arch) return 0;
  (void)target_limits(*arch);
  (void)arch_summary(*arch);
  std::string printed = arch_to_yaml(*arch);
  ArchConfig again = parse_arch_yaml(printed, "fuzz.yaml");
  if (!(again == *arch)) {
    fuzz::property_failed("parse_arch_yaml(arch_to_yaml(a)) differs from a", printed,
                          arch_to_yaml(again));
  }
  return 0;
}
