// Progress on stderr while tpusim works, when stderr is a terminal: the compiler's passes, then
// the simulation's instructions, cycle, layer and an estimate of the time left. Nothing at all
// when stderr is not a terminal or with -q; the line is erased when the work is done.
#pragma once

#include <chrono>
#include <string>

#include "simulator/simulator.h"

namespace tpusim::cli {

class Progress {
 public:
  explicit Progress(bool quiet);
  ~Progress();

  bool enabled() const { return enabled_; }
  void pass(const std::string& name);
  void status(const std::string& text);  // a phase with no steps to count
  void simulation(const SimulationProgress& p);
  void clear();

 private:
  void draw(const std::string& line, bool force);

  bool enabled_ = false;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace tpusim::cli
