// The register-level systolic array; systolic_array.h states the semantics.
//
// Layout: structure of arrays, one plane per register kind (operand values, operand tags,
// partial sums, weights), each row padded to whole blocks of kBlock columns. Registers that
// move each cycle are double-buffered: a cycle reads the `current` plane and writes the `next`
// one, then the two swap (no element is moved twice). Moving a value one column right is a
// read at column c - 1: each row of a moving-operand plane carries one extra slot in front,
// slot 0, which holds the value entering column 0 this cycle. The partial sums' valid bits are
// bytes outside the row loops: per PE in a ring of rows (stationary mode, where they only move
// down) or one per row (os).
#include "simulator/systolic_array.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "ir/diagnostics.h"
#include "simulator/timing_mutations.h"

namespace tpusim {
namespace {

static_assert(std::endian::native == std::endian::little,
              "bottom() hands out the accumulators' bytes as they are in memory");

// Columns are processed in blocks of this many with a fixed-trip-count inner loop: at -O2,
// GCC's "very cheap" vectorizer cost model only vectorizes a loop whose trip count is a known
// multiple of the vector width. Pad columns compute values nobody reads.
constexpr int kBlock = 16;

// A tile no wider than any array: the columns of a bank no tile was queued for.
constexpr int kMaxColumns = 1 << 30;

// An operand's valid bit and bank tag, in one lane as wide as the operand, so that the row
// loops work on one lane width.
constexpr int kInvalid = 0;
constexpr int kValidBank0 = 1;  // stationary mode: valid, multiplies W[0]; os mode: valid
constexpr int kValidBank1 = 2;  // stationary mode: valid, multiplies W[1]

int tag_for_bank(int bank) {
  return bank == 0 ? kValidBank0 : kValidBank1;
}

// int8 operands, int32 accumulators. Operands are held widened to int16 (the product of two
// int8 values fits, and tags are the same width); partial sums are uint32 so that overflow
// wraps two's complement without undefined behaviour.
struct Int8Elements {
  using Operand = int16_t;
  using Tag = int16_t;
  using Accumulator = uint32_t;
  static constexpr int kOperandBytes = 1;
  static Operand load(const uint8_t* bytes) { return static_cast<int8_t>(bytes[0]); }
  static Accumulator multiply(Operand a, Operand b) {
    return static_cast<uint32_t>(int32_t{a} * int32_t{b});
  }
  static double to_double(Accumulator sum) { return static_cast<int32_t>(sum); }
};

// bf16 operands, fp32 accumulators. bf16 becomes float once, on entry. The product of two bf16
// values is exact in fp32 (8-bit significands) and each addition rounds to nearest even; the
// build compiles this file with -ffp-contract=off so that no multiply-add is ever fused.
struct BF16Elements {
  using Operand = float;
  using Tag = int32_t;
  using Accumulator = float;
  static constexpr int kOperandBytes = 2;
  static Operand load(const uint8_t* bytes) {
    return bf16_to_float(static_cast<uint16_t>(bytes[0] | (bytes[1] << 8)));
  }
  static Accumulator multiply(Operand a, Operand b) { return a * b; }
  static double to_double(Accumulator sum) { return sum; }
};

// Branch-free select. The float overload works on bit patterns: with -ftrapping-math (GCC's
// default) a `?:` between float arithmetic results stays a branch, which stops vectorization.
template <class T>
T choose(bool condition, T if_true, T if_false) {
  return condition ? if_true : if_false;
}
float choose(bool condition, float if_true, float if_false) {
  const uint32_t mask = condition ? ~0u : 0u;
  return std::bit_cast<float>((std::bit_cast<uint32_t>(if_true) & mask) |
                              (std::bit_cast<uint32_t>(if_false) & ~mask));
}

// One PE row of a stationary-mode cycle. operand_in/tag_in[c] is a_in(r,c) (the row's entry
// slot, then A(r,0..)[n-1]); sum_in[c] is p_in(r,c).
//   A(r,c) = a_in(r,c);   P(r,c) = a_in valid ? p_in + a_in * W[tag](r,c) : p_in
template <class E>
void stationary_row(const typename E::Operand* __restrict operand_in,
                    const typename E::Tag* __restrict tag_in,
                    typename E::Operand* __restrict operand_out,
                    typename E::Tag* __restrict tag_out,
                    const typename E::Operand* __restrict weights_bank0,
                    const typename E::Operand* __restrict weights_bank1,
                    const typename E::Accumulator* __restrict sum_in,
                    typename E::Accumulator* __restrict sum_out, int blocks) {
  for (int block = 0; block < blocks; ++block) {
    for (int lane = 0; lane < kBlock; ++lane) {
      const int c = block * kBlock + lane;
      const auto operand = operand_in[c];
      const auto tag = tag_in[c];
      operand_out[c] = operand;
      tag_out[c] = tag;
      const auto weight = choose(tag == kValidBank1, weights_bank1[c], weights_bank0[c]);
      const auto sum = sum_in[c];
      sum_out[c] = choose(tag != kInvalid, sum + E::multiply(operand, weight), sum);
    }
  }
}

// One PE row of an output-stationary cycle: the left operands move right, the top operands
// move down, and P accumulates where two valid operands meet. When draining (kAccumulate
// false) nothing accumulates. The result counts the valid pairs that met.
template <class E, bool kAccumulate>
int output_stationary_row(
    const typename E::Operand* __restrict left_in, const typename E::Tag* __restrict left_tag_in,
    typename E::Operand* __restrict left_out, typename E::Tag* __restrict left_tag_out,
    const typename E::Operand* __restrict top_in, const typename E::Tag* __restrict top_tag_in,
    typename E::Operand* __restrict top_out, typename E::Tag* __restrict top_tag_out,
    typename E::Accumulator* __restrict sums, int blocks) {
  // Counted per lane in the tag's width, so that the loop stays one lane width and vectorizes
  // (a lane counts at most one pair per block of the row).
  typename E::Tag pairs_met[kBlock] = {};
  for (int block = 0; block < blocks; ++block) {
    for (int lane = 0; lane < kBlock; ++lane) {
      const int c = block * kBlock + lane;
      const auto left = left_in[c];
      const auto left_tag = left_tag_in[c];
      const auto top = top_in[c];
      const auto top_tag = top_tag_in[c];
      left_out[c] = left;
      left_tag_out[c] = left_tag;
      top_out[c] = top;
      top_tag_out[c] = top_tag;
      const bool pair_meets = (left_tag & top_tag) != 0;
      if constexpr (kAccumulate) {
        const auto sum = sums[c];
        sums[c] = choose(pair_meets, sum + E::multiply(left, top), sum);
      }
      pairs_met[lane] = static_cast<typename E::Tag>(pairs_met[lane] + (left_tag & top_tag));
    }
  }
  int total = 0;
  for (int lane = 0; lane < kBlock; ++lane) total += pairs_met[lane];
  return total;
}

// A register plane twice over: `current` holds the registers at the end of the last cycle, a
// cycle writes `next` from `current`, and swap() exchanges their roles.
template <class T>
class RegisterPlanes {
 public:
  RegisterPlanes() = default;
  explicit RegisterPlanes(size_t size) : storage_{std::vector<T>(size), std::vector<T>(size)} {}

  T* current() { return storage_[current_].data(); }
  const T* current() const { return storage_[current_].data(); }
  T* next() { return storage_[1 - current_].data(); }
  const T* next() const { return storage_[1 - current_].data(); }
  void swap() { current_ = 1 - current_; }

 private:
  std::vector<T> storage_[2];
  int current_ = 0;
};

// The systolic data setup: lane i delays its input by i cycles, so that a vector enters the
// array as a diagonal wavefront. Stored as a ring of time slots, each a row of `stride` lanes:
// insert() writes lane i into the slot i cycles ahead, the current slot is what emerges this
// cycle, and advance() clears it for reuse. O(lanes) per cycle. `delay_fault` (tests only,
// timing_mutations.h) adds to the delay of every lane but the first.
template <class E>
class SkewLine {
 public:
  using Operand = typename E::Operand;
  using Tag = typename E::Tag;

  SkewLine() = default;
  SkewLine(int lanes, int stride, int delay_fault = 0)
      : slots_(lanes + std::max(0, delay_fault)),
        stride_(stride),
        delay_fault_(delay_fault),
        operands_(static_cast<size_t>(slots_) * stride),
        tags_(static_cast<size_t>(slots_) * stride, Tag{kInvalid}) {}

  // Lanes 0..count-1 take the elements of `bytes` (little-endian operand elements).
  void insert(const uint8_t* bytes, int count, int tag) {
    for (int lane = 0; lane < count; ++lane) {
      const int delay = lane == 0 ? 0 : std::max(0, lane + delay_fault_);
      const size_t index = static_cast<size_t>((now_ + delay) % slots_) * stride_ + lane;
      operands_[index] = E::load(bytes + lane * E::kOperandBytes);
      tags_[index] = static_cast<Tag>(tag);
    }
  }
  const Operand* emerging_operands() const { return &operands_[slot_start()]; }
  const Tag* emerging_tags() const { return &tags_[slot_start()]; }
  // Lane `lane`'s operands still to emerge: the one emerging in 1, 2, ... steps (nullopt where
  // a slot holds none), without the empty slots at the end.
  std::vector<std::optional<double>> waiting(int lane) const {
    std::vector<std::optional<double>> out;
    for (int d = 0; d < slots_; ++d) {
      const size_t index = static_cast<size_t>((now_ + d) % slots_) * stride_ + lane;
      if (tags_[index] == kInvalid) {
        out.emplace_back();
      } else {
        out.emplace_back(static_cast<double>(operands_[index]));
      }
    }
    while (!out.empty() && !out.back()) out.pop_back();
    return out;
  }
  void advance() {
    std::fill_n(&tags_[slot_start()], stride_, Tag{kInvalid});
    if (++now_ == slots_) now_ = 0;
  }

 private:
  size_t slot_start() const { return static_cast<size_t>(now_) * stride_; }

  int slots_ = 0;
  int stride_ = 0;
  int delay_fault_ = 0;
  int now_ = 0;  // the slot emerging this cycle
  std::vector<Operand> operands_;
  std::vector<Tag> tags_;
};

}  // namespace

// The registers, behind a small virtual interface so that the public class needs no template.
// The wrapper validates arguments and counts cycles; the core only computes.
class SystolicArray::Core {
 public:
  virtual ~Core() = default;
  virtual void step(const uint8_t* feed, int feed_rows, int bank) = 0;
  virtual void stage_weight_row(int bank, const uint8_t* row, int row_cols) = 0;
  virtual void queue_tile(int bank, const uint8_t* elements, int tile_rows, int tile_cols) = 0;
  virtual int weight_rows_queued(int bank) const = 0;
  virtual bool bank_in_use(int bank) const = 0;
  virtual bool bank_needed(int bank) const = 0;
  virtual void step_os(const uint8_t* left, int left_rows, const uint8_t* top, int top_cols) = 0;
  virtual void drain_os() = 0;
  virtual void reset_os() = 0;
  virtual int64_t pairs_pending() const = 0;
  virtual const uint8_t* bottom() const = 0;
  virtual const uint8_t* bottom_valid() const = 0;
  virtual bool holds_partial_sums() const = 0;
  virtual bool empty() const = 0;
  virtual double accumulator(int row, int col) const = 0;
  virtual void snapshot(ArraySnapshot& out) const = 0;
};

namespace {

template <class E>
class SystolicCore final : public SystolicArray::Core {
 public:
  using Operand = typename E::Operand;
  using Tag = typename E::Tag;
  using Accumulator = typename E::Accumulator;

  SystolicCore(int rows, int cols, SystolicMode mode, const PeArrayFaults& faults)
      : rows_(rows),
        cols_(cols),
        blocks_((cols + kBlock - 1) / kBlock),
        padded_cols_(blocks_ * kBlock),
        moving_stride_(padded_cols_ + 1),
        faults_(faults),
        moving_operand_(plane_size(moving_stride_)),
        moving_tag_(plane_size(moving_stride_)),
        sums_(plane_size(padded_cols_)),
        row_skew_(rows, rows, faults.skew),
        zero_row_(padded_cols_, Accumulator{0}),
        bottom_valid_(static_cast<size_t>(cols), 0) {
    if (mode == SystolicMode::Stationary) {
      column_valid_.assign(plane_size(cols_), 0);
      for (int bank = 0; bank < 2; ++bank) {
        weights_[bank].assign(plane_size(padded_cols_), Operand{0});
        staged_row_[bank].assign(padded_cols_, Operand{0});
      }
    } else {
      row_valid_.assign(static_cast<size_t>(rows), 0);
      top_operand_ = RegisterPlanes<Operand>(plane_size(padded_cols_));
      top_tag_ = RegisterPlanes<Tag>(plane_size(padded_cols_));
      column_skew_ = SkewLine<E>(cols, padded_cols_);
    }
    bottom_ = zero_row_.data();
  }

  // --- Stationary mode ---

  void step(const uint8_t* feed, int feed_rows, int bank) override {
    if (feed != nullptr && feed_rows > 0) {
      row_skew_.insert(feed, feed_rows, tag_for_bank(bank));
      operands_in_flight_[bank] += feed_rows;
    }
    const int chain_rows_shifting = stage_from_chain();
    const Operand* entering = row_skew_.emerging_operands();
    const Tag* entering_tags = row_skew_.emerging_tags();
    for (int r = 0; r < rows_; ++r) {
      Operand* operand_in = moving_operand_.current() + moving_row(r);
      Tag* tag_in = moving_tag_.current() + moving_row(r);
      operand_in[0] = entering[r];
      tag_in[0] = entering_tags[r];
      // A(r, C-1)[n-1] has made its last product: it leaves the array in this cycle.
      release_operand(tag_in[cols_]);
      const Accumulator* sum_in = r == 0 ? zero_row_.data() : sums_.current() + sum_row(r - 1);
      stationary_row<E>(operand_in, tag_in, moving_operand_.next() + moving_row(r) + 1,
                        moving_tag_.next() + moving_row(r) + 1, weight_row(0, r), weight_row(1, r),
                        sum_in, sums_.next() + sum_row(r), blocks_);
    }
    moving_operand_.swap();
    moving_tag_.swap();
    sums_.swap();
    row_skew_.advance();
    shift_column_valid();
    count_last_column_operands();
    // Weights change at the end of the cycle: this cycle's products used the old ones, and no
    // operand that will multiply again may see the new ones.
    for (int bank = 0; bank < 2; ++bank) {
      if (!weight_shift_staged_[bank]) continue;
      TPUSIM_CHECK(!bank_needed(bank),
                   fmt::format("step: weight bank {} is overwritten while an operand in the array "
                               "still multiplies with it (the driver must wait until the bank "
                               "is free)",
                               bank));
      shift_weights(bank);
    }
    // A faulty chain (tests only) shifts the first two rows of a tile in one cycle.
    if (chain_rows_shifting == 2) {
      stage_from_chain();
      shift_weights(chain_bank_);
    }
    bottom_ = sums_.current() + sum_row(rows_ - 1);
    update_empty();
  }

  void stage_weight_row(int bank, const uint8_t* row, int row_cols) override {
    TPUSIM_CHECK(!weight_shift_staged_[bank],
                 fmt::format("shift_stationary_row: bank {} already shifts in this cycle (one "
                             "row per bank per cycle; step() ends the cycle)",
                             bank));
    std::vector<Operand>& staged = staged_row_[bank];
    std::fill(staged.begin(), staged.end(), Operand{0});
    for (int c = 0; c < row_cols; ++c) staged[c] = E::load(row + c * E::kOperandBytes);
    weight_shift_staged_[bank] = true;
    empty_ = false;
  }

  void queue_tile(int bank, const uint8_t* elements, int tile_rows, int tile_cols) override {
    TPUSIM_CHECK(chain_rows_left_ == 0,
                 fmt::format("queue_stationary_tile: the shift chain still holds {} rows of a "
                             "tile for bank {} (one tile at a time)",
                             chain_rows_left_, chain_bank_));
    chain_bank_ = bank;
    chain_cols_ = tile_cols;
    tile_cols_[bank] = tile_cols;
    chain_rows_left_ = tile_rows;
    chain_.assign(static_cast<size_t>(tile_rows) * tile_cols * E::kOperandBytes, 0);
    std::copy_n(elements, chain_.size(), chain_.begin());
    // Faults (tests only): one idle cycle first, or the first two rows in one cycle.
    chain_delay_ = faults_.weight_shift > 0 ? faults_.weight_shift : 0;
    chain_double_first_ = faults_.weight_shift < 0 && tile_rows >= 2;
    empty_ = tile_rows == 0 && empty_;
  }

  int weight_rows_queued(int bank) const override {
    return bank == chain_bank_ ? chain_rows_left_ : 0;
  }

  bool bank_in_use(int bank) const override { return operands_in_flight_[bank] > 0; }
  bool bank_needed(int bank) const override {
    return operands_in_flight_[bank] > operands_in_last_column_[bank];
  }

  // --- Output-stationary mode ---

  void step_os(const uint8_t* left, int left_rows, const uint8_t* top, int top_cols) override {
    if (left != nullptr && left_rows > 0) {
      row_skew_.insert(left, left_rows, kValidBank0);
      left_in_flight_ += left_rows;
    }
    if (top != nullptr && top_cols > 0) {
      column_skew_.insert(top, top_cols, kValidBank0);
      top_in_flight_ += top_cols;
    }
    if (left != nullptr && top != nullptr) pairs_pending_ += int64_t{left_rows} * top_cols;
    pairs_pending_ -= move_output_stationary_operands<true>();
    last_step_accumulated_ = true;
    TPUSIM_CHECK(pairs_pending_ >= 0, "step_os: operand pairs met that were not injected together");
    check_pairs_can_meet();
    bottom_ = zero_row_.data();
    std::fill(bottom_valid_.begin(), bottom_valid_.end(), uint8_t{0});
    update_empty();
  }

  void drain_os() override {
    const int pairs_met = move_output_stationary_operands<false>();
    last_step_accumulated_ = false;
    TPUSIM_CHECK(pairs_met == 0,
                 "drain_os: a valid left/top operand pair met while draining, and its product "
                 "would be lost (drain only after the last pair has met)");
    check_pairs_can_meet();
    shift_down(sums_, Accumulator{0});
    bottom_ = sums_.next() + sum_row(rows_ - 1);  // the row just shifted out
    std::fill(bottom_valid_.begin(), bottom_valid_.end(), row_valid_.back());
    std::copy_backward(row_valid_.begin(), row_valid_.end() - 1, row_valid_.end());
    row_valid_.front() = 0;
    update_empty();
  }

  void reset_os() override {
    std::fill_n(sums_.current(), plane_size(padded_cols_), Accumulator{0});
    std::fill(row_valid_.begin(), row_valid_.end(), uint8_t{0});
    update_empty();
  }

  int64_t pairs_pending() const override { return pairs_pending_; }

  // --- Outputs ---

  const uint8_t* bottom() const override { return reinterpret_cast<const uint8_t*>(bottom_); }
  const uint8_t* bottom_valid() const override { return bottom_valid_.data(); }

  bool holds_partial_sums() const override {
    const std::vector<uint8_t>& valid = column_valid_.empty() ? row_valid_ : column_valid_;
    return std::find(valid.begin(), valid.end(), uint8_t{1}) != valid.end();
  }

  bool empty() const override { return empty_; }

  double accumulator(int row, int col) const override {
    return E::to_double(sums_.current()[sum_row(row) + col]);
  }

  void snapshot(ArraySnapshot& out) const override {
    const bool stationary = !column_valid_.empty();
    out.pes.assign(plane_size(cols_), PeRegisters{});
    for (int r = 0; r < rows_; ++r) {
      for (int c = 0; c < cols_; ++c) {
        PeRegisters& pe = out.pes[static_cast<size_t>(r) * cols_ + c];
        const size_t moving = moving_row(r) + static_cast<size_t>(c) + 1;
        const Tag tag = moving_tag_.current()[moving];
        pe.moving_valid = tag != kInvalid;
        pe.moving = pe.moving_valid ? static_cast<double>(moving_operand_.current()[moving]) : 0.0;
        pe.sum = E::to_double(sums_.current()[sum_row(r) + c]);
        if (stationary) {
          for (int bank = 0; bank < 2; ++bank) pe.weight[bank] = static_cast<double>(weight_row(bank, r)[c]);
          pe.moving_bank = tag == kValidBank0 ? 0 : tag == kValidBank1 ? 1 : -1;
          int physical = column_valid_first_ + r;
          if (physical >= rows_) physical -= rows_;
          pe.sum_valid = column_valid_[static_cast<size_t>(physical) * cols_ + c] != 0;
          pe.active = pe.moving_valid;
          if (pe.moving_bank >= 0) pe.in_tile = c < tile_cols_[pe.moving_bank];
        } else {
          const Tag top_tag = top_tag_.current()[sum_row(r) + c];
          pe.top_valid = top_tag != kInvalid;
          pe.top = pe.top_valid ? static_cast<double>(top_operand_.current()[sum_row(r) + c]) : 0.0;
          pe.sum_valid = row_valid_[static_cast<size_t>(r)] != 0;
          pe.active = pe.moving_valid && pe.top_valid && last_step_accumulated_;
        }
      }
    }
    out.left_waiting.clear();
    for (int r = 0; r < rows_; ++r) out.left_waiting.push_back(row_skew_.waiting(r));
    out.top_waiting.clear();
    if (!stationary) {
      for (int c = 0; c < cols_; ++c) out.top_waiting.push_back(column_skew_.waiting(c));
    }
    out.bottom.assign(static_cast<size_t>(cols_), std::nullopt);
    for (int c = 0; c < cols_; ++c) {
      if (bottom_valid_[static_cast<size_t>(c)]) out.bottom[static_cast<size_t>(c)] = E::to_double(bottom_[c]);
    }
    for (int bank = 0; bank < 2; ++bank) out.weight_rows_queued[bank] = weight_rows_queued(bank);
    if (stationary && (chain_rows_left_ > 0 || weight_shift_staged_[chain_bank_])) out.shifting_bank = chain_bank_;
  }

 private:
  size_t plane_size(int stride) const { return static_cast<size_t>(rows_) * stride; }
  size_t moving_row(int r) const { return static_cast<size_t>(r) * moving_stride_; }
  size_t sum_row(int r) const { return static_cast<size_t>(r) * padded_cols_; }

  // Weight rows form a ring (weight_first_row_ is the physical index of array row 0), so that
  // shifting a bank down one row is O(C), not O(R·C).
  const Operand* weight_row(int bank, int r) const {
    int physical = weight_first_row_[bank] + r;
    if (physical >= rows_) physical -= rows_;
    return &weights_[bank][static_cast<size_t>(physical) * padded_cols_];
  }
  void shift_weights(int bank) {
    int& first = weight_first_row_[bank];
    first = first == 0 ? rows_ - 1 : first - 1;  // the old last row is dropped...
    std::copy(staged_row_[bank].begin(), staged_row_[bank].end(),
              &weights_[bank][static_cast<size_t>(first) * padded_cols_]);  // ...and reused
    weight_shift_staged_[bank] = false;
  }

  // Stages this cycle's row of the queued tile, the last row first. Returns the rows the chain
  // shifts in this cycle: 1, or 0 while it has none (or waits), or 2 for the faulty first cycle.
  int stage_from_chain() {
    if (chain_rows_left_ == 0) return 0;
    if (chain_delay_ > 0) {
      --chain_delay_;
      return 0;
    }
    --chain_rows_left_;
    stage_weight_row(
        chain_bank_,
        &chain_[static_cast<size_t>(chain_rows_left_) * chain_cols_ * E::kOperandBytes],
        chain_cols_);
    if (chain_double_first_) {
      chain_double_first_ = false;
      return 2;
    }
    return 1;
  }

  void release_operand(Tag tag) {
    if (tag == kValidBank0) --operands_in_flight_[0];
    if (tag == kValidBank1) --operands_in_flight_[1];
  }

  // The operands in A(r, C-1): they have made their last product and leave in the next cycle.
  void count_last_column_operands() {
    operands_in_last_column_[0] = operands_in_last_column_[1] = 0;
    const Tag* tags = moving_tag_.current();
    for (int r = 0; r < rows_; ++r) {
      const Tag tag = tags[moving_row(r) + cols_];
      if (tag == kValidBank0) ++operands_in_last_column_[0];
      if (tag == kValidBank1) ++operands_in_last_column_[1];
    }
  }

  // Stationary mode: V moves down one row, row 0 takes the valid bits of the operands that
  // entered row 0 this cycle (A(0, c)), and row R-1's bits are bottom_valid(). The planes are a
  // ring of rows (column_valid_first_ is the physical row of array row 0): O(C) per cycle.
  void shift_column_valid() {
    column_valid_first_ = column_valid_first_ == 0 ? rows_ - 1 : column_valid_first_ - 1;
    uint8_t* row0 = &column_valid_[static_cast<size_t>(column_valid_first_) * cols_];
    const Tag* entered = moving_tag_.current() + moving_row(0) + 1;
    for (int c = 0; c < cols_; ++c) row0[c] = entered[c] != kInvalid;
    const int bottom_row = column_valid_first_ == 0 ? rows_ - 1 : column_valid_first_ - 1;
    std::copy_n(&column_valid_[static_cast<size_t>(bottom_row) * cols_], cols_,
                bottom_valid_.begin());
  }

  // Nothing valid anywhere. The scan of the valid bits runs only once no operand is in flight.
  void update_empty() {
    empty_ = chain_rows_left_ == 0 && !weight_shift_staged_[0] && !weight_shift_staged_[1] &&
             operands_in_flight_[0] == 0 && operands_in_flight_[1] == 0 && left_in_flight_ == 0 &&
             top_in_flight_ == 0 && !holds_partial_sums();
  }

  // One drain clock of a register plane: every row moves down one, `zero` enters row 0.
  template <class T>
  void shift_down(RegisterPlanes<T>& planes, T zero) {
    std::fill_n(planes.next(), padded_cols_, zero);
    std::copy_n(planes.current(), static_cast<size_t>(rows_ - 1) * padded_cols_,
                planes.next() + padded_cols_);
    planes.swap();
  }

  // Pairs still to meet need both of their operands in the array: otherwise they never meet,
  // which only a broken skew can cause.
  void check_pairs_can_meet() const {
    TPUSIM_CHECK(pairs_pending_ == 0 || (left_in_flight_ > 0 && top_in_flight_ > 0),
                 fmt::format("output stationary: {} operand pairs left the array without meeting",
                             pairs_pending_));
  }

  // One clock of output-stationary operand movement (and accumulation when kAccumulate).
  // Returns the number of valid pairs that met.
  template <bool kAccumulate>
  int move_output_stationary_operands() {
    const Operand* entering = row_skew_.emerging_operands();
    const Tag* entering_tags = row_skew_.emerging_tags();
    // The top operands in row R-1 and the left operands in column C-1 leave in this cycle.
    const Tag* leaving_top = top_tag_.current() + sum_row(rows_ - 1);
    for (int c = 0; c < cols_; ++c) top_in_flight_ -= leaving_top[c] != kInvalid;
    int pairs_met = 0;
    for (int r = 0; r < rows_; ++r) {
      Operand* left_in = moving_operand_.current() + moving_row(r);
      Tag* left_tag_in = moving_tag_.current() + moving_row(r);
      left_in[0] = entering[r];
      left_tag_in[0] = entering_tags[r];
      left_in_flight_ -= left_tag_in[cols_] != kInvalid;
      const Operand* top_in =
          r == 0 ? column_skew_.emerging_operands() : top_operand_.current() + sum_row(r - 1);
      const Tag* top_tag_in =
          r == 0 ? column_skew_.emerging_tags() : top_tag_.current() + sum_row(r - 1);
      const int pairs_in_row = output_stationary_row<E, kAccumulate>(
          left_in, left_tag_in, moving_operand_.next() + moving_row(r) + 1,
          moving_tag_.next() + moving_row(r) + 1, top_in, top_tag_in,
          top_operand_.next() + sum_row(r), top_tag_.next() + sum_row(r),
          sums_.current() + sum_row(r), blocks_);
      if (pairs_in_row > 0) row_valid_[static_cast<size_t>(r)] = 1;
      pairs_met += pairs_in_row;
    }
    moving_operand_.swap();
    moving_tag_.swap();
    top_operand_.swap();
    top_tag_.swap();
    row_skew_.advance();
    column_skew_.advance();
    return pairs_met;
  }

  int rows_;
  int cols_;
  int blocks_;            // column blocks per row
  int padded_cols_;       // blocks_ * kBlock: the row stride of sums, weights and top operands
  int moving_stride_;     // padded_cols_ + 1: the entry slot, then one register per column
  PeArrayFaults faults_;  // all zero outside the mutation tests

  // Both modes: the operand moving right (A, or L in os mode) and the partial sums P.
  RegisterPlanes<Operand> moving_operand_;
  RegisterPlanes<Tag> moving_tag_;
  RegisterPlanes<Accumulator> sums_;
  SkewLine<E> row_skew_;                 // feeds row r with a delay of r cycles
  std::vector<Accumulator> zero_row_;    // p_in of row 0; bottom() when nothing leaves
  const Accumulator* bottom_ = nullptr;  // the row bottom() returns
  std::vector<uint8_t> bottom_valid_;    // its valid bits, one byte per column
  bool empty_ = true;

  // Stationary mode.
  std::vector<uint8_t> column_valid_;  // V, rows x cols, a ring of rows
  int column_valid_first_ = 0;
  std::vector<Operand> weights_[2];
  int weight_first_row_[2] = {0, 0};
  std::vector<Operand> staged_row_[2];  // the row entering row 0 at the end of this cycle
  bool weight_shift_staged_[2] = {false, false};
  int64_t operands_in_flight_[2] = {0, 0};  // valid operands per bank, skew line included
  int64_t operands_in_last_column_[2] = {0, 0};
  // The weight shift chain: the queued tile's bytes and the rows not shifted in yet.
  std::vector<uint8_t> chain_;
  int chain_bank_ = 0, chain_cols_ = 0, chain_rows_left_ = 0;
  int chain_delay_ = 0;              // faulty chain: idle cycles before the first row
  bool chain_double_first_ = false;  // faulty chain: two rows in the first cycle
  int tile_cols_[2] = {kMaxColumns, kMaxColumns};  // the columns of each bank's queued tile

  // Output-stationary mode: V per row (set once a pair met in the row), the operand moving
  // down (T) and its skew line.
  std::vector<uint8_t> row_valid_;
  RegisterPlanes<Operand> top_operand_;
  RegisterPlanes<Tag> top_tag_;
  SkewLine<E> column_skew_;                         // feeds column c with a delay of c cycles
  int64_t left_in_flight_ = 0, top_in_flight_ = 0;  // valid operands, skew lines included
  int64_t pairs_pending_ = 0;
  bool last_step_accumulated_ = false;  // the last clock was step_os, not drain_os
};

}  // namespace

SystolicArray::SystolicArray(int rows, int cols, DType operand_type, SystolicMode mode)
    : rows_(rows), cols_(cols), operand_type_(operand_type), mode_(mode) {
  TPUSIM_CHECK(rows > 0 && cols > 0,
               fmt::format("SystolicArray: {}x{} is not a valid array size", rows, cols));
  const PeArrayFaults faults = timing_mutations().pe_array;
  switch (operand_type) {
    case DType::Int8:
      core_ = std::make_unique<SystolicCore<Int8Elements>>(rows, cols, mode, faults);
      break;
    case DType::BF16:
      core_ = std::make_unique<SystolicCore<BF16Elements>>(rows, cols, mode, faults);
      break;
    default:
      TPUSIM_CHECK(false, fmt::format("SystolicArray: operand type {} is not int8 or bf16",
                                      dtype_name(operand_type)));
  }
}

SystolicArray::~SystolicArray() = default;
SystolicArray::SystolicArray(SystolicArray&&) noexcept = default;
SystolicArray& SystolicArray::operator=(SystolicArray&&) noexcept = default;

void SystolicArray::check_mode(SystolicMode expected, const char* operation) const {
  TPUSIM_CHECK(
      mode_ == expected,
      fmt::format("SystolicArray::{} needs {} mode", operation,
                  expected == SystolicMode::Stationary ? "stationary" : "output-stationary"));
}

namespace {

void check_bank(int bank, const char* operation) {
  TPUSIM_CHECK(bank == 0 || bank == 1,
               fmt::format("SystolicArray::{}: bank {} is not 0 or 1", operation, bank));
}

void check_count(const uint8_t* data, int count, int limit, const char* operation,
                 const char* what) {
  TPUSIM_CHECK(
      count >= 0 && count <= limit,
      fmt::format("SystolicArray::{}: {} = {} is outside 0..{}", operation, what, count, limit));
  TPUSIM_CHECK(data != nullptr || count == 0,
               fmt::format("SystolicArray::{}: no data for {} = {}", operation, what, count));
}

}  // namespace

void SystolicArray::step(const uint8_t* feed, int feed_rows, int bank) {
  check_mode(SystolicMode::Stationary, "step");
  check_bank(bank, "step");
  check_count(feed, feed_rows, rows_, "step", "feed_rows");
  core_->step(feed, feed_rows, bank);
  ++cycles_;
}

void SystolicArray::shift_stationary_row(int bank, const uint8_t* row, int row_cols) {
  check_mode(SystolicMode::Stationary, "shift_stationary_row");
  check_bank(bank, "shift_stationary_row");
  check_count(row, row_cols, cols_, "shift_stationary_row", "row_cols");
  core_->stage_weight_row(bank, row, row_cols);
}

void SystolicArray::queue_stationary_tile(int bank, const uint8_t* elements, int tile_rows,
                                          int tile_cols) {
  check_mode(SystolicMode::Stationary, "queue_stationary_tile");
  check_bank(bank, "queue_stationary_tile");
  check_count(elements, tile_rows, rows_, "queue_stationary_tile", "tile_rows");
  check_count(elements, tile_cols, cols_, "queue_stationary_tile", "tile_cols");
  core_->queue_tile(bank, elements, tile_rows, tile_cols);
}

int SystolicArray::weight_rows_queued(int bank) const {
  check_mode(SystolicMode::Stationary, "weight_rows_queued");
  check_bank(bank, "weight_rows_queued");
  return core_->weight_rows_queued(bank);
}

bool SystolicArray::bank_in_use(int bank) const {
  check_mode(SystolicMode::Stationary, "bank_in_use");
  check_bank(bank, "bank_in_use");
  return core_->bank_in_use(bank);
}

bool SystolicArray::bank_needed(int bank) const {
  check_mode(SystolicMode::Stationary, "bank_needed");
  check_bank(bank, "bank_needed");
  return core_->bank_needed(bank);
}

void SystolicArray::step_os(const uint8_t* left, int left_rows, const uint8_t* top, int top_cols) {
  check_mode(SystolicMode::OutputStationary, "step_os");
  check_count(left, left_rows, rows_, "step_os", "left_rows");
  check_count(top, top_cols, cols_, "step_os", "top_cols");
  core_->step_os(left, left_rows, top, top_cols);
  ++cycles_;
}

void SystolicArray::drain_os() {
  check_mode(SystolicMode::OutputStationary, "drain_os");
  core_->drain_os();
  ++cycles_;
}

void SystolicArray::reset_os() {
  check_mode(SystolicMode::OutputStationary, "reset_os");
  core_->reset_os();
}

int64_t SystolicArray::pairs_pending() const {
  check_mode(SystolicMode::OutputStationary, "pairs_pending");
  return core_->pairs_pending();
}

std::span<const uint8_t> SystolicArray::bottom() const {
  return {core_->bottom(), static_cast<size_t>(cols_) * 4};
}

std::span<const uint8_t> SystolicArray::bottom_valid() const {
  return {core_->bottom_valid(), static_cast<size_t>(cols_)};
}

bool SystolicArray::holds_partial_sums() const {
  return core_->holds_partial_sums();
}

bool SystolicArray::empty() const {
  return core_->empty();
}

int32_t SystolicArray::bottom_int32(int col) const {
  TPUSIM_CHECK(operand_type_ == DType::Int8, "SystolicArray::bottom_int32 on a bf16 array");
  TPUSIM_CHECK(col >= 0 && col < cols_, fmt::format("SystolicArray: column {} out of range", col));
  int32_t value;
  std::memcpy(&value, core_->bottom() + static_cast<size_t>(col) * 4, 4);
  return value;
}

float SystolicArray::bottom_fp32(int col) const {
  TPUSIM_CHECK(operand_type_ == DType::BF16, "SystolicArray::bottom_fp32 on an int8 array");
  TPUSIM_CHECK(col >= 0 && col < cols_, fmt::format("SystolicArray: column {} out of range", col));
  float value;
  std::memcpy(&value, core_->bottom() + static_cast<size_t>(col) * 4, 4);
  return value;
}

int ArraySnapshot::active_pes() const {
  return static_cast<int>(std::count_if(pes.begin(), pes.end(), [](const PeRegisters& pe) { return pe.active; }));
}

int ArraySnapshot::useful_pes() const {
  return static_cast<int>(std::count_if(pes.begin(), pes.end(), [](const PeRegisters& pe) { return pe.useful(); }));
}

ArraySnapshot SystolicArray::snapshot() const {
  ArraySnapshot out;
  out.rows = rows_;
  out.cols = cols_;
  out.mode = mode_;
  out.cycle = cycles_;
  core_->snapshot(out);
  return out;
}

double SystolicArray::accumulator(int row, int col) const {
  TPUSIM_CHECK(row >= 0 && row < rows_ && col >= 0 && col < cols_,
               fmt::format("SystolicArray: PE({}, {}) out of range", row, col));
  return core_->accumulator(row, col);
}

}  // namespace tpusim
