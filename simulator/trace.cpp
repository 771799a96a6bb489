#include "simulator/trace.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace tpusim {
namespace {

struct Slice {
  int64_t begin = 0, end = 0;  // cycles, inclusive
  std::string name;
  nlohmann::ordered_json args;
};

// Puts slices on as few tracks as keep them apart: a unit with several instructions in flight
// (pipelined matmuls, DMA channels) gets one track per instruction it overlaps, so every track's
// slices follow one another and nest trivially.
std::vector<std::vector<Slice>> lanes_of(std::vector<Slice> slices) {
  std::stable_sort(slices.begin(), slices.end(), [](const Slice& a, const Slice& b) { return a.begin < b.begin; });
  std::vector<std::vector<Slice>> lanes;
  for (Slice& s : slices) {
    auto lane = std::find_if(lanes.begin(), lanes.end(), [&](const auto& l) { return l.back().end < s.begin; });
    if (lane == lanes.end()) {
      lanes.emplace_back();
      lane = lanes.end() - 1;
    }
    lane->push_back(std::move(s));
  }
  return lanes;
}

}  // namespace

std::string trace_json(const Program& program, const SimulationResult& result) {
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  int next_tid = 0;
  auto add_track = [&](const std::string& name, std::vector<std::vector<Slice>> lanes) {
    for (size_t l = 0; l < lanes.size(); ++l) {
      const int tid = next_tid++;
      events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", tid},
                        {"args", {{"name", l == 0 ? name : fmt::format("{} {}", name, l + 1)}}}});
      events.push_back({{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", 1}, {"tid", tid},
                        {"args", {{"sort_index", tid}}}});
      for (Slice& s : lanes[l]) {
        events.push_back({{"name", s.name}, {"ph", "X"}, {"pid", 1}, {"tid", tid}, {"ts", s.begin},
                          {"dur", s.end - s.begin + 1}, {"args", s.args}});
      }
    }
  };

  // One slice per layer, from its first issue to its last completion.
  std::vector<Slice> layers;
  for (size_t i = 0; i < result.labels.size(); ++i) {
    const LabelStats& s = result.per_label[i];
    if (s.instructions == 0 || s.first_cycle < 0) continue;
    const std::string label = result.labels[i].empty() ? "(unlabelled)" : result.labels[i];
    layers.push_back({s.first_cycle, s.last_cycle, label, {{"instructions", s.instructions}}});
  }
  add_track("layers", lanes_of(std::move(layers)));

  // One slice per instruction instance, named by its op (label) and tile (loop indices).
  std::array<std::vector<Slice>, kUnitCount> units;
  for (const auto& e : result.trace) {
    const Instruction& in = *e.instruction;
    nlohmann::ordered_json args;
    // A compiled program's instructions have no line of their own; their label names the op.
    if (in.location.line > 0) args["line"] = in.location.line;
    if (!in.label.empty()) args["label"] = in.label;
    if (!e.loop_values.empty()) args["tile"] = e.loop_values;
    std::string name = in.label.empty() ? "" : in.label + ": ";
    name += opcode_info(in.opcode).mnemonic;
    if (!e.loop_values.empty()) name += fmt::format(" [{}]", fmt::join(e.loop_values, ","));
    units[static_cast<size_t>(e.unit)].push_back({e.begin, e.end, std::move(name), std::move(args)});
  }
  for (int u = 0; u < kUnitCount; ++u) {
    add_track(std::string(unit_name(static_cast<Unit>(u))), lanes_of(std::move(units[static_cast<size_t>(u)])));
  }

  // Counter tracks, one value per bin of the activity timeline (docs/report.md).
  const ActivityTimeline& a = result.activity;
  const double width = static_cast<double>(a.bin_cycles());
  for (size_t b = 0; b < a.ub_peak().size(); ++b) {
    const int64_t ts = static_cast<int64_t>(b) * a.bin_cycles();
    events.push_back({{"name", "unified buffer bytes in flight"}, {"ph", "C"}, {"pid", 1}, {"ts", ts},
                      {"args", {{"bytes", a.ub_peak()[b]}}}});
    events.push_back({{"name", "DRAM bytes per cycle"}, {"ph", "C"}, {"pid", 1}, {"ts", ts},
                      {"args", {{"bytes_per_cycle", a.dram_bytes()[b] / width}}}});
  }

  nlohmann::ordered_json j;
  j["traceEvents"] = events;
  j["displayTimeUnit"] = "ns";
  j["otherData"] = {{"program", program.file},
                    {"time_unit", "1 us in the viewer = 1 cycle"},
                    {"counter_bin_cycles", a.bin_cycles()}};
  return j.dump(1) + "\n";
}

}  // namespace tpusim
