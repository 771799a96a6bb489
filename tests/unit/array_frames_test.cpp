// The frames of `tpusim explain gemm` against what the PE-level simulator holds and against
// the register semantics of simulator/systolic_array.h, every PE of every cycle: a vector that
// entered the array at cycle e is in PE(r, c) at cycle e + r + c, holding its operand, the
// stationary operand of its tile and the partial sum over the rows above.
#include <catch2/catch.hpp>

#include <map>

#include "compiler/explain_gemm.h"
#include "simulator/array_view_text.h"
#include "simulator/semantics.h"

using namespace tpusim;

namespace {

struct Case {
  const char* dataflow;
  int rows, cols;
  int64_t m, k, n;
  const char* type;
};

ArchConfig arch_for(const Case& c) {
  return load_arch("teach-4x4", {std::string("mxu.dataflow=") + c.dataflow, "mxu.rows=" + std::to_string(c.rows),
                                 "mxu.cols=" + std::to_string(c.cols), std::string("mxu.operand_type=") + c.type});
}

// The frames are the simulator's own: a second run with an observer of its own sees the same
// registers in every cycle.
void require_frames_are_the_simulators(const GemmExplanation& x, const ArchConfig& arch) {
  MachineState state = make_machine_state(x.program.program, target_limits(arch));
  // The same inputs as explain_gemm placed.
  state.dram[0] = operand_bytes(x.a, arch.mxu.operand_type);
  state.dram[1] = operand_bytes(x.b, arch.mxu.operand_type);
  std::vector<ArraySnapshot> seen;
  SimulationOptions options;
  options.fidelity = Fidelity::Pe;
  options.observe = [&](const CycleObservation& o) {
    seen.push_back(o.array->snapshot());
    if (!o.array_clocked) {  // not clocked: nothing multiplies and nothing leaves in this cycle
      std::fill(seen.back().bottom.begin(), seen.back().bottom.end(), std::nullopt);
      for (PeRegisters& pe : seen.back().pes) pe.active = false;
    }
  };
  simulate_program(x.program.program, arch, state, options);
  REQUIRE(seen.size() == x.frames.size());
  for (size_t i = 0; i < seen.size(); ++i) {
    const ArraySnapshot& a = x.frames[i].array;
    const ArraySnapshot& b = seen[i];
    for (size_t p = 0; p < a.pes.size(); ++p) {
      const PeRegisters &u = a.pes[p], &v = b.pes[p];
      const bool same = u.weight[0] == v.weight[0] && u.weight[1] == v.weight[1] && u.moving == v.moving &&
                        u.moving_valid == v.moving_valid && u.moving_bank == v.moving_bank && u.top == v.top &&
                        u.top_valid == v.top_valid && u.sum == v.sum && u.sum_valid == v.sum_valid &&
                        u.active == v.active && u.in_tile == v.in_tile;
      if (!same) FAIL("cycle " << i << ": PE " << p << " differs from the simulator's");
    }
    REQUIRE(a.bottom == b.bottom);
    REQUIRE(a.left_waiting == b.left_waiting);
    REQUIRE(a.top_waiting == b.top_waiting);
  }
}

}  // namespace

TEST_CASE("explain gemm: every frame is the PE array the semantics describe", "[explain]") {
  const Case cases[] = {
      {"ws", 4, 4, 6, 4, 4, "int8"},  {"ws", 4, 3, 5, 6, 7, "int8"},  {"ws", 3, 5, 4, 7, 6, "bf16"},
      {"os", 4, 4, 6, 4, 4, "int8"},  {"os", 3, 4, 7, 5, 6, "int8"},  {"os", 4, 2, 5, 3, 3, "bf16"},
      {"is", 4, 4, 6, 4, 4, "int8"},  {"is", 4, 3, 5, 6, 3, "int8"},  {"is", 2, 5, 7, 3, 4, "bf16"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.dataflow << " " << c.rows << "x" << c.cols << " " << c.type << ", M=" << c.m << " K=" << c.k
                               << " N=" << c.n) {
      const ArchConfig arch = arch_for(c);
      const GemmExplanation x = explain_gemm({c.m, c.k, c.n}, arch, 7, {});
      REQUIRE(x.c_correct);
      REQUIRE(static_cast<int64_t>(x.frames.size()) == x.total_cycles);  // one frame per cycle
      const bool os = std::string(c.dataflow) == "os", is = std::string(c.dataflow) == "is";
      auto A = [&](int64_t m, int64_t k) { return x.a[static_cast<size_t>(m * c.k + k)]; };
      auto B = [&](int64_t k, int64_t n) { return x.b[static_cast<size_t>(k * c.n + n)]; };

      // The cycle each vector entered, from the frames' own account: tile i starts where a
      // vector numbered 0 enters for the i-th time.
      std::map<int64_t, std::pair<size_t, int64_t>> entered;  // cycle -> (tile, vector)
      int64_t tile = -1;
      for (const ArrayFrame& f : x.frames) {
        if (f.vector == 0) ++tile;
        if (f.vector >= 0) entered[f.cycle] = {static_cast<size_t>(tile), f.vector};
      }
      REQUIRE(tile + 1 == static_cast<int64_t>(x.program.tiles.size()));

      int64_t useful = 0;
      std::vector<std::vector<std::vector<double>>> os_rows_left(x.program.tiles.size());
      for (size_t i = 0; i < x.frames.size(); ++i) {
        const ArrayFrame& f = x.frames[i];
        REQUIRE(f.cycle == static_cast<int64_t>(i));
        const ArraySnapshot& a = f.array;
        for (int r = 0; r < c.rows; ++r) {
          for (int col = 0; col < c.cols; ++col) {
            const PeRegisters& pe = a.pe(r, col);
            INFO("cycle " << f.cycle << ", PE(" << r << ", " << col << ")");
            auto it = entered.find(f.cycle - r - col);
            if (it == entered.end()) {
              CHECK_FALSE(pe.moving_valid);
              CHECK_FALSE(pe.active);
              if (!os) CHECK_FALSE(pe.sum_valid);
              continue;
            }
            const GemmTile& t = x.program.tiles[it->second.first];
            const int64_t v = it->second.second;
            if (os) {
              // Column v of A enters from the left (rows of the tile), row v of B from the top.
              CHECK(pe.moving_valid == (r < t.m));
              CHECK(pe.top_valid == (col < t.n));
              if (pe.moving_valid) CHECK(pe.moving == A(t.m0 + r, v));
              if (pe.top_valid) CHECK(pe.top == B(v, t.n0 + col));
              CHECK(pe.active == (r < t.m && col < t.n));
              if (pe.active) {
                double sum = 0;
                for (int64_t k = 0; k <= v; ++k) sum += A(t.m0 + r, k) * B(k, t.n0 + col);
                CHECK(pe.sum == sum);
                CHECK(pe.sum_valid);
                ++useful;
              }
              continue;
            }
            // ws and is: the stationary operand, the moving one, and the sum over rows <= r.
            const int64_t width = is ? t.m : t.n;
            auto stationary = [&](int64_t row) {
              if (col >= width) return 0.0;
              return is ? A(t.m0 + col, t.k0 + row) : B(t.k0 + row, t.n0 + col);
            };
            auto moving = [&](int64_t row) { return is ? B(t.k0 + row, v) : A(t.m0 + v, t.k0 + row); };
            CHECK(pe.moving_valid == (r < t.k));
            CHECK(pe.sum_valid);
            double sum = 0;
            for (int64_t row = 0; row <= std::min<int64_t>(r, t.k - 1); ++row) sum += moving(row) * stationary(row);
            CHECK(pe.sum == sum);
            if (pe.moving_valid) {
              CHECK(pe.moving == moving(r));
              CHECK(pe.weight[pe.moving_bank] == stationary(r));
              CHECK(pe.active);
              CHECK(pe.in_tile == (col < width));
              useful += pe.useful();
            }
          }
        }
        // Results leave the bottom row: ws and is at cycle e + R - 1 + c; os when draining.
        for (int col = 0; col < c.cols; ++col) {
          const auto& out = a.bottom[static_cast<size_t>(col)];
          if (os) continue;
          auto it = entered.find(f.cycle - (c.rows - 1) - col);
          INFO("cycle " << f.cycle << ", column " << col << " leaving");
          REQUIRE(out.has_value() == (it != entered.end()));
          if (!out) continue;
          const GemmTile& t = x.program.tiles[it->second.first];
          const int64_t v = it->second.second;
          double sum = 0;
          const int64_t width = is ? t.m : t.n;
          for (int64_t k = 0; k < t.k && col < width; ++k) {
            sum += is ? B(t.k0 + k, v) * A(t.m0 + col, t.k0 + k) : A(t.m0 + v, t.k0 + k) * B(t.k0 + k, t.n0 + col);
          }
          CHECK(*out == sum);
        }
        if (os) {
          bool any = false;
          std::vector<double> row;
          for (const auto& out : a.bottom) {
            any = any || out.has_value();
            row.push_back(out.value_or(0));
          }
          if (any) {
            // Drained rows belong to the tile whose steps entered last.
            const size_t owner = std::prev(entered.upper_bound(f.cycle))->second.first;
            os_rows_left[owner].push_back(row);
          }
        }
        CHECK(f.macs == useful);  // the running MAC count is the array's useful products
      }
      if (os) {
        // Each tile's result rows leave bottom row first: row m - 1 of the tile, then m - 2, ...
        for (size_t i = 0; i < x.program.tiles.size(); ++i) {
          const GemmTile& t = x.program.tiles[i];
          REQUIRE(static_cast<int64_t>(os_rows_left[i].size()) == t.m);
          for (int64_t j = 0; j < t.m; ++j) {
            const int64_t m = t.m - 1 - j;
            for (int col = 0; col < c.cols; ++col) {
              double sum = 0;
              for (int64_t k = 0; k < c.k && col < t.n; ++k) sum += A(t.m0 + m, k) * B(k, t.n0 + col);
              CHECK(os_rows_left[i][static_cast<size_t>(j)][static_cast<size_t>(col)] == sum);
            }
          }
        }
      }
      // The simulator's own count of useful MACs is M.K.N.
      CHECK(useful == c.m * c.k * c.n);
      require_frames_are_the_simulators(x, arch);
    }
  }
}

TEST_CASE("explain gemm: an edge tile's padding columns multiply, and are not counted as useful", "[explain]") {
  // 5 x 6 x 7 on 4 x 3 ws: N = 7 is cut 3 + 3 + 1, so the last n-tile's operands cross two
  // padding columns (zero weights); with 5 vectors in flight, all 4 rows of both can be busy.
  const GemmExplanation x = explain_gemm({5, 6, 7}, arch_for({"ws", 4, 3, 5, 6, 7, "int8"}), 7, {});
  REQUIRE(x.program.tiles.size() == 6);
  int max_padding = 0;
  for (const ArrayFrame& f : x.frames) max_padding = std::max(max_padding, f.padding_pes());
  CHECK(max_padding == 8);
  CHECK(x.frames.back().macs == 5 * 6 * 7);
  const std::string text = render_frame_text(x.frames[static_cast<size_t>(x.frames.size() / 2)], {});
  CHECK(text.find("cycle ") == 0);
}

TEST_CASE("an observer sees every cycle once and changes nothing in the run", "[explain]") {
  const ArchConfig arch = arch_for({"ws", 4, 4, 9, 7, 6, "int8"});
  const GemmProgram g = gemm_program({9, 7, 6}, arch);
  auto run = [&](bool observed, std::vector<int64_t>* cycles) {
    MachineState state = make_machine_state(g.program, target_limits(arch));
    for (size_t i = 0; i < state.dram[0].size(); ++i) state.dram[0][i] = static_cast<uint8_t>(i * 7 + 3);
    for (size_t i = 0; i < state.dram[1].size(); ++i) state.dram[1][i] = static_cast<uint8_t>(i * 5 + 1);
    SimulationOptions options;
    options.fidelity = Fidelity::Pe;
    if (observed) options.observe = [cycles](const CycleObservation& o) { cycles->push_back(o.cycle); };
    SimulationResult result = simulate_program(g.program, arch, state, options);
    return std::make_pair(result, state.dram[2]);
  };
  std::vector<int64_t> cycles;
  const auto [plain, plain_c] = run(false, nullptr);
  const auto [watched, watched_c] = run(true, &cycles);
  CHECK(watched.total_cycles == plain.total_cycles);
  REQUIRE(watched.counters.all().size() == plain.counters.all().size());
  for (size_t i = 0; i < plain.counters.all().size(); ++i) {
    INFO(plain.counters.all()[i].name);
    CHECK(watched.counters.all()[i].value == plain.counters.all()[i].value);
  }
  CHECK(watched_c == plain_c);
  REQUIRE(static_cast<int64_t>(cycles.size()) == plain.total_cycles);
  for (size_t i = 0; i < cycles.size(); ++i) REQUIRE(cycles[i] == static_cast<int64_t>(i));
}
