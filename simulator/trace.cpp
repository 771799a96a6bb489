#include "simulator/trace.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tpusim {

std::string trace_json(const Program& program, const SimulationResult& result) {
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (int u = 0; u < kUnitCount; ++u) {
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", u},
                      {"args", {{"name", std::string(unit_name(static_cast<Unit>(u)))}}}});
  }
  for (const auto& e : result.trace) {
    const Instruction& in = *e.instruction;
    nlohmann::ordered_json args;
    // A compiled program's instructions have no line of their own; their label names the op.
    if (in.location.line > 0) args["line"] = in.location.line;
    if (!e.loop_values.empty()) args["loop"] = e.loop_values;
    if (!in.label.empty()) args["label"] = in.label;
    std::string name(opcode_info(in.opcode).mnemonic);
    if (!in.label.empty()) name += " " + in.label;
    events.push_back({{"name", name}, {"ph", "X"}, {"pid", 1}, {"tid", static_cast<int>(e.unit)},
                      {"ts", e.begin}, {"dur", e.end - e.begin + 1}, {"args", args}});
  }
  nlohmann::ordered_json j;
  j["traceEvents"] = events;
  j["displayTimeUnit"] = "ns";
  j["otherData"] = {{"program", program.file}, {"time_unit", "1 us in the viewer = 1 cycle"}};
  return j.dump(1) + "\n";
}

}  // namespace tpusim
