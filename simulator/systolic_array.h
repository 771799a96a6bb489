// The PE-level systolic array: every register of an R×C grid of processing elements (PEs),
// stepped one clock at a time. This is the ground truth of tpusim's timing and values; the MXU
// unit drives it and, at PE fidelity, learns from its state when loads and matmuls are done and
// banks are free. The MXU knows buffers, instructions and addresses so that this file does not.
//
// Register semantics. X[n] is register X at the end of cycle n; PE(r,c) is row r, column c.
//
// Stationary mode (the ws and is dataflows: the same mechanism with different operands):
//   per PE: W[0], W[1] (two stationary banks), A (moving operand: value, valid, bank tag), P.
//   step(feed, feed_rows, bank) at cycle n: feed[r] (r < feed_rows) enters row r at cycle n + r
//   through a skew delay line, tagged `bank`; rows >= feed_rows get nothing valid.
//     a_in(r,0)[n] = skewed feed for row r at cycle n (or invalid)
//     a_in(r,c)[n] = A(r,c-1)[n-1]                              (value, valid, tag move right)
//     p_in(0,c)[n] = 0 (+0.0)        p_in(r,c)[n] = P(r-1,c)[n-1]       (partial sums move down)
//     A(r,c)[n]    = a_in(r,c)[n]
//     P(r,c)[n]    = a_in valid ? p_in + a_in * W[a_in.tag](r,c)[n-1] : p_in
//     V(0,c)[n]    = a_in(0,c) valid,  V(r,c)[n] = V(r-1,c)[n-1]   (P's valid bit: every vector
//                    has a row-0 element, so V marks its sums and moves down with them)
//     bottom()     = P(R-1,c)[n], bottom_valid() = V(R-1,c)[n]   (captured at the end of n)
//   so a vector injected at cycle s leaves column c at the end of cycle s + R - 1 + c holding
//   sum over r < feed_rows, in order r = 0, 1, ..., of feed[r] * W[bank](r,c), and valid.
//   shift_stationary_row(bank, row, k) during cycle n: W[bank](r,c)[n] = W[bank](r-1,c)[n-1],
//   W[bank](0,c)[n] = row[c] (c < k, else 0). W changes at the END of the cycle: products in
//   cycle n use W[n-1]. A K-row tile loads in K cycles, its rows given last row first; the
//   weight shift chain (queue_stationary_tile) does exactly that, one row per step().
//   A bank is *needed* while an operand tagged with it will multiply again: it is in the skew
//   line or in an A register left of the last column. Shifting a needed bank would change the
//   weights under that operand: step() refuses it (an internal error).
//
// Output-stationary mode (the os dataflow):
//   per PE: L (moves right, valid), T (moves down, valid), P (stays).
//   step_os(left, m, top, k) at cycle n: left[i] enters row i at n + i, top[j] enters column j
//   at n + j (both skewed);
//     L(r,c)[n] = r-th row input if c == 0 else L(r,c-1)[n-1]     (likewise T, moving down)
//     P(r,c)[n] = both inputs valid ? P(r,c)[n-1] + l_in * t_in : P(r,c)[n-1]
//     V(r)[n]   = V(r)[n-1] or a valid pair met in row r       (one valid bit per row of results)
//   so a pair injected at cycle s meets at PE(r,c) at cycle s + r + c. Only operands injected
//   in the same cycle meet, each pair exactly once: pairs_pending() counts those still to meet.
//   drain_os(): P(r,c)[n] = P(r-1,c)[n-1], P(0,c)[n] = 0, bottom() = P(R-1,c)[n-1] (the value
//   shifted out; V moves down likewise); the value of row r leaves at drain cycle R - 1 - r
//   (counting from 0).
//
// Arithmetic: int8 x int8 -> int32 wraps two's complement; bf16 x bf16 -> fp32 (the product is
// exact in fp32 for normal values), each addition rounds to nearest even. No fused
// multiply-add. An invalid operand adds nothing at all, so NaN, inf or -0 left in stale weights
// cannot reach a result, and fp32 sums start from +0.0.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "ir/dtype.h"

namespace tpusim {

// Which register structure the array has: stationary W banks with a moving operand (ws, is),
// or stationary accumulators with two moving operands (os).
enum class SystolicMode : uint8_t { Stationary, OutputStationary };

// What one PE holds at the end of a cycle, for tests and teaching views: values as doubles
// (int32 and fp32 both fit exactly; int8 and bf16 operands too).
struct PeRegisters {
  double weight[2] = {0, 0};  // stationary mode: W[0], W[1]
  double moving = 0;          // A (stationary mode) or L (os): the operand moving right
  bool moving_valid = false;
  int moving_bank = -1;       // stationary mode: the bank A multiplies (-1: not valid)
  double top = 0;             // os: T, the operand moving down
  bool top_valid = false;
  double sum = 0;             // P
  bool sum_valid = false;     // V: P holds (part of) a result that has not left the array
  bool active = false;        // the PE multiplied in this cycle (A valid; os: L and T met)
  // Stationary mode: the PE lies inside the tile queued for the bank its operand multiplies;
  // false for an edge tile's padding columns, whose products (with a zero weight) are dropped.
  bool in_tile = true;
  bool useful() const { return active && in_tile; }
};

// The whole array at the end of a cycle (SystolicArray::snapshot).
struct ArraySnapshot {
  int rows = 0, cols = 0;
  SystolicMode mode = SystolicMode::Stationary;
  int64_t cycle = 0;               // clocks stepped so far
  std::vector<PeRegisters> pes;    // row-major: pes[r * cols + c]
  // The skew lines: operands inserted that have not entered the array yet. left_waiting[r]
  // lists, for row r, the operand entering in 1, 2, ... cycles (nullopt: none in that slot);
  // top_waiting likewise per column (os).
  std::vector<std::vector<std::optional<double>>> left_waiting, top_waiting;
  std::vector<std::optional<double>> bottom;  // the values leaving the bottom in this cycle
  int weight_rows_queued[2] = {0, 0};         // stationary mode: the shift chain, per bank
  int shifting_bank = -1;                     // the bank a tile is shifting into (-1: none)
  const PeRegisters& pe(int r, int c) const { return pes[static_cast<size_t>(r) * cols + c]; }
  int active_pes() const;  // PEs that multiplied in this cycle
  int useful_pes() const;  // of those, inside their tile (PeRegisters::useful)
};

class SystolicArray {
 public:
  // `operand_type` is DType::Int8 or DType::BF16. Every register starts at zero / invalid.
  SystolicArray(int rows, int cols, DType operand_type, SystolicMode mode);
  ~SystolicArray();
  SystolicArray(SystolicArray&&) noexcept;
  SystolicArray& operator=(SystolicArray&&) noexcept;

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  DType operand_type() const { return operand_type_; }
  DType accumulator_type() const { return tpusim::accumulator_type(operand_type_); }
  SystolicMode mode() const { return mode_; }
  int64_t cycles() const { return cycles_; }  // clocks so far: step, step_os and drain_os
  int64_t pe_updates() const { return cycles_ * rows_ * cols_; }  // every PE, every clock

  // --- Stationary mode ---------------------------------------------------------------------
  // One clock. `feed` (may be null: nothing injected) holds `feed_rows` <= rows() operands as
  // little-endian element bytes of the operand type (int8, or bf16 bit patterns).
  void step(const uint8_t* feed = nullptr, int feed_rows = 0, int bank = 0);
  // Schedules this cycle's weight shift for `bank`: applied at the end of the next step(), at
  // most one per bank per cycle. `row` holds `row_cols` <= cols() operands (may be null if 0).
  void shift_stationary_row(int bank, const uint8_t* row, int row_cols);
  // The weight shift chain: queues a `tile_rows` x `tile_cols` tile (row-major operand bytes)
  // for `bank`. From the next step() on, one row shifts in per step, the last row first, so
  // that tile_rows steps later PE row r holds tile row r. One tile at a time.
  void queue_stationary_tile(int bank, const uint8_t* elements, int tile_rows, int tile_cols);
  // Rows of the queued tile for `bank` that have not shifted in yet (0: the tile is usable).
  int weight_rows_queued(int bank) const;
  // True while any valid operand tagged `bank` is in the skew line or in an A register
  // (including the last column, whose value is dropped in the next cycle).
  bool bank_in_use(int bank) const;
  // True while an operand tagged `bank` will multiply again (see above). Once this is false a
  // new tile may shift into the bank from the next step() on: the operands left only pass
  // through the last column, which docs/cycle-model.md's bank-free rule waits for.
  bool bank_needed(int bank) const;

  // --- Output-stationary mode --------------------------------------------------------------
  // One clock: `left` (left_rows <= rows() elements) and `top` (top_cols <= cols() elements);
  // either may be null.
  void step_os(const uint8_t* left, int left_rows, const uint8_t* top, int top_cols);
  // One clock of draining (no operands injected; those in flight keep moving, and none may
  // meet a partner, since the PEs do not multiply while draining).
  void drain_os();
  void reset_os();  // zeroes every P and V (not a clock)
  // Operand pairs injected together by step_os that have not met yet.
  int64_t pairs_pending() const;

  // --- Outputs -------------------------------------------------------------------------------
  // The cols() accumulator values leaving the bottom of the array in the last clock, as
  // little-endian int32 / fp32 bytes (4 per column): P(R-1, c) after step(), the shifted-out
  // row after drain_os(), zeros after step_os() (nothing leaves while computing).
  std::span<const uint8_t> bottom() const;
  // One byte per column, 1 where bottom() holds a result: V(R-1, c), the valid bit of the
  // partial sum leaving (stationary mode), or the valid bit of the row shifted out in every
  // column (drain_os). 0 after step_os.
  std::span<const uint8_t> bottom_valid() const;
  // True while some PE holds a valid partial sum (a result that has not left the array yet).
  bool holds_partial_sums() const;
  // True when nothing is in the array: no valid operand (skew lines included), no valid
  // partial sum and no queued weight row. Stepping an empty array changes nothing.
  bool empty() const;
  int32_t bottom_int32(int col) const;  // int8 arrays only
  float bottom_fp32(int col) const;     // bf16 arrays only
  // P(row, col) now, exactly (int32 and fp32 both fit a double): for tests and teaching views.
  double accumulator(int row, int col) const;
  // Every register, skew line and output of the array now.
  ArraySnapshot snapshot() const;

  class Core;  // the registers; implemented per element type in systolic_array.cpp

 private:
  void check_mode(SystolicMode expected, const char* operation) const;

  int rows_;
  int cols_;
  DType operand_type_;
  SystolicMode mode_;
  int64_t cycles_ = 0;
  std::unique_ptr<Core> core_;
};

}  // namespace tpusim
