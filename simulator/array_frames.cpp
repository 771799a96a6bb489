// Frames of the PE-level array; array_frames.h says what a frame holds.
#include "simulator/array_frames.h"

#include <algorithm>

#include <fmt/format.h>

#include "ir/diagnostics.h"

namespace tpusim {

UnitState describe_unit_cycle(const UnitCycle& cycle) {
  UnitState out;
  switch (cycle.cause) {
    case CycleCause::Busy:
      if (!cycle.activity) {
        out.state = "busy";
      } else {
        switch (*cycle.activity) {
          case MxuActivity::Computing: out.state = "computing"; break;
          case MxuActivity::ShiftingWeights: out.state = "shifting weights"; break;
          case MxuActivity::Draining: out.state = "draining"; break;
        }
      }
      break;
    case CycleCause::Idle: out.state = "idle"; break;
    default: {
      std::string name(cycle_cause_name(cycle.cause));
      for (char& ch : name) ch = ch == '_' ? ' ' : ch;
      out.state = name;
    }
  }
  if (cycle.instruction != nullptr && cycle.cause != CycleCause::Idle) {
    out.instruction = opcode_info(cycle.instruction->opcode).mnemonic;
    if (cycle.instruction->location.line > 0) out.instruction += fmt::format(" (line {})", cycle.instruction->location.line);
    out.label = std::string(cycle.label);
  }
  return out;
}

void require_drawable_array(const ArchConfig& arch) {
  if (arch.mxu.rows <= kMaxDrawnSide && arch.mxu.cols <= kMaxDrawnSide) return;
  throw Error({"--arch", 0, 0, ""},
              fmt::format("explain draws arrays of up to {0} x {0} PEs, and {1} is {2} x {3}; use a smaller one (e.g. "
                          "--arch teach-4x4, or --set mxu.rows=8 --set mxu.cols=8)",
                          kMaxDrawnSide, arch.name, arch.mxu.rows, arch.mxu.cols));
}

int64_t ArrayFrame::buffer_bytes_read() const {
  int64_t bytes = 0;
  for (int64_t b : traffic.buffer_read) bytes += b;
  return bytes;
}

int64_t ArrayFrame::buffer_bytes_written() const {
  int64_t bytes = 0;
  for (int64_t b : traffic.buffer_written) bytes += b;
  return bytes;
}

FrameRecorder::FrameRecorder(int64_t first, int64_t last, int64_t max_frames)
    : first_(first), last_(last), max_frames_(max_frames) {}

std::function<void(const CycleObservation&)> FrameRecorder::observer() {
  return [this](const CycleObservation& seen) { observe(seen); };
}

void FrameRecorder::observe(const CycleObservation& seen) {
  TPUSIM_CHECK(seen.array != nullptr, "FrameRecorder: frames need the PE-level array (--fidelity pe)");
  ArraySnapshot snapshot = seen.array->snapshot();
  // A cycle in which the array was not clocked (it was empty and nothing entered) changes no
  // register, and nothing leaves it.
  if (!seen.array_clocked) {
    std::fill(snapshot.bottom.begin(), snapshot.bottom.end(), std::nullopt);
    for (PeRegisters& pe : snapshot.pes) pe.active = false;
  }
  macs_ += snapshot.useful_pes();
  if (snapshot.mode == SystolicMode::Stationary) {
    // The bank in use: the newest operand's (the first valid one in row-major order entered
    // last), else the bank whose tile finished shifting in last.
    bool operand = false;
    for (const PeRegisters& pe : snapshot.pes) {
      if (pe.moving_valid) {
        bank_in_use_ = pe.moving_bank;
        operand = true;
        break;
      }
    }
    if (!operand && shifting_bank_ >= 0 && snapshot.shifting_bank < 0) bank_in_use_ = shifting_bank_;
    if (!operand && snapshot.shifting_bank >= 0 && snapshot.weight_rows_queued[0] + snapshot.weight_rows_queued[1] == 0) {
      bank_in_use_ = snapshot.shifting_bank;  // its last row shifts in now
    }
    shifting_bank_ = snapshot.shifting_bank;
  }
  if (seen.cycle < first_ || seen.cycle > last_) return;
  const int64_t pes = int64_t{snapshot.rows} * snapshot.cols;
  if (static_cast<int64_t>(frames_.size()) >= std::min(max_frames_, kMaxDrawnPeCycles / pes)) {
    throw Error({"explain", 0, 0, ""},
                fmt::format("more than {} cycles to draw; choose a range with --cycles A:B",
                            std::min(max_frames_, kMaxDrawnPeCycles / pes)));
  }
  ArrayFrame frame;
  frame.cycle = seen.cycle;
  frame.array = std::move(snapshot);
  frame.bank_in_use = bank_in_use_;
  for (int u = 0; u < kUnitCount; ++u) frame.units[static_cast<size_t>(u)] = describe_unit_cycle(seen.units[static_cast<size_t>(u)]);
  frame.vector = seen.vector;
  frame.vectors = seen.vectors;
  frame.macs = macs_;
  frame.traffic = seen.traffic;
  frames_.push_back(std::move(frame));
}

}  // namespace tpusim
