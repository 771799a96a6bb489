// Frames of the PE-level array, one per simulated cycle: what the teaching views draw
// (`tpusim explain`, docs/teaching.md). Each frame is the array's own registers at the end of
// the cycle (SystolicArray::snapshot) with what the units were doing and the counters so far;
// nothing in a frame is computed apart from the simulator.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ir/program.h"
#include "simulator/arch.h"
#include "simulator/simulator.h"
#include "simulator/systolic_array.h"

namespace tpusim {

// What one unit did in the cycle, in words.
struct UnitState {
  std::string state;        // "idle", "busy", "computing", "shifting weights", "draining", "waiting on dma", ...
  std::string instruction;  // "mxu.matmul (line 14)", or "" when idle
  std::string label;
};

struct ArrayFrame {
  int64_t cycle = 0;
  ArraySnapshot array;
  // Stationary mode: the bank the PEs' view shows where no operand says (the bank of the newest
  // operand, else of the tile loaded last).
  int bank_in_use = 0;
  std::array<UnitState, kUnitCount> units;  // indexed by Unit
  int64_t vector = -1, vectors = 0;         // the vector entering the array (its matmul's index)
  int64_t macs = 0;                         // useful products so far, this cycle's included
  Traffic traffic;                          // bytes counted so far
  int busy_pes() const { return array.useful_pes(); }                           // useful products
  // Stationary mode: the weight bank a PE's view shows (its operand's, else the bank in use).
  int bank_shown(const PeRegisters& pe) const { return pe.moving_valid ? pe.moving_bank : bank_in_use; }
  // Bytes read from and written to the on-chip buffers so far, all buffers together.
  int64_t buffer_bytes_read() const;
  int64_t buffer_bytes_written() const;
  int padding_pes() const { return array.active_pes() - array.useful_pes(); }  // an edge tile's padding
};

// The views draw arrays of at most kMaxDrawnSide x kMaxDrawnSide PEs, and keep at most
// kMaxDrawnPeCycles PE states (frames x PEs): a bound on their memory.
constexpr int64_t kMaxDrawnSide = 64, kMaxDrawnPeCycles = int64_t{1} << 22;
// Throws an Error naming --arch when `arch`'s array is larger than the views draw.
void require_drawable_array(const ArchConfig& arch);

// Records the frames of cycles [first, last] of a run at PE fidelity: pass observer() as
// SimulationOptions::observe. At most `max_frames` are kept, and at most kMaxDrawnPeCycles PE
// states (an Error past either, naming --cycles).
class FrameRecorder {
 public:
  FrameRecorder(int64_t first, int64_t last, int64_t max_frames);
  std::function<void(const CycleObservation&)> observer();
  const std::vector<ArrayFrame>& frames() const { return frames_; }
  std::vector<ArrayFrame> take() { return std::move(frames_); }

 private:
  void observe(const CycleObservation& seen);

  int64_t first_, last_, max_frames_;
  int64_t macs_ = 0;
  int bank_in_use_ = 0;
  int shifting_bank_ = -1;  // the bank a tile was shifting into in the last cycle
  std::vector<ArrayFrame> frames_;
};

// The words for a unit's cycle ("computing", "waiting on dma", ...).
UnitState describe_unit_cycle(const UnitCycle& cycle);

}  // namespace tpusim
