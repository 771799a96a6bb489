#include "simulator/simulator.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "simulator/hazard.h"
#include "simulator/interpreter.h"
#include "simulator/systolic_array.h"
#include "simulator/timing_mutations.h"
#include "ir/sizes.h"

namespace tpusim {

std::string_view cycle_cause_name(CycleCause c) {
  switch (c) {
    case CycleCause::Busy: return "busy";
    case CycleCause::WaitingOnDma: return "waiting_on_dma";
    case CycleCause::WaitingOnTokens: return "waiting_on_tokens";
    case CycleCause::WaitingOnWeights: return "waiting_on_weights";
    case CycleCause::BankConflict: return "bank_conflict";
    case CycleCause::Idle: return "idle";
  }
  return "?";
}

namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
using LoopValues = std::array<int64_t, kMaxLoopDepth>;

// An issued instruction instance, kept until it completes.
struct Issued {
  const Instruction* instruction = nullptr;
  LoopValues loops{};
  int loop_depth = 0;
  VectorClock clock{};
  int label = 0;
  int64_t issue_cycle = 0;
  int64_t ub_bytes = 0;    // unified-buffer bytes it reads or writes (for the activity timeline)
  int64_t dram_bytes = 0;  // DRAM bytes it moves (DMA)
  InstructionInstance instance() const { return {instruction, loops.data()}; }
};

// What a unit did in its last ticked cycle; skipped (fast-forwarded) cycles repeat it.
struct CycleRecord {
  CycleCause cause = CycleCause::Idle;
  int label = 0;
  std::optional<MxuActivity> activity;
  const Instruction* instruction = nullptr;  // the instruction the cycle is charged to
};

// State shared by the units: tokens, buffers' ports, statistics.
class Machine {
 public:
  Machine(const Program& program, const ArchConfig& arch, MachineState& state,
          const SimulationOptions& options)
      : program(program), arch(arch), target(target_limits(arch)), state(state), options(options),
        hazards(program) {
    for (const auto& t : program.tokens) token_counts.push_back(t.initial);
    const BufferConfig* configs[kBufferCount] = {&arch.unified_buffer, &arch.weight_buffer, &arch.accumulator};
    for (int b = 0; b < kBufferCount; ++b) {
      bank_bytes[b] = std::max<int64_t>(1, configs[b]->bytes / std::max<int64_t>(1, configs[b]->banks));
      port_capacity[b] = configs[b]->bytes_per_cycle;
      port_used[b].assign(static_cast<size_t>(std::max<int64_t>(1, configs[b]->banks)), 0);
    }
    labels.push_back("");
    per_label.emplace_back();
  }

  const Program& program;
  const ArchConfig& arch;
  TargetLimits target;
  MachineState& state;
  const SimulationOptions& options;
  HazardChecker hazards;
  std::vector<int64_t> token_counts;
  std::vector<int> pending_signals;
  bool completed_this_cycle = false;
  int64_t cycle = 0;

  std::vector<std::string> labels;
  std::vector<LabelStats> per_label;
  std::map<std::string, int> label_index;
  std::vector<TraceEvent> trace;
  ActivityTimeline activity;
  int64_t ub_in_flight = 0;
  int64_t instructions_issued = 0;
  int last_label = 0;

  // --- ports: each bank serves port_capacity bytes per cycle, MXU first, then VPU, then DMA.
  int64_t bank_bytes[kBufferCount];
  int64_t port_capacity[kBufferCount];
  std::array<std::vector<int64_t>, kBufferCount> port_used;

  size_t bank_of(Buffer b, int64_t address) const {
    int i = static_cast<int>(b);
    int64_t bank = std::clamp<int64_t>(address / bank_bytes[i], 0, static_cast<int64_t>(port_used[i].size()) - 1);
    return static_cast<size_t>(bank);
  }
  void reset_ports() {
    for (auto& banks : port_used) std::fill(banks.begin(), banks.end(), 0);
  }
  // The MXU always gets its bytes (config validation provisions its feeds).
  void use_port(Buffer b, int64_t address, int64_t bytes) {
    port_used[static_cast<int>(b)][bank_of(b, address)] += bytes;
  }
  int64_t port_available(Buffer b, int64_t address) const {
    int i = static_cast<int>(b);
    return std::max<int64_t>(0, port_capacity[i] - port_used[i][bank_of(b, address)]);
  }

  int label_of(const Instruction& in) {
    auto it = label_index.find(in.label);
    if (it != label_index.end()) return it->second;
    int index = in.label.empty() ? 0 : static_cast<int>(labels.size());
    if (index != 0) {
      labels.push_back(in.label);
      per_label.emplace_back();
    }
    label_index[in.label] = index;
    return index;
  }

  // --- tokens
  bool tokens_available(const Instruction& in) const {
    for (int t : in.waits) {
      int64_t needed = std::count(in.waits.begin(), in.waits.end(), t);
      if (token_counts[static_cast<size_t>(t)] < needed) return false;
    }
    return true;
  }
  CycleCause token_stall(const Instruction& in) const {
    for (int t : in.waits) {
      if (token_counts[static_cast<size_t>(t)] <= 0 && program.tokens[static_cast<size_t>(t)].producer == Unit::Dma) {
        return CycleCause::WaitingOnDma;
      }
    }
    return CycleCause::WaitingOnTokens;
  }

  // Consumes the waits and checks the accesses for races. `instance` must stay valid.
  Issued issue(Unit unit, const Instruction& in, const LoopValues& loops, int depth,
               const std::vector<AccessRange>& accesses) {
    for (int t : in.waits) --token_counts[static_cast<size_t>(t)];
    Issued issued;
    issued.instruction = &in;
    issued.loops = loops;
    issued.loop_depth = depth;
    issued.label = label_of(in);
    issued.issue_cycle = cycle;
    if (options.check_races) {
      issued.clock = hazards.issue(unit, issued.instance(), accesses, depth);
    }
    LabelStats& stats = per_label[static_cast<size_t>(issued.label)];
    stats.instructions++;
    ++instructions_issued;
    last_label = issued.label;
    if (stats.first_cycle < 0) stats.first_cycle = cycle;
    for (const AccessRange& a : accesses) {
      if (a.buffer == Buffer::Unified) issued.ub_bytes += a.end - a.begin;
    }
    if (issued.ub_bytes > 0) {
      ub_in_flight += issued.ub_bytes;
      activity.set_ub_bytes(cycle, ub_in_flight);
    }
    return issued;
  }

  void complete(Unit unit, const Issued& issued) {
    const Instruction& in = *issued.instruction;
    completed_this_cycle = true;
    for (int t : in.signals) pending_signals.push_back(t);
    if (options.check_races) hazards.signal(in, issued.clock);
    LabelStats& stats = per_label[static_cast<size_t>(issued.label)];
    stats.last_cycle = std::max(stats.last_cycle, cycle);
    if (issued.ub_bytes > 0) {
      ub_in_flight -= issued.ub_bytes;
      activity.set_ub_bytes(cycle, ub_in_flight);
    }
    activity.add_dram_bytes(issued.issue_cycle, cycle, issued.dram_bytes);
    if (options.record_trace) {
      trace.push_back({unit, issued.issue_cycle, cycle, &in,
                       std::vector<int64_t>(issued.loops.begin(), issued.loops.begin() + issued.loop_depth)});
    }
  }

  // Makes this cycle's signals visible. True if anything completed this cycle, signalling or
  // not: a unit's state changed at the end of the cycle, so the next cycle must be ticked (the
  // cycles skipped after it are charged to the record of the last ticked cycle).
  bool apply_signals() {
    bool any = !pending_signals.empty() || completed_this_cycle;
    for (int t : pending_signals) ++token_counts[static_cast<size_t>(t)];
    pending_signals.clear();
    completed_this_cycle = false;
    return any;
  }

  // `cycles` cycles from `start` on went as `record` says.
  void account(Unit unit, const CycleRecord& record, int64_t start, int64_t cycles) {
    if (record.cause == CycleCause::Busy) activity.add_busy(unit, start, cycles);
    per_label[static_cast<size_t>(record.label)].cycles[static_cast<int>(unit)][static_cast<int>(record.cause)] += cycles;
    if (record.activity) per_label[static_cast<size_t>(record.label)].mxu_activity[static_cast<int>(*record.activity)] += cycles;
  }

  Traffic& traffic(int label) { return per_label[static_cast<size_t>(label)].traffic; }
  void count_dram(int label, int tensor, const Traffic& traffic) {
    auto& by_tensor = per_label[static_cast<size_t>(label)].dram_by_tensor;
    if (by_tensor.size() <= static_cast<size_t>(tensor)) by_tensor.resize(static_cast<size_t>(tensor) + 1);
    by_tensor[static_cast<size_t>(tensor)][0] += traffic.dram_read;
    by_tensor[static_cast<size_t>(tensor)][1] += traffic.dram_written;
  }
};

// The head of a unit's queue: its next instruction, fetched lazily from the program.
class Queue {
 public:
  Queue(const Program& program, Unit unit) : cursor_(program, unit) { fetch(); }
  const Instruction* head() const { return head_; }
  const LoopValues& loops() const { return loops_; }
  int depth() const { return depth_; }
  void pop() { fetch(); }

 private:
  void fetch() {
    head_ = cursor_.next();
    if (head_) {
      depth_ = cursor_.loop_depth();
      std::copy(cursor_.loop_values(), cursor_.loop_values() + depth_, loops_.begin());
    }
  }
  ProgramCursor cursor_;
  const Instruction* head_ = nullptr;
  LoopValues loops_{};
  int depth_ = 0;
};

// ------------------------------------------------------------------------------------------
// DMA: in-order issue, up to `dram.channels` transfers in flight. A transfer waits
// `latency_cycles`, then moves its DRAM bytes at the DRAM's bandwidth (shared oldest-first)
// and its buffer bytes through the bank's port; it completes when both are moved. Values are
// copied at issue: in-order issue keeps program order, and tokens (signalled at completion)
// keep other units away until then.
class DmaUnit {
 public:
  DmaUnit(Machine& m) : m_(m), queue_(m.program, Unit::Dma) {}

  bool finished() const { return !queue_.head() && transfers_.empty(); }
  const Instruction* head() const { return queue_.head(); }
  bool in_flight() const { return !transfers_.empty(); }
  const CycleRecord& last() const { return last_; }

  void tick() {
    const int64_t cycle = m_.cycle;
    // Issue (one per cycle).
    const Instruction* head = queue_.head();
    bool blocked_on_tokens = false;
    if (head && static_cast<int64_t>(transfers_.size()) < m_.arch.dram.channels) {
      if (m_.tokens_available(*head)) {
        StationaryTile none;
        InstructionInstance probe{head, queue_.loops().data()};
        auto accesses = instruction_accesses(m_.program, m_.target, probe, none);
        Transfer t;
        t.issued = m_.issue(Unit::Dma, *head, queue_.loops(), queue_.depth(), accesses);
        Traffic traffic;
        execute_dma(m_.program, t.issued.instance(), m_.state, traffic);
        m_.traffic(t.issued.label) += traffic;
        m_.count_dram(t.issued.label, head->tensor.tensor, traffic);
        t.issued.dram_bytes = traffic.dram_read + traffic.dram_written;
        t.buffer = head->buffer.buffer;
        t.buffer_begin = accesses.front().begin;
        t.dram_remaining = traffic.dram_read + traffic.dram_written;
        t.buffer_remaining = traffic.buffer_read[static_cast<int>(t.buffer)] + traffic.buffer_written[static_cast<int>(t.buffer)];
        t.data_start = cycle + m_.arch.dram.latency_cycles;
        transfers_.push_back(t);
        queue_.pop();
      } else {
        blocked_on_tokens = true;
      }
    }
    // Move data, oldest transfer first: DRAM bandwidth is shared in issue order; each
    // transfer's buffer bytes go through the port of the bank at its current position.
    bool data_phase = false, conflict = false;
    for (const auto& t : transfers_) data_phase |= t.data_start <= cycle;
    if (data_phase) {
      credit_ = std::min(credit_ + m_.arch.dram.bytes_per_cycle, m_.arch.dram.bytes_per_cycle + 1.0);
    } else {
      credit_ = 0;  // bandwidth not used is not banked
    }
    for (auto& t : transfers_) {
      if (t.data_start > cycle) continue;
      // The tolerance keeps the rounding of repeated fractional additions (ten times 0.1 is
      // 0.99999...) from costing a whole cycle: B bytes take ceil(B / bytes_per_cycle) cycles.
      int64_t dram_take = std::min<int64_t>(t.dram_remaining, static_cast<int64_t>(credit_ + 1e-9));
      t.dram_remaining -= dram_take;
      credit_ = std::max(0.0, credit_ - static_cast<double>(dram_take));
      if (t.buffer_remaining > 0) {
        int64_t address = t.buffer_begin + t.buffer_done;
        int64_t take = std::min(t.buffer_remaining, m_.port_available(t.buffer, address));
        if (take < std::min(t.buffer_remaining, m_.port_capacity[static_cast<int>(t.buffer)])) conflict = true;
        m_.use_port(t.buffer, address, take);
        t.buffer_remaining -= take;
        t.buffer_done += take;
      }
    }
    // Completions, in order; the cycle is charged to the oldest transfer's label.
    const bool busy = !transfers_.empty();
    const int label = busy ? transfers_.front().issued.label : 0;
    const Instruction* working = busy ? transfers_.front().issued.instruction : nullptr;
    while (!transfers_.empty() && transfers_.front().data_start <= cycle &&
           transfers_.front().dram_remaining == 0 && transfers_.front().buffer_remaining == 0) {
      m_.complete(Unit::Dma, transfers_.front().issued);
      transfers_.pop_front();
    }
    if (busy) {
      last_ = {conflict ? CycleCause::BankConflict : CycleCause::Busy, label, std::nullopt, working};
    } else if (blocked_on_tokens) {
      last_ = {m_.token_stall(*head), m_.label_of(*head), std::nullopt, head};
    } else {
      last_ = {CycleCause::Idle, 0, std::nullopt};
    }
    m_.account(Unit::Dma, last_, cycle, 1);
  }

  // The next cycle at which something may change without outside help.
  int64_t next_event() const {
    int64_t next = kNever;
    for (const auto& t : transfers_) {
      next = std::min(next, t.data_start <= m_.cycle ? m_.cycle + 1 : t.data_start);
    }
    if (queue_.head() && static_cast<int64_t>(transfers_.size()) < m_.arch.dram.channels &&
        m_.tokens_available(*queue_.head())) {
      next = m_.cycle + 1;
    }
    return next;
  }

 private:
  struct Transfer {
    Issued issued;
    Buffer buffer = Buffer::Unified;
    int64_t buffer_begin = 0, buffer_done = 0;
    int64_t dram_remaining = 0, buffer_remaining = 0;
    int64_t data_start = 0;
  };
  Machine& m_;
  Queue queue_;
  std::deque<Transfer> transfers_;
  double credit_ = 0;  // DRAM bytes that may move this cycle (fractional bandwidth accrues)
  CycleRecord last_;
};

}  // namespace
}  // namespace tpusim

namespace tpusim {
namespace {

// ------------------------------------------------------------------------------------------
// Fast kernels: the same sums as reference_matmul, in the same order (row r ascending for each
// output, starting from zero), with loops arranged so the compiler can vectorize them.
MatmulResult fast_matmul(const InstructionInstance& instance, DType operand_type,
                         const MachineState& state, const StationaryTile& tile, const std::vector<int64_t>& gather) {
  const Instruction& in = *instance.instruction;
  const uint8_t* src = state.buffers[static_cast<int>(in.src.buffer)].data() + instance.address(in.src);
  const int64_t K = tile.rows, N = tile.cols;
  MatmulResult result{in.count, N, std::vector<uint32_t>(static_cast<size_t>(in.count * N))};
  // A gathered vector (`gather`: its element offsets, empty when contiguous) is copied to one
  // place first, so the loops below stay the same.
  const int64_t element = dtype_size(operand_type);
  std::vector<uint8_t> gathered;
  auto vector_at = [&](int64_t t) { return gather_vector(src + t * in.src_stride, gather, element, gathered); };
  if (operand_type == DType::Int8) {
    std::vector<int32_t> w(static_cast<size_t>(K * N));
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>(tile.elements[i]);
    for (int64_t t = 0; t < in.count; ++t) {
      const int8_t* x = reinterpret_cast<const int8_t*>(vector_at(t));
      uint32_t* out = &result.values[static_cast<size_t>(t * N)];
      for (int64_t r = 0; r < K; ++r) {
        const uint32_t a = static_cast<uint32_t>(static_cast<int32_t>(x[r]));
        const int32_t* wr = &w[static_cast<size_t>(r * N)];
        for (int64_t c = 0; c < N; ++c) out[c] += a * static_cast<uint32_t>(wr[c]);
      }
    }
  } else {
    std::vector<float> w(static_cast<size_t>(K * N));
    for (size_t i = 0; i < w.size(); ++i) {
      uint16_t bits;
      std::memcpy(&bits, &tile.elements[i * 2], 2);
      w[i] = bf16_to_float(bits);
    }
    std::vector<float> psum(static_cast<size_t>(N));
    for (int64_t t = 0; t < in.count; ++t) {
      const uint8_t* x = vector_at(t);
      std::fill(psum.begin(), psum.end(), 0.0f);
      for (int64_t r = 0; r < K; ++r) {
        uint16_t bits;
        std::memcpy(&bits, x + r * 2, 2);
        const float a = bf16_to_float(bits);
        const float* wr = &w[static_cast<size_t>(r * N)];
        for (int64_t c = 0; c < N; ++c) psum[static_cast<size_t>(c)] = psum[static_cast<size_t>(c)] + a * wr[c];
      }
      std::memcpy(&result.values[static_cast<size_t>(t * N)], psum.data(), static_cast<size_t>(N) * 4);
    }
  }
  return result;
}

MatmulResult fast_matmul_os(const InstructionInstance& instance, DType operand_type,
                            const MachineState& state) {
  const Instruction& in = *instance.instruction;
  const uint8_t* left = state.buffers[static_cast<int>(in.src.buffer)].data() + instance.address(in.src);
  const uint8_t* top = state.buffers[static_cast<int>(in.top.buffer)].data() + instance.address(in.top);
  const int64_t M = in.rows, N = in.cols;
  MatmulResult result{M, N, std::vector<uint32_t>(static_cast<size_t>(M * N))};
  if (operand_type == DType::Int8) {
    for (int64_t t = 0; t < in.count; ++t) {
      const int8_t* l = reinterpret_cast<const int8_t*>(left + t * in.src_stride);
      const int8_t* b = reinterpret_cast<const int8_t*>(top + t * in.top_stride);
      for (int64_t m = 0; m < M; ++m) {
        const uint32_t a = static_cast<uint32_t>(static_cast<int32_t>(l[m]));
        uint32_t* out = &result.values[static_cast<size_t>(m * N)];
        for (int64_t n = 0; n < N; ++n) out[n] += a * static_cast<uint32_t>(static_cast<int32_t>(b[n]));
      }
    }
  } else {
    std::vector<float> psum(static_cast<size_t>(M * N), 0.0f), b(static_cast<size_t>(N));
    for (int64_t t = 0; t < in.count; ++t) {
      for (int64_t n = 0; n < N; ++n) {
        uint16_t bits;
        std::memcpy(&bits, top + t * in.top_stride + n * 2, 2);
        b[static_cast<size_t>(n)] = bf16_to_float(bits);
      }
      for (int64_t m = 0; m < M; ++m) {
        uint16_t bits;
        std::memcpy(&bits, left + t * in.src_stride + m * 2, 2);
        const float a = bf16_to_float(bits);
        float* out = &psum[static_cast<size_t>(m * N)];
        for (int64_t n = 0; n < N; ++n) out[n] = out[n] + a * b[static_cast<size_t>(n)];
      }
    }
    std::memcpy(result.values.data(), psum.data(), psum.size() * 4);
  }
  return result;
}

// ------------------------------------------------------------------------------------------
// MXU, an R x C array (timing in docs/cycle-model.md):
//   load_stationary, K rows: one row shifts in per cycle during [s, s+K-1]; vectors may use the
//     tile from s+K on.
//   matmul, T vectors through a K x N tile: vector t enters at s+t; output (t, c) reaches the
//     accumulators at s+t+R-1+c; done at s+T+R+N-3. The next matmul may enter from s+T. The
//     tile's bank is free (every operand using it has passed the last column) from s+T+K+C-2.
//   matmul_os, T steps, M x N outputs: step t enters at s+t; the last product is at
//     s+T+M+N-3; R drain cycles follow; row m is written at s+T+M+N-2 + R-1-m; done at
//     s+T+M+N+R-3.
// Instructions retire in order: one completes no earlier than the one before it, so a token
// from the MXU means everything before it on the MXU is done.
//
// The two fidelities learn this timing independently, and the tests hold them together:
//   fast: the closed forms above (MxuClosedForms), evaluated when an instruction issues.
//   pe:   the PE array's state, stepped every cycle while it holds anything. A load is done in
//         the cycle its last row leaves the shift chain, and its tile is usable once none of it
//         is queued; a bank is free once no operand in the array still needs it; a matmul is
//         done in the cycle its last output leaves the bottom row (the valid bits, counted per
//         column, say which vector leaves); an os matmul drains once every operand pair has
//         met and is done when its last valid row has left. Ports are charged for what moved.
// Only the feeding of vectors (vector t of a matmul enters in the t-th cycle after its issue)
// is the MXU's own sequencing at both fidelities.

// The closed forms of the MXU's schedule, the fast fidelity's timing (s = issue cycle). Each
// carries its test-only offset (timing_mutations.h), zero in every normal run.
struct MxuClosedForms {
  int64_t rows = 0, cols = 0;  // R, C
  FastMxuTimingOffsets offset;

  int64_t shift_end(int64_t s, int64_t K) const { return s + K + offset.shift_end; }
  int64_t tile_ready(int64_t s, int64_t K) const { return s + K + offset.tile_ready; }
  int64_t load_done(int64_t s, int64_t K) const { return s + K - 1 + offset.load_done; }
  int64_t stream_free(int64_t s, int64_t T) const { return s + T + offset.stream_free; }
  int64_t matmul_done(int64_t s, int64_t T, int64_t N) const {
    return s + T + rows + N - 3 + offset.matmul_done;
  }
  int64_t bank_free(int64_t s, int64_t T, int64_t K) const {
    return s + T + K + cols - 2 + offset.bank_free;
  }
  // The accumulator port is written in [outputs_begin, outputs_end] (output (0,0) to (T-1,N-1)).
  int64_t outputs_begin(int64_t s) const { return s + rows - 1 + offset.outputs_begin; }
  int64_t outputs_end(int64_t s, int64_t T, int64_t N) const {
    return s + T + rows + N - 3 + offset.outputs_end;
  }
  int64_t os_drain_start(int64_t s, int64_t T, int64_t M, int64_t N) const {
    return s + T + M + N - 2 + offset.os_drain_start;
  }
  int64_t os_done(int64_t drain_start) const { return drain_start + rows - 1 + offset.os_done; }
  int64_t os_stream_free(int64_t done) const { return done + 1 + offset.os_stream_free; }
  int64_t os_row_written(int64_t drain_start, int64_t m) const {
    return drain_start + rows - 1 - m + offset.os_row_written;
  }
};

class MxuUnit {
 public:
  explicit MxuUnit(Machine& m) : m_(m), queue_(m.program, Unit::Mxu) {
    rows_ = m.arch.mxu.rows;
    cols_ = m.arch.mxu.cols;
    element_ = dtype_size(m.arch.mxu.operand_type);
    if (m.options.fidelity == Fidelity::Pe && queue_.head()) {
      array_ = std::make_unique<SystolicArray>(
          static_cast<int>(rows_), static_cast<int>(cols_), m.arch.mxu.operand_type,
          m.arch.mxu.dataflow == Dataflow::OutputStationary ? SystolicMode::OutputStationary : SystolicMode::Stationary);
      column_outputs_.assign(static_cast<size_t>(cols_), 0);
    } else {
      closed_forms_ = {rows_, cols_, timing_mutations().fast_mxu};
    }
  }

  bool finished() const { return !queue_.head() && retire_.empty(); }
  const Instruction* head() const { return queue_.head(); }
  bool in_flight() const { return !retire_.empty(); }
  const CycleRecord& last() const { return last_; }
  int64_t pe_updates() const { return array_ ? array_->pe_updates() : 0; }
  const SystolicArray* array() const { return array_.get(); }
  // Whether the last tick clocked the PE array.
  bool array_clocked() const { return array_ && array_->cycles() != array_cycles_before_; }
  // The vector that entered the array in the last ticked cycle (-1: none) and its matmul's count.
  int64_t last_vector() const { return last_vector_; }
  int64_t last_vectors() const { return last_vectors_; }

  void tick() {
    const int64_t cycle = m_.cycle;
    last_vector_ = -1;
    array_cycles_before_ = array_ ? array_->cycles() : 0;
    std::optional<CycleCause> head_cause = try_issue();
    const Activity activity = array_ ? step_array() : scheduled_activity();
    // Retire, in order.
    while (!retire_.empty() && retire_.front().when <= cycle) {
      m_.complete(Unit::Mxu, retire_.front().issued);
      retire_.pop_front();
    }
    // Classify the cycle.
    if (activity.injecting) {
      last_ = {CycleCause::Busy, activity.injecting->issued.label, MxuActivity::Computing,
               activity.injecting->issued.instruction};
    } else if (activity.shifting) {
      last_ = {CycleCause::Busy, load_->issued.label, MxuActivity::ShiftingWeights, load_->issued.instruction};
    } else if (!matmuls_.empty()) {
      last_ = {CycleCause::Busy, matmuls_.front().issued.label, MxuActivity::Draining,
               matmuls_.front().issued.instruction};
    } else if (queue_.head() && head_cause) {
      last_ = {*head_cause, m_.label_of(*queue_.head()), std::nullopt, queue_.head()};
    } else if (!retire_.empty()) {
      last_ = {CycleCause::Busy, retire_.front().issued.label, MxuActivity::Draining,
               retire_.front().issued.instruction};
    } else {
      last_ = {CycleCause::Idle, 0, std::nullopt};
    }
    m_.account(Unit::Mxu, last_, cycle, 1);
    // Forget matmuls whose last output is written.
    while (!matmuls_.empty() && matmuls_.front().completion <= cycle) matmuls_.pop_front();
  }

  int64_t next_event() const {
    const int64_t cycle = m_.cycle;
    int64_t next = kNever;
    auto consider = [&](int64_t c) {
      if (c > cycle) next = std::min(next, c);
    };
    if (array_) {
      // The array is stepped every cycle while it holds anything; once it is empty, every
      // instruction issued so far is done and only the head can change something.
      if (!array_->empty() || feeding_matmul()) return cycle + 1;
    } else {
      if (load_) consider(load_->shift_end);
      for (const auto& mm : matmuls_) {
        consider(mm.start + mm.count);
        consider(mm.completion);
        consider(mm.completion + 1);
        if (mm.os) consider(mm.drain_start);
      }
      for (const auto& r : retire_) {
        consider(r.when);
        consider(r.when + 1);
      }
    }
    if (queue_.head()) {
      int64_t ready = head_ready_cycle();
      if (ready != kNever) consider(std::max(ready, cycle + 1));
    }
    return next;
  }

 private:
  struct Bank {
    StationaryTile tile;
    int64_t ready_cycle = 0;  // fast: vectors may use the tile from this cycle
    int64_t free_cycle = 0;   // fast: a new tile may start shifting in from this cycle
  };
  // An issued instruction waiting to retire. `when` is its completion cycle: at fast fidelity
  // known at issue (in-order retirement included); at PE fidelity kNever until the array shows
  // that it is done, then the cycle it happened (in-order retirement follows from popping).
  struct Retirement {
    int64_t when = kNever;
    Issued issued;
  };
  struct Load {
    Issued issued;
    int64_t start = 0, shift_end = 0, rows = 0, cols = 0, stride = 0, address = 0;
    int bank = 0;
    Buffer buffer = Buffer::Weight;
    bool transpose = false;
    Retirement* retirement = nullptr;  // PE: until the shift chain has shifted the last row
  };
  struct Matmul {
    Issued issued;
    bool os = false;
    int bank = 0;
    int64_t start = 0, count = 0, feed_rows = 0, out_cols = 0, completion = kNever, drain_start = 0;
    Buffer src_buffer = Buffer::Unified, top_buffer = Buffer::Weight;
    int64_t src = 0, src_stride = 0, top = 0, top_stride = 0, dst = 0, dst_stride = 0;
    bool accumulate = false;
    // ws/is with a vector pattern: each vector's element offsets and the contiguous runs they
    // form, each run charged to the port of its own bank (empty: one contiguous run).
    std::vector<int64_t> gather;
    std::vector<ByteRun> runs;
    // Fast: the cycles of its accumulator writes, [outputs_begin, outputs_end] (os: row m is
    // written at outputs_end - m).
    int64_t outputs_begin = 0, outputs_end = 0;
    int64_t vectors_fed = 0;   // PE: vectors (os: steps) injected into the array so far
    int64_t rows_written = 0;  // PE, os: result rows that have left the array
    Retirement* retirement = nullptr;
  };
  // PE, ws/is: where the outputs of one matmul's vectors go. Vectors are numbered in the order
  // they enter the array; column c's k-th valid output belongs to vector k. The route lives
  // until every column has passed its vectors (columns >= out_cols drop theirs).
  struct OutputRoute {
    Matmul* matmul = nullptr;  // valid while outputs_left > 0 (the matmul is not done)
    int64_t first_vector = 0, vectors = 0, out_cols = 0, dst = 0, dst_stride = 0;
    bool accumulate = false;
    int64_t outputs_left = 0;
    int64_t newest_written = -1;  // this cycle: the latest vector with an output written
  };
  // What the MXU did this cycle, for its classification.
  struct Activity {
    const Matmul* injecting = nullptr;
    bool shifting = false;
  };

  int target_bank() const { return m_.arch.mxu.weight_double_buffering ? 1 - current_bank_ : 0; }

  // When the head could issue as far as the MXU's own resources go (kNever: only a token can
  // unblock it). Forced inline, like try_issue(): they run in every ticked cycle, and the fast
  // fidelity's speed depends on it.
  [[gnu::always_inline]] int64_t head_ready_cycle() const {
    const Instruction& in = *queue_.head();
    int64_t ready = m_.cycle;
    if (array_) [[unlikely]] {
      if (!array_lets_issue(in)) ready = m_.cycle + 1;  // the array changes every cycle
    } else if (in.opcode == Opcode::MxuLoadStationary) {
      if (load_) ready = std::max(ready, load_->shift_end);
      ready = std::max(ready, banks_[static_cast<size_t>(target_bank())].free_cycle);
    } else {
      ready = std::max(ready, stream_free_);
      if (in.opcode == Opcode::MxuMatmul) ready = std::max(ready, banks_[static_cast<size_t>(current_bank_)].ready_cycle);
    }
    if (ready <= m_.cycle && !m_.tokens_available(in)) return kNever;
    return ready;
  }

  // PE fidelity: whether the array, as the last step left it, lets `in` issue in the next one.
  bool array_lets_issue(const Instruction& in) const {
    if (in.opcode == Opcode::MxuLoadStationary) {
      // The bank is free when no operand in the array needs it and no vector still to enter
      // will (the matmul feeding it has fed them all).
      const int bank = target_bank();
      const bool chain_free =
          array_->weight_rows_queued(0) == 0 && array_->weight_rows_queued(1) == 0;
      const Matmul* feeding = feeding_matmul();
      return chain_free && !array_->bank_needed(bank) && !(feeding && feeding->bank == bank);
    }
    if (in.opcode == Opcode::MxuMatmulOs) return matmuls_.empty();  // one in the array at a time
    return !feeding_matmul() && array_->weight_rows_queued(current_bank_) == 0;
  }

  // PE fidelity: the matmul whose vectors are entering the array (issue order), if any.
  const Matmul* feeding_matmul() const {
    for (const auto& mm : matmuls_) {
      if (mm.vectors_fed < mm.count) return &mm;
    }
    return nullptr;
  }
  Matmul* feeding_matmul() { return const_cast<Matmul*>(std::as_const(*this).feeding_matmul()); }

  // Issues the head if it can; otherwise returns why it waits.
  [[gnu::always_inline]] std::optional<CycleCause> try_issue() {
    const Instruction* head = queue_.head();
    if (!head) return std::nullopt;
    const int64_t cycle = m_.cycle;
    const Instruction& in = *head;
    // kNever means the MXU itself is ready and only a token is missing: classified below.
    const int64_t ready = head_ready_cycle();
    if (ready > cycle && ready != kNever) {
      return in.opcode == Opcode::MxuLoadStationary ? CycleCause::WaitingOnWeights : CycleCause::Busy;
    }
    if (!m_.tokens_available(in)) {
      CycleCause cause = m_.token_stall(in);
      if (cause == CycleCause::WaitingOnDma && in.opcode == Opcode::MxuLoadStationary) cause = CycleCause::WaitingOnWeights;
      return cause;
    }
    const DType operand = m_.arch.mxu.operand_type;
    InstructionInstance probe{head, queue_.loops().data()};
    if (in.opcode == Opcode::MxuLoadStationary) {
      const int bank = target_bank();
      Bank& b = banks_[static_cast<size_t>(bank)];
      StationaryTile none;
      auto accesses = instruction_accesses(m_.program, m_.target, probe, none);
      Load load;
      load.issued = m_.issue(Unit::Mxu, in, queue_.loops(), queue_.depth(), accesses);
      execute_load_stationary(load.issued.instance(), operand, m_.state, b.tile, m_.traffic(load.issued.label));
      load.start = cycle;
      load.rows = in.rows;
      load.cols = in.cols;
      load.stride = in.src_stride;
      load.address = probe.address(in.src);
      load.bank = bank;
      load.buffer = in.src.buffer;
      load.transpose = in.transpose;
      current_bank_ = bank;
      if (array_) {
        array_->queue_stationary_tile(bank, b.tile.elements.data(), static_cast<int>(in.rows),
                                      static_cast<int>(in.cols));
        load.retirement = retire(load.issued, kNever);
      } else {
        load.shift_end = closed_forms_.shift_end(cycle, in.rows);
        b.ready_cycle = closed_forms_.tile_ready(cycle, in.rows);
        retire(load.issued, closed_forms_.load_done(cycle, in.rows));
      }
      load_ = load;
    } else {
      const bool os = in.opcode == Opcode::MxuMatmulOs;
      Bank& b = banks_[static_cast<size_t>(current_bank_)];
      auto accesses = instruction_accesses(m_.program, m_.target, probe, b.tile);
      Matmul mm;
      mm.issued = m_.issue(Unit::Mxu, in, queue_.loops(), queue_.depth(), accesses);
      mm.os = os;
      mm.bank = current_bank_;
      mm.start = cycle;
      mm.count = in.count;
      mm.feed_rows = os ? in.rows : b.tile.rows;
      mm.out_cols = os ? in.cols : b.tile.cols;
      mm.src_buffer = in.src.buffer;
      mm.src = probe.address(in.src);
      mm.src_stride = in.src_stride;
      mm.top_buffer = in.top.buffer;
      mm.top = os ? probe.address(in.top) : 0;
      mm.top_stride = in.top_stride;
      mm.dst = probe.address(in.dst);
      mm.dst_stride = in.dst_stride;
      mm.accumulate = in.accumulate;
      if (!os && !in.vector_extent.empty()) {
        mm.gather = vector_offsets(in, mm.feed_rows, element_);
        mm.runs = vector_runs(mm.gather, element_);
      }
      const InstructionInstance instance = mm.issued.instance();
      LabelStats& stats = m_.per_label[static_cast<size_t>(mm.issued.label)];
      Traffic& traffic = stats.traffic;
      if (os) traffic.buffer_read[static_cast<int>(in.top.buffer)] += in.count * in.cols * element_;
      traffic.buffer_read[static_cast<int>(in.src.buffer)] += in.count * mm.feed_rows * element_;
      stats.useful_macs += in.count * mm.feed_rows * mm.out_cols;
      stats.mapped_macs += in.count * rows_ * cols_;
      if (array_) {
        // Values and timing come out of the PE array as it is stepped; count the accumulator
        // traffic now.
        int64_t outputs = (os ? in.rows : in.count) * mm.out_cols * 4;
        traffic.buffer_written[static_cast<int>(Buffer::Accumulator)] += outputs;
        if (in.accumulate) traffic.buffer_read[static_cast<int>(Buffer::Accumulator)] += outputs;
        mm.retirement = retire(mm.issued, kNever);
        matmuls_.push_back(mm);
        if (!os) add_output_route(matmuls_.back());
      } else {
        if (os) {
          mm.drain_start = closed_forms_.os_drain_start(cycle, in.count, in.rows, in.cols);
          mm.completion = closed_forms_.os_done(mm.drain_start);
          stream_free_ = closed_forms_.os_stream_free(mm.completion);
          mm.outputs_end = closed_forms_.os_row_written(mm.drain_start, 0);
          mm.outputs_begin = mm.outputs_end - (mm.feed_rows - 1);
        } else {
          mm.completion = closed_forms_.matmul_done(cycle, in.count, mm.out_cols);
          stream_free_ = closed_forms_.stream_free(cycle, in.count);
          b.free_cycle =
              std::max(b.free_cycle, closed_forms_.bank_free(cycle, in.count, b.tile.rows));
          mm.outputs_begin = closed_forms_.outputs_begin(cycle);
          mm.outputs_end = closed_forms_.outputs_end(cycle, in.count, mm.out_cols);
        }
        MatmulResult values = os ? fast_matmul_os(instance, operand, m_.state)
                                 : fast_matmul(instance, operand, m_.state, b.tile, mm.gather);
        write_accumulators(instance, operand, values, m_.state, traffic);
        retire(mm.issued, mm.completion);
        matmuls_.push_back(mm);
      }
    }
    queue_.pop();
    return std::nullopt;
  }

  // PE fidelity: the matmul's vectors are the next ones to enter the array.
  void add_output_route(Matmul& mm) {
    OutputRoute route;
    route.matmul = &mm;  // a deque keeps references across push and pop
    route.first_vector = vectors_issued_;
    route.vectors = mm.count;
    route.out_cols = mm.out_cols;
    route.dst = mm.dst;
    route.dst_stride = mm.dst_stride;
    route.accumulate = mm.accumulate;
    route.outputs_left = mm.count * mm.out_cols;
    routes_.push_back(route);
    vectors_issued_ += mm.count;
  }

  // Queues `issued` for in-order retirement at `natural_completion` (kNever: not known yet).
  Retirement* retire(const Issued& issued, int64_t natural_completion) {
    int64_t when = natural_completion;
    if (!array_) {
      when = std::max(natural_completion, last_retire_);
      last_retire_ = when;
    }
    retire_.push_back({when, issued});
    return &retire_.back();  // a deque keeps references across push and pop
  }

  uint8_t* buffer(Buffer b, int64_t address) { return m_.state.buffers[static_cast<int>(b)].data() + address; }
  uint8_t* accumulator(int64_t address) { return buffer(Buffer::Accumulator, address); }

  // The port bytes of one vector of a ws/is matmul (or one left column of os) starting at
  // `address`: a gathered vector charges each run to the bank it lies in.
  void charge_vector(const Matmul& mm, int64_t address) {
    if (mm.runs.empty()) {
      m_.use_port(mm.src_buffer, address, mm.feed_rows * element_);
      return;
    }
    for (const ByteRun& run : mm.runs) m_.use_port(mm.src_buffer, address + run.offset, run.bytes);
  }

  // The buffer address of row `row` of a load's tile.
  int64_t load_row_address(const Load& l, int64_t row) const {
    return l.address + (l.transpose ? row * element_ : row * l.stride);
  }

  // --- Fast fidelity: this cycle from the closed forms -------------------------------------

  bool loading(int64_t cycle) const {
    return load_ && load_->start <= cycle && cycle < load_->shift_end;
  }

  // Charges this cycle's buffer ports from the schedule and says what the MXU is doing.
  Activity scheduled_activity() {
    const int64_t cycle = m_.cycle;
    Activity activity;
    if (loading(cycle)) {
      const Load& l = *load_;
      const int64_t row = l.rows - 1 - (cycle - l.start);  // the last row shifts in first
      m_.use_port(l.buffer, load_row_address(l, row), l.cols * element_);
      activity.shifting = true;
    }
    for (const auto& mm : matmuls_) {
      const int64_t t = cycle - mm.start;
      if (t >= 0 && t < mm.count) {
        charge_vector(mm, mm.src + t * mm.src_stride);
        if (mm.os) m_.use_port(mm.top_buffer, mm.top + t * mm.top_stride, mm.out_cols * element_);
        activity.injecting = &mm;
      }
      // Accumulator writes: a row of out_cols values in each cycle in which outputs leave the
      // array, charged to the bank of the newest vector (os: the row) written in that cycle.
      if (cycle >= mm.outputs_begin && cycle <= mm.outputs_end) {
        const int64_t row =
            mm.os ? mm.outputs_end - cycle : std::min(cycle - mm.outputs_begin, mm.count - 1);
        m_.use_port(Buffer::Accumulator, mm.dst + row * mm.dst_stride, mm.out_cols * 4);
      }
    }
    return activity;
  }

  // --- PE fidelity: this cycle from the array ----------------------------------------------

  // One clock of the PE array, if it holds anything or a vector enters: the weight shift chain
  // moves, the next vector enters, outputs leave into the accumulators, and what the array
  // shows completes loads and matmuls. Ports are charged for what moved.
  Activity step_array() {
    Activity activity;
    if (array_->empty() && !feeding_matmul()) return activity;
    if (array_->mode() == SystolicMode::Stationary) {
      step_stationary(activity);
    } else {
      step_output_stationary(activity);
    }
    if (array_->empty()) {
      for (const auto& mm : matmuls_) {
        TPUSIM_CHECK(
            mm.vectors_fed < mm.count || mm.completion != kNever,
            fmt::format("MXU: the PE array is empty, but the results of the matmul at line {} "
                        "never left it",
                        mm.issued.instruction->location.line));
      }
    }
    return activity;
  }

  void step_stationary(Activity& activity) {
    const int64_t cycle = m_.cycle;
    const int rows_queued_before = load_ ? array_->weight_rows_queued(load_->bank) : 0;
    activity.shifting = rows_queued_before > 0;
    if (Matmul* feeding = feeding_matmul()) {
      const int64_t t = feeding->vectors_fed++;
      last_vector_ = t;
      last_vectors_ = feeding->count;
      const int64_t address = feeding->src + t * feeding->src_stride;
      const uint8_t* vector = gather_vector(buffer(feeding->src_buffer, address), feeding->gather, element_, gathered_);
      array_->step(vector, static_cast<int>(feeding->feed_rows), feeding->bank);
      charge_vector(*feeding, address);
      activity.injecting = feeding;
    } else {
      array_->step();
    }
    if (rows_queued_before > 0) {
      Load& l = *load_;
      const int rows_queued = array_->weight_rows_queued(l.bank);
      // Rows shift in last first: the rows that went in this cycle are the ones now unqueued.
      for (int row = rows_queued; row < rows_queued_before; ++row) {
        m_.use_port(l.buffer, load_row_address(l, row), l.cols * element_);
      }
      if (rows_queued == 0) {
        l.retirement->when = cycle;
        l.retirement = nullptr;
      }
    }
    collect_outputs();
  }

  // Writes the outputs leaving the bottom row this cycle: the valid bit of column c says an
  // output leaves, and counting them per column says whose it is.
  void collect_outputs() {
    const int64_t cycle = m_.cycle;
    const DType operand = m_.arch.mxu.operand_type;
    const auto valid = array_->bottom_valid();
    const auto bottom = array_->bottom();
    for (int64_t c = 0; c < cols_; ++c) {
      if (!valid[static_cast<size_t>(c)]) continue;
      const int64_t vector = column_outputs_[static_cast<size_t>(c)]++;
      OutputRoute* route = route_of(vector);
      TPUSIM_CHECK(
          route != nullptr,
          fmt::format(
              "MXU: an output left column {} of the PE array that no matmul fed (vector {})", c,
              vector));
      if (c >= route->out_cols) continue;  // the operands cross every column; these are not kept
      const int64_t t = vector - route->first_vector;
      uint32_t bits;
      std::memcpy(&bits, bottom.data() + c * 4, 4);
      accumulate_element(operand, accumulator(route->dst + t * route->dst_stride + c * 4), bits,
                         route->accumulate);
      route->newest_written = std::max(route->newest_written, t);
      if (--route->outputs_left == 0) {
        route->matmul->completion = cycle;
        route->matmul->retirement->when = cycle;
        route->matmul = nullptr;
      }
    }
    for (auto& route : routes_) {
      if (route.newest_written < 0) continue;
      m_.use_port(Buffer::Accumulator, route.dst + route.newest_written * route.dst_stride,
                  route.out_cols * 4);
      route.newest_written = -1;
    }
    while (!routes_.empty() && routes_.front().outputs_left == 0 &&
           *std::min_element(column_outputs_.begin(), column_outputs_.end()) >=
               routes_.front().first_vector + routes_.front().vectors) {
      routes_.pop_front();
    }
  }

  OutputRoute* route_of(int64_t vector) {
    for (auto& route : routes_) {
      if (vector >= route.first_vector && vector < route.first_vector + route.vectors)
        return &route;
    }
    return nullptr;
  }

  // Output stationary, one matmul at a time: its steps enter, the array steps until every
  // operand pair has met, then drains; each valid row leaving is the next result row, from the
  // bottom row up.
  void step_output_stationary(Activity& activity) {
    const int64_t cycle = m_.cycle;
    Matmul* mm = matmuls_.empty() ? nullptr : &matmuls_.front();
    if (mm && mm->vectors_fed < mm->count) {
      const int64_t t = mm->vectors_fed++;
      last_vector_ = t;
      last_vectors_ = mm->count;
      const int64_t left = mm->src + t * mm->src_stride, top = mm->top + t * mm->top_stride;
      array_->step_os(buffer(mm->src_buffer, left), static_cast<int>(mm->feed_rows),
                      buffer(mm->top_buffer, top), static_cast<int>(mm->out_cols));
      m_.use_port(mm->src_buffer, left, mm->feed_rows * element_);
      m_.use_port(mm->top_buffer, top, mm->out_cols * element_);
      activity.injecting = mm;
      return;
    }
    if (!mm || array_->pairs_pending() > 0) {
      array_->step_os(nullptr, 0, nullptr, 0);  // pairs still to meet, or stray operands leaving
      return;
    }
    array_->drain_os();
    const auto valid = array_->bottom_valid();
    if (std::find(valid.begin(), valid.end(), uint8_t{1}) != valid.end()) {
      TPUSIM_CHECK(
          mm->rows_written < mm->feed_rows,
          fmt::format("MXU: more result rows left the PE array than the matmul_os at line {} has",
                      mm->issued.instruction->location.line));
      const int64_t row = mm->feed_rows - 1 - mm->rows_written++;
      const DType operand = m_.arch.mxu.operand_type;
      const auto bottom = array_->bottom();
      for (int64_t c = 0; c < mm->out_cols; ++c) {
        uint32_t bits;
        std::memcpy(&bits, bottom.data() + c * 4, 4);
        accumulate_element(operand, accumulator(mm->dst + row * mm->dst_stride + c * 4), bits,
                           mm->accumulate);
      }
      m_.use_port(Buffer::Accumulator, mm->dst + row * mm->dst_stride, mm->out_cols * 4);
    }
    if (!array_->holds_partial_sums()) {
      TPUSIM_CHECK(
          mm->rows_written == mm->feed_rows,
          fmt::format(
              "MXU: the PE array drained {} of the {} result rows of the matmul_os at line {}",
              mm->rows_written, mm->feed_rows, mm->issued.instruction->location.line));
      mm->completion = cycle;
      mm->retirement->when = cycle;
    }
  }

  Machine& m_;
  Queue queue_;
  int64_t rows_ = 0, cols_ = 0, element_ = 1;
  std::array<Bank, 2> banks_;
  int current_bank_ = 1;  // the first tile goes to bank 0
  std::optional<Load> load_;
  std::deque<Matmul> matmuls_;  // issued and not done
  std::deque<Retirement> retire_;
  // Fast fidelity.
  MxuClosedForms closed_forms_;
  int64_t stream_free_ = 0;
  int64_t last_retire_ = 0;
  // PE fidelity.
  std::unique_ptr<SystolicArray> array_;
  std::deque<OutputRoute> routes_;
  int64_t last_vector_ = -1, last_vectors_ = 0;
  int64_t array_cycles_before_ = 0;
  std::vector<int64_t> column_outputs_;  // valid outputs seen leaving each column
  int64_t vectors_issued_ = 0;
  std::vector<uint8_t> gathered_;  // a gathered vector, assembled for the array
  CycleRecord last_;
};

}  // namespace
}  // namespace tpusim

namespace tpusim {
namespace {

// ------------------------------------------------------------------------------------------
// VPU: one instruction at a time issues lane-vectors (`lanes` elements of one row; a row of
// `cols` elements takes ceil(cols / lanes) vectors), one every `interval` cycles when the
// ports of the banks its operands live in have room (else a bank-conflict stall); the last
// result is out `latency - 1` cycles after the last vector went in. The next instruction may
// start issuing while that tail drains. Values are computed at issue (as for the DMA).
class VpuUnit {
 public:
  explicit VpuUnit(Machine& m) : m_(m), queue_(m.program, Unit::Vpu) {}

  bool finished() const { return !queue_.head() && !current_ && tail_.empty(); }
  const Instruction* head() const { return queue_.head(); }
  bool in_flight() const { return current_ || !tail_.empty(); }
  const CycleRecord& last() const { return last_; }

  void tick() {
    const int64_t cycle = m_.cycle;
    bool blocked_on_tokens = false, conflict = false;
    const Instruction* head = queue_.head();
    if (!current_ && head && cycle >= next_issue_) {
      if (m_.tokens_available(*head)) {
        StationaryTile none;
        InstructionInstance probe{head, queue_.loops().data()};
        auto accesses = instruction_accesses(m_.program, m_.target, probe, none);
        Op op;
        op.issued = m_.issue(Unit::Vpu, *head, queue_.loops(), queue_.depth(), accesses);
        execute_vpu(op.issued.instance(), m_.state, m_.traffic(op.issued.label));
        op.timing = timing(head->opcode);
        op.vectors_per_row = (head->cols + m_.arch.vpu.lanes - 1) / m_.arch.vpu.lanes;
        op.vectors = head->rows * op.vectors_per_row;
        current_ = op;
        queue_.pop();
      } else {
        blocked_on_tokens = true;
      }
    }
    if (current_ && cycle >= next_issue_) {
      if (issue_vector(*current_)) {
        next_issue_ = cycle + current_->timing.interval;
        if (++current_->issued_vectors == current_->vectors) {
          tail_.emplace_back(cycle + current_->timing.latency - 1, current_->issued);
          current_.reset();
        }
      } else {
        conflict = true;
      }
    }
    const int label = current_ ? current_->issued.label : (!tail_.empty() ? tail_.front().second.label : 0);
    const Instruction* working =
        current_ ? current_->issued.instruction : (!tail_.empty() ? tail_.front().second.instruction : nullptr);
    const bool busy = current_ || !tail_.empty();
    while (!tail_.empty() && tail_.front().first <= cycle) {
      m_.complete(Unit::Vpu, tail_.front().second);
      tail_.pop_front();
    }
    if (conflict) {
      last_ = {CycleCause::BankConflict, label, std::nullopt, working};
    } else if (busy) {
      last_ = {CycleCause::Busy, label, std::nullopt, working};
    } else if (blocked_on_tokens) {
      last_ = {m_.token_stall(*head), m_.label_of(*head), std::nullopt, head};
    } else {
      last_ = {CycleCause::Idle, 0, std::nullopt};
    }
    m_.account(Unit::Vpu, last_, cycle, 1);
  }

  int64_t next_event() const {
    const int64_t cycle = m_.cycle;
    if (current_) return std::max(cycle + 1, next_issue_);
    int64_t next = kNever;
    for (const auto& t : tail_) next = std::min(next, std::max(t.first, cycle + 1));
    if (!tail_.empty()) next = std::min(next, std::max(tail_.back().first + 1, cycle + 1));
    if (queue_.head() && m_.tokens_available(*queue_.head())) next = std::min(next, std::max(cycle + 1, next_issue_));
    return next;
  }

 private:
  struct Op {
    Issued issued;
    VectorOpTiming timing;
    int64_t vectors = 0, vectors_per_row = 1, issued_vectors = 0;
  };

  VectorOpTiming timing(Opcode op) const {
    const VpuConfig& v = m_.arch.vpu;
    switch (op) {
      case Opcode::VpuAdd:
      case Opcode::VpuSub: return v.add;
      case Opcode::VpuMul: return v.mul;
      case Opcode::VpuMax:
      case Opcode::VpuMin:
      case Opcode::VpuRelu: return v.max;
      case Opcode::VpuExp:
      case Opcode::VpuGelu: return v.exp;
      case Opcode::VpuReciprocal: return v.reciprocal;
      case Opcode::VpuRsqrt: return v.rsqrt;
      case Opcode::VpuReduceSum:
      case Opcode::VpuReduceMax: return v.reduction;
      default: return v.convert;
    }
  }

  // Claims port bandwidth for the next lane-vector's operands; false if a bank is too busy.
  bool issue_vector(const Op& op) {
    const Instruction& in = *op.issued.instruction;
    const InstructionInstance instance = op.issued.instance();
    const int64_t row = op.issued_vectors / op.vectors_per_row;
    const int64_t chunk = op.issued_vectors % op.vectors_per_row;
    const int64_t lanes = m_.arch.vpu.lanes;
    const int64_t elements = std::min(lanes, in.cols - chunk * lanes);
    struct Need {
      Buffer buffer;
      int64_t address, bytes;
    };
    std::vector<Need> needs;
    auto operand = [&](const BufferRef& ref, int64_t stride, bool one_per_row) {
      const int64_t e = dtype_size(ref.type);
      const int64_t row_stride = stride != 0 ? stride : (one_per_row ? e : in.cols * e);
      const int64_t address = instance.address(ref) + row * row_stride + (one_per_row ? 0 : chunk * lanes * e);
      const int64_t bytes = one_per_row ? (chunk == 0 ? e : 0) : elements * e;
      if (bytes > 0) needs.push_back({ref.buffer, address, bytes});
    };
    operand(in.src, in.src_stride, false);
    if (in.src2.present) operand(in.src2, in.src2_stride, in.broadcast);
    operand(in.dst, in.dst_stride, is_vpu_reduction(in.opcode));
    // Check before claiming: an operand pair in one bank needs room for both.
    for (size_t i = 0; i < needs.size(); ++i) {
      int64_t total = 0;
      for (const auto& n : needs) {
        if (n.buffer == needs[i].buffer && m_.bank_of(n.buffer, n.address) == m_.bank_of(needs[i].buffer, needs[i].address)) {
          total += n.bytes;
        }
      }
      // A request larger than a whole port takes it alone (the cost shows up as the interval).
      int64_t capacity = m_.port_capacity[static_cast<int>(needs[i].buffer)];
      if (std::min(total, capacity) > m_.port_available(needs[i].buffer, needs[i].address)) return false;
    }
    for (const auto& n : needs) m_.use_port(n.buffer, n.address, n.bytes);
    return true;
  }

  Machine& m_;
  Queue queue_;
  std::optional<Op> current_;
  std::deque<std::pair<int64_t, Issued>> tail_;
  int64_t next_issue_ = 0;
  CycleRecord last_;
};

}  // namespace

// Registers the totals as named counters (docs/cycle-model.md lists them).
void register_counters(SimulationResult& result) {
  CounterRegistry& c = result.counters;
  const LabelStats& t = result.totals;
  c.add("cycles.total", "cycles", "cycles from the first issue to the last completion", result.total_cycles);
  const char* unit_descriptions[kUnitCount] = {"the DMA engine", "the matrix unit", "the vector unit"};
  const char* cause_descriptions[kCycleCauseCount] = {
      "working", "stalled on a token signalled by the DMA", "stalled on a token from the MXU or VPU",
      "stalled waiting for a weight tile (to arrive, or for its bank to drain)",
      "stalled because a buffer bank's port was taken", "nothing left to do"};
  for (int u = 0; u < kUnitCount; ++u) {
    for (int k = 0; k < kCycleCauseCount; ++k) {
      c.add(fmt::format("{}.cycles.{}", unit_name(static_cast<Unit>(u)), cycle_cause_name(static_cast<CycleCause>(k))),
            "cycles", fmt::format("cycles {} spent {}", unit_descriptions[u], cause_descriptions[k]), t.cycles[u][k]);
    }
  }
  c.add("mxu.busy.computing", "cycles", "MXU cycles in which a vector entered the array", t.mxu_activity[0]);
  c.add("mxu.busy.shifting_weights", "cycles", "MXU cycles shifting a tile in with no vector entering", t.mxu_activity[1]);
  c.add("mxu.busy.draining", "cycles", "MXU cycles with results still flowing out and nothing entering", t.mxu_activity[2]);
  c.add("macs.useful", "MACs", "multiply-accumulates of valid operand pairs", t.useful_macs);
  c.add("macs.mapped", "MACs", "PEs x cycles of the array the tiles occupied (rows x cols per vector)", t.mapped_macs);
  c.add("instructions", "instructions", "instruction instances executed", t.instructions);
  for (int b = 0; b < kBufferCount; ++b) {
    std::string name(buffer_name(static_cast<Buffer>(b)));
    c.add(name + ".bytes_read", "bytes", "bytes read from the " + name, t.traffic.buffer_read[b]);
    c.add(name + ".bytes_written", "bytes", "bytes written to the " + name, t.traffic.buffer_written[b]);
  }
  c.add("dram.bytes_read", "bytes", "bytes read from DRAM (padding is generated, not read)", t.traffic.dram_read);
  c.add("dram.bytes_written", "bytes", "bytes written to DRAM", t.traffic.dram_written);
  c.add("pe.updates", "updates", "PE register updates stepped by the PE-level array", result.pe_updates);
}

// ------------------------------------------------------------------------------------------
// The cycle loop. Each cycle the units tick in a fixed order -- MXU, VPU, DMA, which is also
// the priority order for buffer ports -- then the tokens signalled this cycle become visible
// (an instruction can start the cycle after the one its token was signalled in). When no unit
// has per-cycle work and nothing completed this cycle, the loop jumps to the next cycle at which
// something changes and charges the skipped cycles to what each unit was doing.
SimulationResult simulate_program(const Program& program, const ArchConfig& arch, MachineState& state,
                                  const SimulationOptions& options) {
  const SourceLocation where{program.file, 0, 0, ""};
  const int64_t instances = instruction_instances(program);
  if (instances > options.limits.max_instructions) {
    throw Error(where, fmt::format("the program executes {} instructions (each iteration of a repeat counted), more "
                                   "than --max-instructions allows ({}); shorten its loops, or raise "
                                   "--max-instructions",
                                   instances == INT64_MAX ? std::string("more than 2^63") : std::to_string(instances),
                                   options.limits.max_instructions));
  }
  if (options.record_trace) {
    require_memory(multiply_or_fail(instances, static_cast<int64_t>(sizeof(TraceEvent)) + 16, where, "the trace"),
                   options.limits, where, "the trace (one event per instruction executed)");
  }
  if (options.fidelity == Fidelity::Pe) {
    // A few registers of a few bytes each per PE, in two planes: 64 bytes bounds them.
    require_memory(arch.mxu.rows * arch.mxu.cols * 64, options.limits, where, "the PE-level array (--fidelity pe)");
  }
  Machine machine(program, arch, state, options);
  MxuUnit mxu(machine);
  VpuUnit vpu(machine);
  DmaUnit dma(machine);
  if (mxu.finished()) machine.hazards.unit_finished(Unit::Mxu);
  if (vpu.finished()) machine.hazards.unit_finished(Unit::Vpu);
  if (dma.finished()) machine.hazards.unit_finished(Unit::Dma);

  SimulationResult result;
  int64_t& cycle = machine.cycle;
  auto report_progress = [&] {
    if (options.progress) {
      options.progress({cycle, machine.instructions_issued, instances, machine.labels[static_cast<size_t>(machine.last_label)]});
    }
  };
  report_progress();
  // The observer sees the cycle just ticked, then each skipped one (nothing changes in them).
  auto observe = [&](int64_t through) {
    if (!options.observe) return;
    CycleObservation seen;
    seen.array = mxu.array();
    const CycleRecord* records[kUnitCount] = {&dma.last(), &mxu.last(), &vpu.last()};
    for (int u = 0; u < kUnitCount; ++u) {
      const CycleRecord& r = *records[u];
      seen.units[static_cast<size_t>(u)] = {r.cause, r.activity, r.instruction,
                                            machine.labels[static_cast<size_t>(r.label)]};
    }
    for (const auto& stats : machine.per_label) seen.traffic += stats.traffic;
    for (int64_t c = cycle; c <= through; ++c) {
      seen.cycle = c;
      seen.vector = c == cycle ? mxu.last_vector() : -1;
      seen.array_clocked = c == cycle && mxu.array_clocked();
      seen.vectors = mxu.last_vectors();
      options.observe(seen);
    }
  };
  uint32_t steps = 0;
  while (!(mxu.finished() && vpu.finished() && dma.finished())) {
    if ((++steps & 0x1fff) == 0) report_progress();
    machine.reset_ports();
    mxu.tick();
    vpu.tick();
    dma.tick();
    if (mxu.finished()) machine.hazards.unit_finished(Unit::Mxu);
    if (vpu.finished()) machine.hazards.unit_finished(Unit::Vpu);
    if (dma.finished()) machine.hazards.unit_finished(Unit::Dma);
    const bool changed = machine.apply_signals();
    if (mxu.finished() && vpu.finished() && dma.finished()) {
      result.total_cycles = cycle + 1;
      observe(cycle);
      break;
    }
    int64_t next = changed ? cycle + 1 : std::min({mxu.next_event(), vpu.next_event(), dma.next_event()});
    if (next == kNever) {
      // Nothing in flight and nothing can issue: a deadlock (the watchdog).
      std::string lines;
      const Instruction* heads[kUnitCount] = {dma.head(), mxu.head(), vpu.head()};
      for (int u = 0; u < kUnitCount; ++u) {
        if (heads[u]) lines += "\n" + describe_blocked_wait(program, static_cast<Unit>(u), *heads[u], machine.token_counts);
      }
      throw Error({program.file, 0, 0, ""},
                  fmt::format("deadlock at cycle {}: no unit can continue; every remaining "
                              "instruction waits on a token that nothing will signal:{}", cycle, lines));
    }
    if (next > options.limits.max_cycles) {
      throw Error(where, fmt::format("the simulation reached --max-cycles ({}) before the program finished; raise "
                                     "--max-cycles to run it longer",
                                     options.limits.max_cycles));
    }
    observe(next - 1);
    if (next > cycle + 1) {
      const int64_t skipped = next - cycle - 1;
      machine.account(Unit::Mxu, mxu.last(), cycle + 1, skipped);
      machine.account(Unit::Vpu, vpu.last(), cycle + 1, skipped);
      machine.account(Unit::Dma, dma.last(), cycle + 1, skipped);
    }
    cycle = next;
  }
  report_progress();
  result.pe_updates = mxu.pe_updates();
  result.labels = machine.labels;
  result.per_label = machine.per_label;
  result.trace = std::move(machine.trace);
  machine.activity.finish(result.total_cycles);
  result.activity = std::move(machine.activity);
  for (const auto& stats : result.per_label) {
    for (int u = 0; u < kUnitCount; ++u) {
      for (int c = 0; c < kCycleCauseCount; ++c) result.totals.cycles[u][c] += stats.cycles[u][c];
    }
    for (int a = 0; a < kMxuActivityCount; ++a) result.totals.mxu_activity[a] += stats.mxu_activity[a];
    result.totals.useful_macs += stats.useful_macs;
    result.totals.mapped_macs += stats.mapped_macs;
    result.totals.instructions += stats.instructions;
    result.totals.traffic += stats.traffic;
    auto& by_tensor = result.totals.dram_by_tensor;
    if (by_tensor.size() < stats.dram_by_tensor.size()) by_tensor.resize(stats.dram_by_tensor.size());
    for (size_t t = 0; t < stats.dram_by_tensor.size(); ++t) {
      by_tensor[t][0] += stats.dram_by_tensor[t][0];
      by_tensor[t][1] += stats.dram_by_tensor[t][1];
    }
  }
  result.totals.first_cycle = 0;
  result.totals.last_cycle = result.total_cycles - 1;
  result.total_cycles = std::max<int64_t>(result.total_cycles, 0);
  register_counters(result);
  return result;
}

}  // namespace tpusim
