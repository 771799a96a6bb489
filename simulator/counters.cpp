#include "simulator/counters.h"

#include "ir/diagnostics.h"

namespace tpusim {

void CounterRegistry::add(std::string name, std::string unit, std::string description, int64_t value) {
  TPUSIM_CHECK(!contains(name), "counter registered twice: " + name);
  counters_.push_back({std::move(name), std::move(unit), std::move(description), value});
}

bool CounterRegistry::contains(const std::string& name) const {
  for (const auto& c : counters_) {
    if (c.name == name) return true;
  }
  return false;
}

int64_t CounterRegistry::value(const std::string& name) const {
  for (const auto& c : counters_) {
    if (c.name == name) return c.value;
  }
  internal_error(__FILE__, __LINE__, "no counter named " + name);
}

}  // namespace tpusim
