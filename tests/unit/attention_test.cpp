// Attention lowering: both lowerings (flash, materialized) over a sweep of attention shapes —
// causal, windowed, grouped kv heads, head and value dims wider than the array, sequences that
// are not a multiple of the tile, cross attention with an additive mask, scores on chip and
// spilled to DRAM — compiled for a 4x4 bf16 array, simulated and checked against the
// reference. Also: what mask-aware tiling skips really issues no instruction.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include <fmt/format.h>

#include "compiler/frontend/yaml_model.h"
#include "compiler/model_run.h"
#include "compiler/pipeline.h"
#include "simulator/simulator.h"

using namespace tpusim;

namespace {

ArchConfig small_arch(const std::string& ub, const std::string& wb = "512") {
  return parse_arch_yaml(fmt::format(R"(name: attention-4x4
mxu: {{rows: 4, cols: 4, dataflow: ws, operand_type: bf16, clock_mhz: 100}}
unified_buffer: {{bytes: {}, banks: 2}}
weight_buffer: {{bytes: {}}}
accumulator: {{bytes: 2KiB}}
vpu: {{lanes: 4}}
dram: {{bytes_per_cycle: 8, latency_cycles: 5}}
)", ub, wb),
                         "attention-4x4.yaml");
}

CompileOptions with_lowering(AttentionLowering lowering) {
  CompileOptions options;
  options.lowering.attention = lowering;
  return options;
}

struct Run {
  CompileResult compiled;
  SimulationResult result;
  MachineState state;
  std::vector<std::optional<HostTensor>> given;
  ModelCheck check;
};

// The attention op's kernel check: its simulated output against the reference run on the
// simulated q, k, v (and mask), element by element within the derived float bound.
const KernelCheck& attention_check(const ModelCheck& check) {
  for (const KernelCheck& k : check.kernels) {
    if (k.kernel == "attn") return k;
  }
  FAIL("no check of the attention kernel");
  throw 0;
}

Run compile_and_run(const std::string& yaml, const ArchConfig& arch, AttentionLowering lowering,
                    Fidelity fidelity = Fidelity::Fast) {
  Run run;
  run.compiled = compile_graph(parse_model_yaml(yaml, "attention.yaml"), arch, with_lowering(lowering));
  run.state = make_machine_state(run.compiled.program, target_limits(arch));
  run.given = place_model_inputs(run.compiled, "", 5, run.state);
  SimulationOptions options;
  options.fidelity = fidelity;
  run.result = simulate_program(run.compiled.program, arch, run.state, options);
  run.check = check_model_outputs(run.compiled, run.given, run.state);
  INFO(run.check.text);
  REQUIRE(run.check.ok);
  // Every element of the attention output compared, none outside its bound; the output end
  // to end within its bound of the fp64 evaluation.
  const Graph& g = run.compiled.graph;
  const KernelCheck& attn = attention_check(run.check);
  CHECK(attn.ops == std::vector<std::string>{"attn"});
  CHECK(attn.comparison.elements == g.values[static_cast<size_t>(g.find_value("attn"))].element_count());
  CHECK(attn.comparison.mismatches == 0);
  CHECK(attn.comparison.worst_ratio <= 1);
  REQUIRE(run.check.outputs.size() == 1);
  CHECK(run.check.outputs[0].ok);
  CHECK(run.check.outputs[0].relative_rms_error <= run.check.outputs[0].bound);
  return run;
}

const AttentionKernel& attention_kernel(const CompileResult& compiled) {
  for (const auto& kernel : compiled.kernels.kernels) {
    if (const auto* a = std::get_if<AttentionKernel>(&kernel)) return *a;
  }
  FAIL("no attention kernel");
  throw 0;
}

// Self-attention of `tokens` [batch, seq, width] through q/k/v projections.
std::string self_attention(int64_t batch, int64_t seq, int64_t width, int64_t kv_width, const std::string& attrs) {
  return fmt::format(R"(name: attention_case
type: bf16
inputs:
  x: {{shape: [{}, {}, {}]}}
layers:
  - linear: {{name: q, input: x, out_features: {}}}
  - linear: {{name: k, input: x, out_features: {}}}
  - linear: {{name: v, input: x, out_features: {}}}
  - attention: {{name: attn, inputs: [q, k, v], {}}}
outputs: [attn]
)",
                     batch, seq, width, width, kv_width, kv_width, attrs);
}

// Every instruction of the program, loops unrolled into their bodies once (attention emits no
// loops; the other kernels' loops do not matter here).
void walk(const std::vector<Node>& body, std::vector<const Instruction*>& out) {
  for (const Node& n : body) {
    if (n.kind == Node::Kind::Instruction) out.push_back(&n.instruction);
    if (n.kind == Node::Kind::Repeat) walk(n.body, out);
  }
}

}  // namespace

TEST_CASE("attention lowerings match the reference across shapes and masks", "[compiler][attention]") {
  struct Case {
    const char* what;
    std::string yaml;
    bool spills_in_1k;  // materialized: the scores do not fit a 1 KiB unified buffer
  };
  const std::vector<Case> cases = {
      {"causal, two heads", self_attention(1, 8, 8, 8, "heads: 2, causal: true"), false},
      {"full, seq 15 (a ragged last tile), multi-query, head dim 6 > 4 rows and value dim 6 > 4 columns",
       self_attention(1, 15, 12, 6, "heads: 2, kv_heads: 1"), true},
      {"causal sliding window 3, seq 9, grouped kv heads, batch 2",
       self_attention(2, 9, 8, 4, "heads: 4, kv_heads: 2, causal: true, window: 3"), true},
      {"non-causal window 2 and a score scale", self_attention(1, 6, 4, 4, "heads: 1, window: 2, score_scale: 0.25"), false},
      {"cross attention 5 queries x 11 keys with an additive mask per head and key",
       R"(name: cross
type: bf16
inputs:
  q: {shape: [1, 5, 8]}
  kv: {shape: [1, 11, 8]}
  mask: {shape: [1, 2, 1, 11]}
layers:
  - attention: {name: attn, inputs: [q, kv, kv, mask], heads: 2}
outputs: [attn]
)",
       false},
      {"causal cross attention with a [seq_q, seq_k] mask", R"(name: cross_causal
type: bf16
inputs:
  q: {shape: [1, 6, 4]}
  kv: {shape: [1, 9, 4]}
  mask: {shape: [6, 9]}
layers:
  - attention: {name: attn, inputs: [q, kv, kv, mask], heads: 1, causal: true}
outputs: [attn]
)",
       false},
  };
  for (const Case& c : cases) {
    for (AttentionLowering lowering : {AttentionLowering::Flash, AttentionLowering::Materialized}) {
      for (const char* ub : {"8KiB", "1KiB"}) {
        // 512 bytes of weight buffer keep the key/value tiles resident per head; 64 bytes (two
        // slots) stream them, in smaller score tiles where a head dim of 6 needs it.
        const char* wb = std::string(ub) == "8KiB" ? "512" : "64";
        DYNAMIC_SECTION(c.what << " / " << attention_lowering_name(lowering) << " / ub " << ub << " wb " << wb) {
          Run run = compile_and_run(c.yaml, small_arch(ub, wb), lowering);
          CHECK(run.check.kernels_failed == 0);
          CHECK(run.check.kernels_checked == static_cast<int64_t>(run.compiled.kernels.kernels.size()));
          const AttentionKernel& a = attention_kernel(run.compiled);
          if (lowering == AttentionLowering::Materialized) {
            // 8 KiB holds every case's scores; 1 KiB only the smaller ones.
            CHECK(a.tiling.scores_on_chip == (std::string(ub) == "8KiB" || !c.spills_in_1k));
            bool spilled = false;
            for (const auto& t : run.compiled.program.tensors) spilled |= t.name == "attn_scores";
            CHECK(spilled == !a.tiling.scores_on_chip);
          }
        }
      }
    }
  }
}

TEST_CASE("the attention check fails on one wrong output element", "[compiler][attention][check]") {
  // Causal, two heads: every output element is a weighted mean of value rows.
  for (AttentionLowering lowering : {AttentionLowering::Flash, AttentionLowering::Materialized}) {
    DYNAMIC_SECTION(attention_lowering_name(lowering)) {
      Run run = compile_and_run(self_attention(1, 8, 8, 8, "heads: 2, causal: true"), small_arch("8KiB"), lowering);
      const int attn = run.compiled.graph.find_value("attn");
      std::vector<uint8_t>& bytes = run.state.dram.at(static_cast<size_t>(run.compiled.tensor_of_value[static_cast<size_t>(attn)]));
      // [0, 5, 3] of [1, 8, 8]: its exponent's lowest bit flipped (the value halves or doubles).
      const size_t at = static_cast<size_t>(2 * (5 * 8 + 3));
      const std::vector<uint8_t> simulated = bytes;
      const double value = load_element(DType::BF16, &bytes[at]);
      REQUIRE(value != 0);
      bytes[at] ^= 0x80;
      ModelCheck bad = check_model_outputs(run.compiled, run.given, run.state);
      INFO(bad.text);
      CHECK(!bad.ok);
      const KernelCheck& k = attention_check(bad);
      CHECK(!k.comparison.ok);
      CHECK(k.comparison.mismatches == 1);
      CHECK(k.comparison.worst_where == "attn[0, 5, 3]");
      // An eighth off (16 to 32 bf16 ulps) fails as well.
      bytes = simulated;
      store_element(DType::BF16, &bytes[at], value * 1.125);
      CHECK(!check_model_outputs(run.compiled, run.given, run.state).ok);
    }
  }
}

TEST_CASE("partial tiles are masked by a prebuilt mask tile, or row by row when it does not fit", "[compiler][attention]") {
  const std::string yaml = self_attention(1, 12, 8, 4, "heads: 2, kv_heads: 1, causal: true, window: 3");
  for (AttentionLowering lowering : {AttentionLowering::Flash, AttentionLowering::Materialized}) {
    Run roomy = compile_and_run(yaml, small_arch("8KiB"), lowering);
    Run tight = compile_and_run(yaml, small_arch("512", "96"), lowering);
    const AttentionKernel& a = attention_kernel(roomy.compiled);
    const AttentionKernel& b = attention_kernel(tight.compiled);
    // Diagonal tiles and window-edge tiles: two patterns in 4 x 4 tiles.
    CHECK(a.tiling.mask_patterns.size() == 2);
    CHECK(b.tiling.mask_patterns.empty());
    CHECK(b.tiling.why.find("masked row by row") != std::string::npos);
    CHECK(a.tiling.why.find("masked by adding one of 2 mask tiles built once") != std::string::npos);
  }
}

TEST_CASE("attention runs the same at PE fidelity", "[compiler][attention]") {
  const std::string yaml = self_attention(1, 8, 8, 8, "heads: 2, causal: true, window: 5");
  for (AttentionLowering lowering : {AttentionLowering::Flash, AttentionLowering::Materialized}) {
    Run fast = compile_and_run(yaml, small_arch("8KiB"), lowering, Fidelity::Fast);
    Run pe = compile_and_run(yaml, small_arch("8KiB"), lowering, Fidelity::Pe);
    CHECK(fast.result.totals.cycles == pe.result.totals.cycles);
    CHECK(fast.result.totals.useful_macs == pe.result.totals.useful_macs);
  }
}

TEST_CASE("score tiles are classified empty, partial or full under the mask", "[compiler][attention]") {
  AttentionKernel k;
  k.seq_q = k.seq_k = 8;
  k.causal = true;
  // 4 x 4 tiles of a causal 8 x 8: the upper right is empty, the diagonal ones partial.
  CHECK(k.classify(0, 4, 0, 4) == TileClass::Partial);
  CHECK(k.classify(0, 4, 4, 4) == TileClass::Empty);
  CHECK(k.classify(4, 4, 0, 4) == TileClass::Full);
  CHECK(k.classify(4, 4, 4, 4) == TileClass::Partial);
  // A window of 3: query i sees keys i-2 .. i.
  k.window = 3;
  CHECK(k.classify(4, 4, 0, 2) == TileClass::Empty);    // keys 0, 1: query 4 sees 2..4
  CHECK(k.classify(4, 1, 2, 3) == TileClass::Full);     // query 4, keys 2..4
  CHECK(k.classify(4, 2, 2, 3) == TileClass::Partial);  // query 5 does not see key 2
  // Without a mask every tile is full.
  k.causal = false;
  k.window = 0;
  CHECK(k.classify(0, 4, 4, 4) == TileClass::Full);
}

TEST_CASE("an empty score tile issues no DMA, MXU or VPU instruction", "[compiler][attention]") {
  // Causal attention over 8 tokens in 4 x 4 tiles: tiles (query block, key block) (0,0) and
  // (1,1) are partial, (1,0) full, (0,1) empty. Only the three visible tiles multiply; key
  // tile 1 is never loaded for query block 0. With the key/value tiles resident (512 bytes
  // of weight buffer) each is loaded once per head; streamed (96 bytes), once per use.
  for (AttentionLowering lowering : {AttentionLowering::Flash, AttentionLowering::Materialized}) {
    for (const char* wb : {"512", "96"}) {
      DYNAMIC_SECTION(attention_lowering_name(lowering) << " wb " << wb) {
        const bool resident = std::string(wb) == "512";
        std::map<bool, std::map<std::string, int>> counts;  // causal -> what -> count
        for (bool causal : {true, false}) {
          Run run = compile_and_run(self_attention(1, 8, 4, 4, causal ? "heads: 1, causal: true" : "heads: 1"),
                                    small_arch("8KiB", wb), lowering);
          const AttentionKernel& a = attention_kernel(run.compiled);
          CHECK(a.tiling.kv_resident == resident);
          CHECK(a.tiling.q_block == 4);
          CHECK(a.tiling.k_block == 4);
          CHECK(a.tiling.empty == (causal ? 1 : 0));
          CHECK(a.tiling.partial == (causal ? 2 : 0));
          CHECK(a.tiling.full == (causal ? 1 : 4));
          // Both partial tiles are on the diagonal: one mask tile serves them.
          CHECK(a.tiling.mask_patterns.size() == (causal ? 1u : 0u));
          const int computed = static_cast<int>(a.tiling.partial + a.tiling.full);
          const Program& p = run.compiled.program;
          const int q_tensor = p.find_tensor("q"), k_tensor = p.find_tensor("k"), v_tensor = p.find_tensor("v");
          std::vector<const Instruction*> all;
          walk(p.body, all);
          // The (query block, key tile) pairs whose keys are loaded: a key load belongs to the
          // query block loaded last (flash, and materialized's first phase).
          std::set<std::pair<int64_t, int64_t>> key_tiles;
          int64_t query_block = -1;
          auto& n = counts[causal];
          for (const Instruction* in : all) {
            if (in->label != "attn") continue;
            ++n[std::string(opcode_info(in->opcode).mnemonic)];
            if (in->opcode == Opcode::DmaLoad && in->tensor.tensor == q_tensor) {
              query_block = in->tensor.coords[1].constant / 4;
            }
            if (in->opcode == Opcode::DmaLoad && in->tensor.tensor == k_tensor) {
              key_tiles.insert({query_block, in->tensor.coords[1].constant / 4});
              ++n["key loads"];
            }
            if (in->opcode == Opcode::DmaLoad && in->tensor.tensor == v_tensor) ++n["value loads"];
          }
          using Pairs = std::set<std::pair<int64_t, int64_t>>;
          if (resident) {
            CHECK(key_tiles == (causal ? Pairs{{0, 0}, {1, 1}} : Pairs{{0, 0}, {0, 1}}));
            CHECK(n["key loads"] == 2);
            CHECK(n["value loads"] == 2);
          } else {
            CHECK(key_tiles == (causal ? Pairs{{0, 0}, {1, 0}, {1, 1}} : Pairs{{0, 0}, {0, 1}, {1, 0}, {1, 1}}));
            CHECK(n["key loads"] == computed);
            CHECK(n["value loads"] == computed);
          }
          // Two GEMMs per computed tile (one head-dim chunk, one value-dim chunk each), and a
          // key and a value load_stationary for each.
          CHECK(n["mxu.matmul"] == 2 * computed);
          CHECK(n["mxu.load_stationary"] == 2 * computed);
          // The mask tile is built once (queries 0-2 each mask a run of keys) and added to both
          // partial tiles.
          CHECK(n["vpu.min"] == (causal ? 3 : 0));
          // The simulated MACs are those of the computed tiles: 4 x 4 x 4 per GEMM.
          CHECK(run.result.totals.useful_macs - 3 * 8 * 4 * 4 == 2 * 64 * computed);
        }
        // Skipping a quarter of the tiles skips VPU work: one scaling multiply per tile (and in
        // flash the rescaling of the running output), and exps (flash: one per tile and one per
        // rescaled tile; materialized: one per row block).
        CHECK(counts[true]["vpu.exp"] <= counts[false]["vpu.exp"]);
        CHECK(counts[true]["vpu.mul"] < counts[false]["vpu.mul"]);
        if (!resident) CHECK(counts[true]["dma.load"] < counts[false]["dma.load"]);
      }
    }
  }
}

TEST_CASE("causal attention computes about half the score tiles, a window about window/seq", "[compiler][attention]") {
  auto computed = [](int64_t seq, bool causal, int64_t window) {
    AttentionKernel k;
    k.seq_q = k.seq_k = seq;
    k.causal = causal;
    k.window = window;
    int64_t visible = 0, total = 0;
    for (int64_t i0 = 0; i0 < seq; i0 += 128) {
      for (int64_t j0 = 0; j0 < seq; j0 += 128) {
        ++total;
        visible += k.classify(i0, 128, j0, 128) != TileClass::Empty;
      }
    }
    return static_cast<double>(visible) / static_cast<double>(total);
  };
  CHECK(computed(1024, false, 0) == 1.0);
  CHECK(computed(1024, true, 0) == Approx(36.0 / 64));  // 8 diagonal tiles + 28 below
  const double window = computed(4096, true, 512);
  CHECK(window > 512.0 / 4096);
  CHECK(window < 1.3 * 512.0 / 4096);
}
