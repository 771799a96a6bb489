// Named counters: every figure the simulator measures is registered here with its unit and a
// description, so reports, JSON and docs list the same things. Derived figures (utilization,
// bandwidth, stall shares) are computed from these in one place, the report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tpusim {

struct Counter {
  std::string name;         // dotted, e.g. "mxu.cycles.waiting_on_dma"
  std::string unit;         // "cycles", "bytes", "MACs", "instructions"
  std::string description;  // one line
  int64_t value = 0;
};

class CounterRegistry {
 public:
  void add(std::string name, std::string unit, std::string description, int64_t value);
  const std::vector<Counter>& all() const { return counters_; }
  // The value of a registered counter; an internal error if it does not exist.
  int64_t value(const std::string& name) const;
  bool contains(const std::string& name) const;

 private:
  std::vector<Counter> counters_;
};

}  // namespace tpusim
