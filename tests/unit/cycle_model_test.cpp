// Exact-cycle tests of the timing contract in docs/cycle-model.md. Each test builds a small
// program, computes the expected issue and completion cycles from the documented closed forms
// (the functions in the first block below, one per formula of the doc), and checks them at
// both fidelities, which must agree on every cycle, counter and byte. "One cycle early" is
// checked at the PE level: a VPU copy issued at a chosen cycle snapshots the accumulators, so a
// test sees that an output is absent one cycle before its formula and present at it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ir/program.h"
#include "simulator/arch.h"
#include "simulator/report_model.h"
#include "simulator/semantics.h"
#include "simulator/simulator.h"
#include "simulator/systolic_array.h"
#include "test_util.h"

using namespace tpusim;

namespace {

// --- The closed forms of docs/cycle-model.md (s = issue cycle) -------------------------------

// ws/is load_stationary of K rows: rows shift in during [s, s+K-1]; usable from s+K.
int64_t load_done(int64_t s, int64_t K) { return s + K - 1; }
// ws/is matmul of T vectors through a K x N tile on an R x C array.
int64_t ws_output_cycle(int64_t s, int64_t t, int64_t c, int64_t R) { return s + t + R - 1 + c; }
int64_t ws_matmul_done(int64_t s, int64_t T, int64_t R, int64_t N) { return s + T + R + N - 3; }
// The first cycle in which a new tile may shift into the bank the matmul used.
int64_t bank_free(int64_t s, int64_t T, int64_t K, int64_t C) { return s + T + K + C - 2; }
// os matmul_os of T steps with M x N outputs on an R-row array.
int64_t os_row_cycle(int64_t s, int64_t T, int64_t M, int64_t N, int64_t R, int64_t m) {
  return s + T + M + N - 2 + R - 1 - m;
}
int64_t os_matmul_done(int64_t s, int64_t T, int64_t M, int64_t N, int64_t R) { return s + T + M + N + R - 3; }
// SCALE-Sim's cycles per ws/is fold, with Sr = rows and Sc = cols.
int64_t scalesim_ws_fold(int64_t rows, int64_t cols, int64_t T) { return 2 * rows + cols + T - 2; }
// A lone DMA transfer of `bytes` with latency L, DRAM bandwidth W = num/den bytes per cycle and
// a bank port of P bytes per cycle.
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t dma_done(int64_t s, int64_t L, int64_t bytes, int64_t num, int64_t den, int64_t P) {
  return s + L + std::max(ceil_div(bytes * den, num), ceil_div(bytes, P)) - 1;
}
// A VPU op of V lane-vectors with interval I and latency Lat, no port conflicts.
int64_t vpu_done(int64_t s, int64_t V, int64_t I, int64_t Lat) { return s + (V - 1) * I + Lat - 1; }
int64_t vpu_next_issue(int64_t s, int64_t V, int64_t I) { return s + V * I; }

// --- Running programs -------------------------------------------------------------------------

struct Event {
  Unit unit;
  int64_t begin, end;
  std::string label;
  bool operator==(const Event&) const = default;
};

struct Run {
  SimulationResult result;  // its trace is moved into `events`
  MachineState state;
  std::vector<Event> events;

  const Event& event(const std::string& label) const {
    const Event* found = nullptr;
    for (const auto& e : events) {
      if (e.label == label) {
        REQUIRE(found == nullptr);  // labels are unique in these programs
        found = &e;
      }
    }
    INFO("no event labelled " << label);
    REQUIRE(found != nullptr);
    return *found;
  }
  int64_t counter(const std::string& name) const { return result.counters.value(name); }
  int64_t cycles(Unit unit, CycleCause cause) const {
    return result.totals.cycles[static_cast<int>(unit)][static_cast<int>(cause)];
  }
  int64_t activity(MxuActivity a) const { return result.totals.mxu_activity[static_cast<int>(a)]; }
};

using Init = std::function<void(MachineState&)>;

ArchConfig teach(std::vector<std::string> overrides = {}) { return load_arch("teach-4x4", overrides); }

// Every cycle of every unit has one cause, and the MXU's busy cycles split into activities.
void check_accounting(const SimulationResult& r) {
  for (int u = 0; u < kUnitCount; ++u) {
    int64_t sum = 0;
    for (int c = 0; c < kCycleCauseCount; ++c) sum += r.totals.cycles[u][c];
    INFO("unit " << unit_name(static_cast<Unit>(u)));
    CHECK(sum == r.total_cycles);
  }
  const auto& mxu = r.totals.cycles[static_cast<int>(Unit::Mxu)];
  CHECK(mxu[static_cast<int>(CycleCause::Busy)] ==
        r.totals.mxu_activity[0] + r.totals.mxu_activity[1] + r.totals.mxu_activity[2]);
}

Run simulate(const std::string& text, const ArchConfig& arch, Fidelity fidelity, const Init& init = {},
             bool check_races = true) {
  Program program = parse_program(text, "cycle_model_test.tpu");
  const TargetLimits target = target_limits(arch);
  verify_program_or_throw(program, target);
  Run run;
  run.state = make_machine_state(program, target);
  if (init) init(run.state);
  SimulationOptions options;
  options.fidelity = fidelity;
  options.record_trace = true;
  options.check_races = check_races;
  run.result = simulate_program(program, arch, run.state, options);
  for (const auto& e : run.result.trace) run.events.push_back({e.unit, e.begin, e.end, e.instruction->label});
  run.result.trace.clear();  // its instruction pointers die with `program`
  check_accounting(run.result);
  return run;
}

// Runs at both fidelities, requires identical cycles, counters and bytes, returns the PE run.
Run simulate_both(const std::string& text, const ArchConfig& arch, const Init& init = {}) {
  Run pe = simulate(text, arch, Fidelity::Pe, init);
  Run fast = simulate(text, arch, Fidelity::Fast, init);
  REQUIRE(pe.result.total_cycles == fast.result.total_cycles);
  REQUIRE(pe.events == fast.events);
  const auto& a = pe.result.counters.all();
  const auto& b = fast.result.counters.all();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].name == b[i].name);
    if (a[i].name == "pe.updates") continue;  // only the PE fidelity steps registers
    INFO("counter " << a[i].name);
    CHECK(a[i].value == b[i].value);
  }
  CHECK(pe.state.buffers == fast.state.buffers);
  CHECK(pe.state.dram == fast.state.dram);
  return pe;
}

// Small positive operands in ub and wb, so every output of a product is positive.
void fill_operands(MachineState& state) {
  auto& ub = state.buffers[static_cast<int>(Buffer::Unified)];
  auto& wb = state.buffers[static_cast<int>(Buffer::Weight)];
  for (size_t i = 0; i < 1024; ++i) ub[i] = static_cast<uint8_t>(1 + i % 3);
  for (size_t i = 0; i < wb.size(); ++i) wb[i] = static_cast<uint8_t>(1 + i % 2);
}

// The int32 accumulators [rows x cols] at `acc_address` (row stride `stride`) as they are at the
// end of cycle `at`, at PE fidelity. `text` must not use the VPU: two VPU instructions go first
// in its queue, a one-vector relu whose interval (vpu.max.interval) is `at`, then the copy,
// which therefore issues at `at` and reads the accumulators then (the MXU ticks first). Race
// checks are off, as the copy reads results without a token on purpose.
std::vector<int32_t> accumulators_at(const std::string& text, std::vector<std::string> overrides, int64_t at,
                                     int64_t acc_address, int64_t rows, int64_t cols, int64_t stride,
                                     const Init& init) {
  REQUIRE(at >= 1);
  overrides.push_back(fmt::format("vpu.max.interval={}", at));
  const std::string probe = fmt::format(
      "vpu.relu dst=acc[1536]:int32 src=acc[1536]:int32 cols=1 label=\"timer\"\n"
      "vpu.copy dst=ub[3072]:int32 src=acc[{}]:int32 rows={} cols={} src_stride={} label=\"probe\"\n",
      acc_address, rows, cols, stride);
  Run run = simulate(text + probe, teach(overrides), Fidelity::Pe, init, /*check_races=*/false);
  REQUIRE(run.event("probe").begin == at);
  std::vector<int32_t> values(static_cast<size_t>(rows * cols));
  std::memcpy(values.data(), run.state.buffers[static_cast<int>(Buffer::Unified)].data() + 3072, values.size() * 4);
  return values;
}

// A weight-stationary tile: load K x N weights, stream T vectors, a consumer waits for it.
std::string ws_tile_program(int64_t K, int64_t N, int64_t T, bool with_consumer) {
  std::string text = fmt::format(
      "token done mxu -> vpu\n"
      "mxu.load_stationary src=wb[0] rows={0} cols={1} stride={1} label=\"load\"\n"
      "mxu.matmul src=ub[0] stride={0} count={2} dst=acc[0] dst_stride={3} {4}label=\"matmul\"\n",
      K, N, T, 4 * N, with_consumer ? "signal=done " : "");
  if (with_consumer) {
    text += fmt::format("vpu.copy dst=ub[2048]:int32 src=acc[0]:int32 rows={} cols={} wait=done label=\"consumer\"\n", T, N);
  } else {
    text.erase(0, text.find('\n') + 1);  // no token
  }
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("ws and is: one tile loads in K cycles and completes at s+T+R+N-3", "[cycle-model]") {
  const int64_t R = 6, C = 5;
  struct Shape {
    int64_t K, N, T;
  };
  // A full tile, a partial (edge) tile with one vector, a single row and column, a long stream.
  const Shape shapes[] = {{6, 5, 4}, {3, 2, 1}, {1, 1, 3}, {6, 5, 1}, {4, 3, 9}};
  for (const char* dataflow : {"ws", "is"}) {
    for (const Shape& sh : shapes) {
      INFO(dataflow << " K=" << sh.K << " N=" << sh.N << " T=" << sh.T);
      const std::vector<std::string> overrides = {"mxu.rows=6", "mxu.cols=5", fmt::format("mxu.dataflow={}", dataflow)};
      Run run = simulate_both(ws_tile_program(sh.K, sh.N, sh.T, true), teach(overrides), fill_operands);

      const Event& load = run.event("load");
      CHECK(load.begin == 0);
      CHECK(load.end == load_done(0, sh.K));
      const Event& matmul = run.event("matmul");
      const int64_t s = sh.K;  // usable from load start + K
      CHECK(matmul.begin == s);
      CHECK(matmul.end == ws_matmul_done(s, sh.T, R, sh.N));
      // Token visibility: the consumer starts the cycle after the producer's completion.
      const Event& consumer = run.event("consumer");
      CHECK(consumer.begin == matmul.end + 1);
      CHECK(consumer.end == vpu_done(consumer.begin, sh.T * ceil_div(sh.N, 4), 1, 2));  // 4 lanes
      CHECK(run.result.total_cycles == consumer.end + 1);

      // The MXU's busy split: K shifting, T computing, then R+N-2 draining.
      CHECK(run.activity(MxuActivity::ShiftingWeights) == sh.K);
      CHECK(run.activity(MxuActivity::Computing) == sh.T);
      CHECK(run.activity(MxuActivity::Draining) == R + sh.N - 2);
      CHECK(run.cycles(Unit::Mxu, CycleCause::Busy) == matmul.end + 1);
      CHECK(run.result.totals.useful_macs == sh.T * sh.K * sh.N);
      CHECK(run.result.totals.mapped_macs == sh.T * R * C);

      // At the PE level, output (t, c) reaches the accumulators exactly at s+t+R-1+c: absent
      // one cycle before, present from then on. Probed every cycle from before the first
      // output to the completion.
      const std::string bare = ws_tile_program(sh.K, sh.N, sh.T, false);
      const std::vector<int32_t> final_values =
          accumulators_at(bare, overrides, matmul.end + 1, 0, sh.T, sh.N, 4 * sh.N, fill_operands);
      for (int64_t at = s + R - 2; at <= matmul.end; ++at) {
        const std::vector<int32_t> now = accumulators_at(bare, overrides, at, 0, sh.T, sh.N, 4 * sh.N, fill_operands);
        for (int64_t t = 0; t < sh.T; ++t) {
          for (int64_t c = 0; c < sh.N; ++c) {
            INFO("cycle " << at << " output (" << t << "," << c << ")");
            const size_t i = static_cast<size_t>(t * sh.N + c);
            REQUIRE(final_values[i] > 0);
            CHECK(now[i] == (at >= ws_output_cycle(s, t, c, R) ? final_values[i] : 0));
          }
        }
      }
    }
  }
}

TEST_CASE("os: T steps then R drain cycles with row m written at s+T+M+N-2+R-1-m", "[cycle-model]") {
  const int64_t R = 6;
  struct Shape {
    int64_t M, N, T;
  };
  const Shape shapes[] = {{6, 5, 4}, {2, 3, 5}, {1, 1, 1}, {6, 1, 2}};
  const std::vector<std::string> overrides = {"mxu.rows=6", "mxu.cols=5", "mxu.dataflow=os"};
  for (const Shape& sh : shapes) {
    INFO("M=" << sh.M << " N=" << sh.N << " T=" << sh.T);
    auto matmul = [&](const char* label, int64_t dst, const char* extra) {
      return fmt::format(
          "mxu.matmul_os left=ub[0] left_stride={0} top=wb[0] top_stride={1} rows={0} cols={1} count={2} "
          "dst=acc[{3}] dst_stride={4} {5}label=\"{6}\"\n",
          sh.M, sh.N, sh.T, dst, 4 * sh.N, extra, label);
    };
    const std::string text = "token done mxu -> vpu\n" + matmul("first", 0, "") + matmul("second", 512, "signal=done ") +
                              "vpu.relu dst=acc[1024]:int32 src=acc[512]:int32 cols=1 wait=done label=\"consumer\"\n";
    Run run = simulate_both(text, teach(overrides), fill_operands);

    const Event& first = run.event("first");
    CHECK(first.begin == 0);
    CHECK(first.end == os_matmul_done(0, sh.T, sh.M, sh.N, R));
    // One os matmul at a time: the next enters the cycle after the drain ends.
    const Event& second = run.event("second");
    CHECK(second.begin == first.end + 1);
    CHECK(second.end == os_matmul_done(second.begin, sh.T, sh.M, sh.N, R));
    CHECK(run.event("consumer").begin == second.end + 1);
    CHECK(run.activity(MxuActivity::Computing) == 2 * sh.T);
    CHECK(run.activity(MxuActivity::Draining) == 2 * (sh.M + sh.N + R - 2));
    CHECK(run.activity(MxuActivity::ShiftingWeights) == 0);

    // PE level: the drain writes row m of the outputs at its cycle, not one earlier.
    const std::string bare = matmul("first", 0, "");
    const std::vector<int32_t> final_values = accumulators_at(bare, overrides, first.end + 1, 0, sh.M, sh.N, 4 * sh.N, fill_operands);
    for (int64_t at = os_row_cycle(0, sh.T, sh.M, sh.N, R, sh.M - 1) - 1; at <= first.end; ++at) {
      const std::vector<int32_t> now = accumulators_at(bare, overrides, at, 0, sh.M, sh.N, 4 * sh.N, fill_operands);
      for (int64_t m = 0; m < sh.M; ++m) {
        for (int64_t n = 0; n < sh.N; ++n) {
          INFO("cycle " << at << " output (" << m << "," << n << ")");
          const size_t i = static_cast<size_t>(m * sh.N + n);
          REQUIRE(final_values[i] > 0);
          CHECK(now[i] == (at >= os_row_cycle(0, sh.T, sh.M, sh.N, R, m) ? final_values[i] : 0));
        }
      }
    }
  }
}

TEST_CASE("ws: back-to-back matmuls on one tile pipeline (the next enters at s+T)", "[cycle-model]") {
  const int64_t R = 6, K = 6, N = 5, T1 = 3, T2 = 4;
  const std::string text =
      "mxu.load_stationary src=wb[0] rows=6 cols=5 stride=5 label=\"load\"\n"
      "mxu.matmul src=ub[0] stride=6 count=3 dst=acc[0] dst_stride=20 label=\"m1\"\n"
      "mxu.matmul src=ub[18] stride=6 count=4 dst=acc[60] dst_stride=20 label=\"m2\"\n";
  Run run = simulate_both(text, teach({"mxu.rows=6", "mxu.cols=5"}), fill_operands);
  const Event& m1 = run.event("m1");
  const Event& m2 = run.event("m2");
  CHECK(m1.begin == K);
  CHECK(m1.end == ws_matmul_done(K, T1, R, N));
  CHECK(m2.begin == m1.begin + T1);  // TPUv1: B x 256 takes B pipelined cycles
  CHECK(m2.end == ws_matmul_done(m2.begin, T2, R, N));
  CHECK(run.activity(MxuActivity::Computing) == T1 + T2);  // no bubble between them
  CHECK(run.result.total_cycles == m2.end + 1);
}

TEST_CASE("ws double-buffered: the next tile shifts in while the current one computes", "[cycle-model]") {
  const int64_t K = 4, C = 4, R = 4, N = 4;
  auto program = [](int64_t T) {
    std::string text;
    for (int i = 0; i < 3; ++i) {
      text += fmt::format("mxu.load_stationary src=wb[{}] rows=4 cols=4 stride=4 label=\"l{}\"\n", 16 * i, i + 1);
      text += fmt::format("mxu.matmul src=ub[0] stride=4 count={} dst=acc[{}] dst_stride=16 label=\"m{}\"\n", T,
                          256 * i, i + 1);
    }
    return text;
  };
  for (int64_t T : {1, 3, 4, 5, 12}) {
    INFO("T=" << T);
    Run run = simulate_both(program(T), teach(), fill_operands);
    const Event &l1 = run.event("l1"), &m1 = run.event("m1"), &l2 = run.event("l2"), &m2 = run.event("m2"),
                &l3 = run.event("l3"), &m3 = run.event("m3");
    const int64_t s1 = K;
    CHECK(m1.begin == s1);
    CHECK(l1.end == load_done(0, K));
    // l2 goes to the other bank: it issues right behind m1 (one MXU issue per cycle)...
    CHECK(l2.begin == s1 + 1);
    // ...and retires in order, no earlier than m1.
    CHECK(l2.end == std::max(load_done(l2.begin, K), m1.end));
    // m2 needs the stream (s1+T) and its tile (l2 + K): the load is hidden when T >= K+1.
    CHECK(m2.begin == std::max(s1 + T, l2.begin + K));
    if (T >= K + 1) CHECK(m2.begin == m1.begin + T);
    // l3 goes back to m1's bank: it waits for the previous load to finish shifting and for
    // m1's operands to leave the array (and, one issue per cycle, behind m2).
    CHECK(l3.begin == std::max({l2.begin + K, bank_free(s1, T, K, C), m2.begin + 1}));
    CHECK(m3.begin == std::max(m2.begin + T, l3.begin + K));
    CHECK(m3.end == ws_matmul_done(m3.begin, T, R, N));
  }
}

TEST_CASE("ws: a tile waits for its bank to drain and the single-buffered period is SCALE-Sim's", "[cycle-model]") {
  const int64_t R = 6, C = 5;
  for (int64_t N : {5, 2}) {
    for (int64_t T : {1, 4}) {
      const int64_t K = 6;
      INFO("N=" << N << " T=" << T);
      std::string text;
      for (int i = 0; i < 3; ++i) {
        text += fmt::format("mxu.load_stationary src=wb[{}] rows=6 cols={} stride={} label=\"l{}\"\n", 30 * i, N, N, i + 1);
        text += fmt::format("mxu.matmul src=ub[0] stride=6 count={} dst=acc[{}] dst_stride={} label=\"m{}\"\n", T,
                            256 * i, 4 * N, i + 1);
      }
      Run run = simulate_both(text, teach({"mxu.rows=6", "mxu.cols=5", "mxu.weight_double_buffering=false"}), fill_operands);
      const Event &m1 = run.event("m1"), &l2 = run.event("l2"), &m2 = run.event("m2"), &m3 = run.event("m3");
      // Exactly at the formula: not one cycle earlier (and not later).
      CHECK(l2.begin == bank_free(m1.begin, T, K, C));
      CHECK(m2.begin == l2.begin + K);
      // Period = K + T + K + C - 2 = SCALE-Sim's 2*Sr + Sc + T - 2 with Sr = K, Sc = C.
      CHECK(m2.begin - m1.begin == scalesim_ws_fold(K, C, T));
      CHECK(m3.begin - m2.begin == scalesim_ws_fold(K, C, T));
      // Three folds end at the last cycle 3 * fold - 1: SCALE-Sim's "Total Cycles" (with its -1)
      // is tpusim's index of the last cycle; tpusim's cycle count is 3 * fold.
      if (N == C) CHECK(m3.end == 3 * scalesim_ws_fold(R, C, T) - 1);
      // When N < C the bank frees after the matmul completes: those cycles are weight stalls.
      const int64_t stall = std::max<int64_t>(0, bank_free(0, T, K, C) - ws_matmul_done(0, T, R, N) - 1);
      CHECK(run.cycles(Unit::Mxu, CycleCause::WaitingOnWeights) == 2 * stall);
    }
  }
}

TEST_CASE("the bank-free cycle is when the array's own registers release the bank", "[cycle-model]") {
  // Feed T vectors of K rows tagged bank 0 into a bare PE array from cycle 0: bank_in_use(0)
  // stays true through cycle bank_free - 1 and is false after cycle bank_free, the first
  // cycle the MXU lets a new tile shift into that bank. bank_needed(0), which the PE fidelity
  // reads before a cycle, turns false one cycle earlier: after bank_free - 1, the last operand
  // is in the last column with its last product made.
  for (const auto& [R, C, K, T] : std::vector<std::array<int, 4>>{{4, 4, 4, 1}, {6, 5, 3, 4}, {5, 7, 5, 2}}) {
    INFO("R=" << R << " C=" << C << " K=" << K << " T=" << T);
    SystolicArray array(R, C, DType::Int8, SystolicMode::Stationary);
    const std::vector<uint8_t> feed(static_cast<size_t>(K), 1);
    const int64_t free_cycle = bank_free(0, T, K, C);
    for (int64_t cycle = 0; cycle <= free_cycle; ++cycle) {
      if (cycle < T) {
        array.step(feed.data(), K, 0);
      } else {
        array.step();
      }
      INFO("after cycle " << cycle);
      CHECK(array.bank_in_use(0) == (cycle < free_cycle));
      CHECK(array.bank_needed(0) == (cycle < free_cycle - 1));
    }
  }
}

TEST_CASE("DMA: latency then ceil(bytes / bandwidth) cycles and the port can be the limit", "[cycle-model]") {
  struct Case {
    int64_t bytes, latency, num, den;  // bandwidth = num / den bytes per cycle
  };
  // teach-4x4's unified buffer port moves 4 bytes per cycle.
  const int64_t port = 4;
  const Case cases[] = {
      {16, 10, 4, 1}, {17, 10, 4, 1},  // the boundary: one more byte, one more cycle
      {15, 3, 5, 2},  {16, 3, 5, 2},   // 2.5 bytes per cycle: 6 and 7 cycles
      {1, 0, 1, 10},  {3, 0, 1, 10},   // 0.1: exactly 10 and 30 cycles
      {7, 2, 7, 10},                   // 0.7: exactly 10 cycles
      {16, 5, 8, 1},                   // DRAM would take 2 cycles, the port takes 4
      {1, 0, 4, 1},
  };
  for (const Case& k : cases) {
    const std::string bandwidth = k.den == 1 ? std::to_string(k.num) : fmt::format("{}", static_cast<double>(k.num) / k.den);
    INFO("bytes=" << k.bytes << " latency=" << k.latency << " bandwidth=" << bandwidth);
    const std::string text = fmt::format(
        "tensor A int8 [{0}] input\n"
        "tensor B int8 [{0}] input\n"
        "token a dma -> vpu\n"
        "dma.load dst=ub[0] src=A[0] extent=[{0}] signal=a label=\"first\"\n"
        "dma.load dst=ub[1024] src=B[0] extent=[{0}] label=\"second\"\n"
        "vpu.relu dst=ub[2048]:int8 src=ub[2048]:int8 cols=1 wait=a label=\"consumer\"\n",
        k.bytes);
    ArchConfig arch = teach({"dram.bytes_per_cycle=" + bandwidth, fmt::format("dram.latency_cycles={}", k.latency)});
    Run run = simulate_both(text, arch);
    const Event& first = run.event("first");
    CHECK(first.begin == 0);
    CHECK(first.end == dma_done(0, k.latency, k.bytes, k.num, k.den, port));
    // One channel: the next transfer issues the cycle after; a token is visible the cycle after.
    CHECK(run.event("second").begin == first.end + 1);
    CHECK(run.event("second").end == dma_done(first.end + 1, k.latency, k.bytes, k.num, k.den, port));
    CHECK(run.event("consumer").begin == first.end + 1);
    // Busy throughout (a cycle in which the consumer takes part of the ub port is charged as a
    // bank conflict, even when the DRAM side is the limit).
    CHECK(run.cycles(Unit::Dma, CycleCause::Busy) + run.cycles(Unit::Dma, CycleCause::BankConflict) ==
          run.event("second").end + 1);
  }
}

TEST_CASE("DMA: two channels share the DRAM bandwidth oldest-first", "[cycle-model]") {
  const std::string text =
      "tensor A int8 [8] input\n"
      "tensor B int8 [8] input\n"
      "dma.load dst=ub[0] src=A[0] extent=[8] label=\"older\"\n"
      "dma.load dst=wb[0] src=B[0] extent=[8] label=\"younger\"\n";
  Run run = simulate_both(text, teach({"dram.channels=2", "dram.latency_cycles=3"}));
  const Event& older = run.event("older");
  const Event& younger = run.event("younger");
  CHECK(older.begin == 0);
  CHECK(older.end == dma_done(0, 3, 8, 4, 1, 4));
  CHECK(younger.begin == 1);  // a second channel: issues while the first is in flight
  // Its latency ends at 4, but the older transfer takes all 4 bytes of cycle 4: the younger
  // one's 8 DRAM bytes move in the two cycles after.
  CHECK(younger.end == older.end + ceil_div(8, 4));
}

TEST_CASE("VPU: a vector every interval and the result latency-1 after the last with in-order retirement", "[cycle-model]") {
  // teach-4x4: 4 lanes. exp: latency 5, interval 3 (overridden); relu: latency 2, interval 1;
  // reciprocal: latency 8, interval 2.
  const std::string text =
      "vpu.exp dst=ub[512]:bf16 src=ub[0]:bf16 rows=2 cols=6 label=\"exp\"\n"
      "vpu.relu dst=ub[1024]:int8 src=ub[1024]:int8 rows=2 cols=4 label=\"relu\"\n"
      "vpu.reciprocal dst=ub[1536]:bf16 src=ub[1536]:bf16 cols=1 label=\"recip\"\n"
      "vpu.relu dst=ub[1600]:int8 src=ub[1600]:int8 cols=1 label=\"relu2\"\n";
  Run run = simulate_both(text, teach({"vpu.exp.latency=5", "vpu.exp.interval=3"}));
  const Event& exp = run.event("exp");
  const int64_t exp_vectors = 2 * ceil_div(6, 4);
  CHECK(exp.begin == 0);
  CHECK(exp.end == vpu_done(0, exp_vectors, 3, 5));
  // The next instruction starts issuing while the exp's tail drains.
  const Event& relu = run.event("relu");
  CHECK(relu.begin == vpu_next_issue(0, exp_vectors, 3));
  CHECK(relu.end == vpu_done(relu.begin, 2, 1, 2));
  // A short op behind a long one completes no earlier than it (results leave in order).
  const Event& recip = run.event("recip");
  const Event& relu2 = run.event("relu2");
  CHECK(recip.begin == vpu_next_issue(relu.begin, 2, 1));
  CHECK(relu2.begin == vpu_next_issue(recip.begin, 1, 2));
  CHECK(vpu_done(relu2.begin, 1, 1, 2) < recip.end);
  CHECK(relu2.end == recip.end);
}

TEST_CASE("VPU: a bank whose port the MXU uses stalls the VPU (bank conflict)", "[cycle-model]") {
  // The matmul streams a 4-byte vector per cycle from ub (the whole 4-byte port) in cycles
  // [4, 7]. A VPU relu on ub issued at cycle 5 (behind a one-vector op with interval 5) gets
  // the port only at 8.
  const std::string text =
      "mxu.load_stationary src=wb[0] rows=4 cols=4 stride=4 label=\"load\"\n"
      "mxu.matmul src=ub[0] stride=4 count=4 dst=acc[0] dst_stride=16 label=\"matmul\"\n"
      "vpu.relu dst=acc[1536]:int32 src=acc[1536]:int32 cols=1 label=\"timer\"\n"
      "vpu.relu dst=ub[2048]:int8 src=ub[2048]:int8 cols=4 label=\"relu\"\n";
  Run run = simulate_both(text, teach({"vpu.max.interval=5"}), fill_operands);
  const Event& matmul = run.event("matmul");
  const int64_t last_injection = matmul.begin + 4 - 1;
  const Event& relu = run.event("relu");
  CHECK(relu.begin == 5);
  CHECK(relu.end == vpu_done(last_injection + 1, 1, 5, 2));
  CHECK(run.cycles(Unit::Vpu, CycleCause::BankConflict) == last_injection + 1 - relu.begin);
}

TEST_CASE("the MXU writes the accumulator port while outputs leave the array", "[cycle-model]") {
  // A 4x4 tile, T = 4: outputs (0, 0) to (3, 3) leave in cycles [s+R-1, s+T+R+N-3] = [7, 13],
  // one row of 16 bytes per cycle, the whole accumulator port of teach-4x4. A VPU relu on
  // other accumulators of that bank (8 vectors, one per cycle) loses every cycle of that window
  // in which it tries to issue: it starts at 5 (before the window) or 9 (inside it), behind a
  // one-vector copy whose interval is that cycle.
  const int64_t s = 4, T = 4, R = 4, N = 4;
  const int64_t first_write = ws_output_cycle(s, 0, 0, R), last_write = ws_matmul_done(s, T, R, N);
  for (int64_t relu_start : {5, 9}) {
    INFO("relu from cycle " << relu_start);
    const std::string text =
        "mxu.load_stationary src=wb[0] rows=4 cols=4 stride=4 label=\"load\"\n"
        "mxu.matmul src=ub[0] stride=4 count=4 dst=acc[0] dst_stride=16 label=\"matmul\"\n"
        "vpu.copy dst=ub[3072]:int8 src=ub[3072]:int8 cols=1 label=\"timer\"\n"
        "vpu.relu dst=acc[1024]:int32 src=acc[1024]:int32 rows=8 cols=4 label=\"relu\"\n";
    Run run = simulate_both(text, teach({fmt::format("vpu.convert.interval={}", relu_start)}), fill_operands);
    REQUIRE(run.event("matmul").begin == s);
    const Event& relu = run.event("relu");
    REQUIRE(relu.begin == relu_start);
    const int64_t conflicts = last_write - std::max(first_write, relu_start) + 1;
    CHECK(run.cycles(Unit::Vpu, CycleCause::BankConflict) == conflicts);
    CHECK(relu.end == vpu_done(relu_start, 8 + conflicts, 1, 2));
  }
}

TEST_CASE("token visibility and stall causes across the units", "[cycle-model]") {
  // DMA -> MXU -> VPU -> DMA, each consumer starting the cycle after its producer completes.
  const std::string text =
      "tensor W int8 [4,4] input\n"
      "tensor O int32 [4,4] output\n"
      "token w dma -> mxu\n"
      "token c mxu -> vpu\n"
      "token v vpu -> dma\n"
      "dma.load dst=wb[0] src=W[0,0] extent=[4,4] signal=w label=\"load W\"\n"
      "mxu.load_stationary src=wb[0] rows=4 cols=4 stride=4 wait=w label=\"load\"\n"
      "mxu.matmul src=ub[0] stride=4 count=4 dst=acc[0] dst_stride=16 signal=c label=\"matmul\"\n"
      "vpu.relu dst=acc[256]:int32 src=acc[0]:int32 rows=4 cols=4 wait=c signal=v label=\"relu\"\n"
      "dma.store src=acc[256] dst=O[0,0] extent=[4,4] wait=v label=\"store\"\n";
  Run run = simulate_both(text, teach(), fill_operands);  // latency 10, 4 bytes per cycle
  const Event& load_w = run.event("load W");
  CHECK(load_w.end == dma_done(0, 10, 16, 4, 1, 4));
  const Event& load = run.event("load");
  CHECK(load.begin == load_w.end + 1);
  const Event& matmul = run.event("matmul");
  CHECK(matmul.begin == load.begin + 4);
  CHECK(matmul.end == ws_matmul_done(matmul.begin, 4, 4, 4));
  const Event& relu = run.event("relu");
  CHECK(relu.begin == matmul.end + 1);
  CHECK(relu.end == vpu_done(relu.begin, 4, 1, 2));
  const Event& store = run.event("store");
  CHECK(store.begin == relu.end + 1);
  CHECK(store.end == dma_done(store.begin, 10, 64, 4, 1, 16));
  CHECK(run.result.total_cycles == store.end + 1);

  // Causes: the MXU's tile waits on a DMA token (a weight stall), the VPU on an MXU token, the
  // DMA's store on a VPU token.
  CHECK(run.cycles(Unit::Mxu, CycleCause::WaitingOnWeights) == load.begin);
  CHECK(run.cycles(Unit::Mxu, CycleCause::Busy) == matmul.end + 1 - load.begin);
  CHECK(run.cycles(Unit::Vpu, CycleCause::WaitingOnTokens) == relu.begin);
  CHECK(run.cycles(Unit::Dma, CycleCause::WaitingOnTokens) == store.begin - (load_w.end + 1));
  CHECK(run.cycles(Unit::Dma, CycleCause::Busy) == (load_w.end + 1) + (store.end - store.begin + 1));
}

TEST_CASE("a matmul waiting for the DMA is a DMA stall (not busy) and a tile waiting for the VPU is a token stall",
          "[cycle-model]") {
  SECTION("ws matmul") {
    const std::string text =
        "tensor A int8 [4,4] input\n"
        "token a dma -> mxu\n"
        "dma.load dst=ub[0] src=A[0,0] extent=[4,4] signal=a label=\"load A\"\n"
        "mxu.load_stationary src=wb[0] rows=4 cols=4 stride=4 label=\"load\"\n"
        "mxu.matmul src=ub[0] stride=4 count=4 dst=acc[0] dst_stride=16 wait=a label=\"matmul\"\n";
    Run run = simulate_both(text, teach(), fill_operands);
    const int64_t dma_end = run.event("load A").end;
    CHECK(run.event("matmul").begin == dma_end + 1);
    CHECK(run.cycles(Unit::Mxu, CycleCause::WaitingOnDma) == dma_end + 1 - 4);  // after the 4-cycle load
  }
  SECTION("os matmul") {
    const std::string text =
        "tensor A int8 [4,4] input\n"
        "token a dma -> mxu\n"
        "dma.load dst=ub[0] src=A[0,0] extent=[4,4] signal=a label=\"load A\"\n"
        "mxu.matmul_os left=ub[0] left_stride=4 top=wb[0] top_stride=4 rows=4 cols=4 count=4 dst=acc[0] "
        "dst_stride=16 wait=a label=\"matmul\"\n";
    Run run = simulate_both(text, teach({"mxu.dataflow=os"}), fill_operands);
    const int64_t dma_end = run.event("load A").end;
    CHECK(run.event("matmul").begin == dma_end + 1);
    CHECK(run.cycles(Unit::Mxu, CycleCause::WaitingOnDma) == dma_end + 1);
    CHECK(run.cycles(Unit::Mxu, CycleCause::Busy) == os_matmul_done(0, 4, 4, 4, 4) + 1);
  }
  SECTION("a tile waiting on a VPU token") {
    const std::string text =
        "token t vpu -> mxu\n"
        "vpu.exp dst=ub[512]:bf16 src=ub[0]:bf16 cols=4 signal=t label=\"exp\"\n"
        "mxu.load_stationary src=wb[0] rows=4 cols=4 stride=4 wait=t label=\"load\"\n";
    Run run = simulate_both(text, teach());
    const int64_t exp_end = run.event("exp").end;
    CHECK(exp_end == vpu_done(0, 1, 2, 8));
    CHECK(run.event("load").begin == exp_end + 1);
    CHECK(run.cycles(Unit::Mxu, CycleCause::WaitingOnTokens) == exp_end + 1);
    CHECK(run.cycles(Unit::Mxu, CycleCause::WaitingOnWeights) == 0);
  }
}

TEST_CASE("worked example: gemm-4x4 on teach-4x4 cycle by cycle", "[cycle-model]") {
  // docs/cycle-model.md walks through this program; these are its numbers.
  const std::string text = test::read_text_file(test::source_dir() + "/examples/programs/gemm-4x4.tpu");
  // A[t][k] = 1 + t + k, B[k][c] = 1 + k + c: every output is positive.
  const Init init = [](MachineState& state) {
    for (int i = 0; i < 16; ++i) {
      state.dram[0][static_cast<size_t>(i)] = static_cast<uint8_t>(1 + i / 4 + i % 4);
      state.dram[1][static_cast<size_t>(i)] = static_cast<uint8_t>(1 + i / 4 + i % 4);
    }
  };
  Run run = simulate_both(text, teach(), init);
  std::vector<Event> expected = {
      {Unit::Dma, 0, 13, "gemm"},   // A: latency 10, then 16 bytes at 4 per cycle
      {Unit::Dma, 14, 27, "gemm"},  // B: the same, after A (one channel)
      {Unit::Mxu, 28, 31, "gemm"},  // load_stationary: 4 rows, last row first
      {Unit::Mxu, 32, 41, "gemm"},  // matmul: 32 + T + R + N - 3 = 41
      {Unit::Dma, 42, 67, "gemm"},  // C: latency 10, then 64 bytes at 4 per cycle
  };
  CHECK(run.events == expected);
  CHECK(run.result.total_cycles == 68);
  CHECK(run.activity(MxuActivity::ShiftingWeights) == 4);
  CHECK(run.activity(MxuActivity::Computing) == 4);
  CHECK(run.activity(MxuActivity::Draining) == 6);
  CHECK(run.cycles(Unit::Mxu, CycleCause::WaitingOnWeights) == 28);
  CHECK(run.cycles(Unit::Mxu, CycleCause::Idle) == 26);
  CHECK(run.cycles(Unit::Dma, CycleCause::Busy) == 54);
  CHECK(run.cycles(Unit::Dma, CycleCause::WaitingOnTokens) == 14);

  // The table of the doc: output (t, c) is written at 32 + t + 3 + c.
  const int64_t s = 32, R = 4;
  const std::vector<int32_t> final_values = accumulators_at(text, {}, 42, 0, 4, 4, 16, init);
  int32_t expected_c00 = 0;
  for (int k = 0; k < 4; ++k) expected_c00 += (1 + k) * (1 + k);
  CHECK(final_values[0] == expected_c00);
  for (int64_t at = 34; at <= 42; ++at) {
    const std::vector<int32_t> now = accumulators_at(text, {}, at, 0, 4, 4, 16, init);
    for (int64_t t = 0; t < 4; ++t) {
      for (int64_t c = 0; c < 4; ++c) {
        INFO("cycle " << at << " output (" << t << "," << c << ")");
        const size_t i = static_cast<size_t>(t * 4 + c);
        CHECK(now[i] == (at >= ws_output_cycle(s, t, c, R) ? final_values[i] : 0));
      }
    }
  }
}

TEST_CASE("derived figures are computed from the counters as the doc states", "[cycle-model]") {
  const std::string text = test::read_text_file(test::source_dir() + "/examples/programs/gemm-4x4.tpu");
  const ArchConfig arch = teach();
  Run run = simulate_both(text, arch);
  const Figures d = build_report("gemm-4x4.tpu", arch, run.result, Fidelity::Fast).totals;
  // 64 useful MACs, 68 cycles, 16 PEs, 14 MXU-busy cycles, 32 + 64 DRAM bytes.
  CHECK(d.utilization == Approx(64.0 / (16 * 68)));
  CHECK(d.mapping_efficiency == Approx(1.0));
  CHECK(d.compute_utilization == Approx(64.0 / (16 * 14)));
  CHECK(d.ops_per_cycle == Approx(128.0 / 68));
  CHECK(d.ops_per_dram_byte == Approx(128.0 / 96));
  CHECK(d.tops == Approx(128.0 / 68 * 100e6 / 1e12));
  CHECK(d.mxu_busy == 14);
  CHECK(d.dram_bytes == 96);
}
