#include "simulator/activity.h"

#include <algorithm>

namespace tpusim {

void ActivityTimeline::reach(int64_t cycle) {
  while (cycle / bin_cycles_ >= kMaxBins) {
    // Twice as wide: bin i holds old bins 2i and 2i+1.
    const size_t old = busy_.size();
    for (size_t i = 0; i < old; i += 2) {
      std::array<int64_t, kUnitCount> sum = busy_[i];
      int64_t peak = ub_peak_[i];
      if (i + 1 < old) {
        for (int u = 0; u < kUnitCount; ++u) sum[static_cast<size_t>(u)] += busy_[i + 1][static_cast<size_t>(u)];
        peak = std::max(peak, ub_peak_[i + 1]);
      }
      const double dram = dram_bytes_[i] + (i + 1 < old ? dram_bytes_[i + 1] : 0);
      busy_[i / 2] = sum;
      ub_peak_[i / 2] = peak;
      dram_bytes_[i / 2] = dram;
    }
    busy_.resize((old + 1) / 2);
    ub_peak_.resize((old + 1) / 2);
    dram_bytes_.resize((old + 1) / 2);
    bin_cycles_ *= 2;
  }
  const size_t bins = static_cast<size_t>(cycle / bin_cycles_) + 1;
  if (busy_.size() < bins) {
    busy_.resize(bins, std::array<int64_t, kUnitCount>{});
    ub_peak_.resize(bins, 0);
    dram_bytes_.resize(bins, 0);
  }
}

void ActivityTimeline::add_busy(Unit unit, int64_t start, int64_t cycles) {
  if (cycles <= 0) return;
  const int64_t end = start + cycles;  // exclusive
  reach(end - 1);
  for (int64_t bin = start / bin_cycles_; bin * bin_cycles_ < end; ++bin) {
    const int64_t from = std::max(start, bin * bin_cycles_), to = std::min(end, (bin + 1) * bin_cycles_);
    busy_[static_cast<size_t>(bin)][static_cast<size_t>(unit)] += to - from;
  }
}

void ActivityTimeline::add_dram_bytes(int64_t begin, int64_t end, int64_t bytes) {
  if (bytes <= 0 || end < begin) return;
  reach(end);
  const double per_cycle = static_cast<double>(bytes) / static_cast<double>(end - begin + 1);
  for (int64_t bin = begin / bin_cycles_; bin * bin_cycles_ <= end; ++bin) {
    const int64_t from = std::max(begin, bin * bin_cycles_), to = std::min(end + 1, (bin + 1) * bin_cycles_);
    dram_bytes_[static_cast<size_t>(bin)] += per_cycle * static_cast<double>(to - from);
  }
}

void ActivityTimeline::set_ub_bytes(int64_t cycle, int64_t bytes) {
  reach(cycle);
  // The bytes held since the last change count in every bin up to this cycle's.
  for (int64_t bin = ub_since_ / bin_cycles_; bin <= cycle / bin_cycles_; ++bin) {
    ub_peak_[static_cast<size_t>(bin)] = std::max(ub_peak_[static_cast<size_t>(bin)], ub_bytes_);
  }
  ub_bytes_ = bytes;
  ub_since_ = cycle;
  ub_peak_[static_cast<size_t>(cycle / bin_cycles_)] = std::max(ub_peak_[static_cast<size_t>(cycle / bin_cycles_)], bytes);
}

void ActivityTimeline::finish(int64_t total_cycles) {
  if (total_cycles <= 0) return;
  set_ub_bytes(total_cycles - 1, 0);
}

}  // namespace tpusim
