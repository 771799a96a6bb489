// Fuzzes the program text reader: parse_program, then verify_program against every preset's
// target limits (array shape, buffer sizes, dataflow). A program that parses must print to
// text that parses and prints to the same text (the round trip of docs/program-format.md).
#include <vector>

#include "fuzz/fuzz_support.h"
#include "ir/program.h"
#include "simulator/arch.h"

using namespace tpusim;

namespace {

const std::vector<TargetLimits>& preset_limits() {
  static const std::vector<TargetLimits> limits = [] {
    std::vector<TargetLimits> all;
    for (const std::string& name : arch_preset_names()) all.push_back(target_limits(load_arch(name)));
    return all;
  }();
  return limits;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  preset_limits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text = fuzz::as_text(data, size);
  auto program = fuzz::accepted([&] { return parse_program(text, "fuzz.tpu"); });
  if (!program) return 0;
  for (const TargetLimits& limits : preset_limits()) {
    std::vector<Error> problems = verify_program(*program, limits);
    (void)problems;
  }
  std::string printed = print_program(*program);
  std::string reprinted = print_program(parse_program(printed, "fuzz-printed.tpu"));
  if (reprinted != printed) {
    fuzz::property_failed("print(parse(print(p))) differs from print(p)", printed, reprinted);
  }
  return 0;
}
