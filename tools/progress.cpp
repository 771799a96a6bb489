#include "tools/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace tpusim::cli {

Progress::Progress(bool quiet) : enabled_(!quiet && isatty(STDERR_FILENO) == 1) {
  start_ = last_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { clear(); }

void Progress::draw(const std::string& line, bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  // At most ten frames a second, but every first frame of a phase.
  if (!force && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  std::fputs(("\r\033[K" + line).c_str(), stderr);
  std::fflush(stderr);
  shown_ = true;
}

void Progress::clear() {
  if (!enabled_ || !shown_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  shown_ = false;
}

void Progress::pass(const std::string& name) { draw(fmt::format("compiling: {}", name), true); }

void Progress::status(const std::string& text) { draw(text, true); }

void Progress::simulation(const SimulationProgress& p) {
  if (p.instructions_issued == 0) start_ = std::chrono::steady_clock::now();
  const double fraction = p.instructions_total > 0 ? static_cast<double>(p.instructions_issued) /
                                                         static_cast<double>(p.instructions_total)
                                                   : 0;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar = std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(kWidth - filled), '.');
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string eta = "";
  if (fraction > 0.01 && fraction < 1) eta = fmt::format(", about {:.0f} s left", elapsed * (1 - fraction) / fraction);
  draw(fmt::format("simulating [{}] {:3.0f}% of {} instructions, cycle {}{}{}", bar, 100 * fraction,
                   p.instructions_total, p.cycle, p.label.empty() ? "" : ", " + std::string(p.label), eta),
       p.instructions_issued == 0);
}

}  // namespace tpusim::cli
