// mxu.matmul's vector pattern: a vector's K elements gathered from a block in the buffer (how a
// K box that crosses kernel taps and rows is read from an im2col window in place). The offsets,
// the text form, the verifier's checks, and the three executions (reference interpreter, PE
// array, fast path) against a product computed here.
#include <catch2/catch.hpp>

#include <cstring>

#include "ir/program.h"
#include "simulator/arch.h"
#include "simulator/interpreter.h"
#include "simulator/semantics.h"
#include "unit/fidelity_comparison.h"

using namespace tpusim;
using namespace tpusim::test;

namespace {

// A 2x16-byte block in ub (rows 16 bytes apart, 10 used); each of the 5 vectors is elements
// 8..11 of the block's 2x10 shape, one byte further on per vector: ub[8+t], ub[9+t] at the end
// of row 0 (past its 10 elements from t = 2 on), ub[16+t], ub[17+t] at the start of row 1.
const char* kProgram = R"(tensor x int8 [2,10] input
tensor w int8 [4,3] input
tensor y int32 [5,3] output
token x_loaded dma -> mxu
token w_loaded dma -> mxu
token y_ready mxu -> dma
dma.load dst=ub[0] src=x[0,0] extent=[2,10] dst_stride=[16,1] signal=x_loaded
dma.load dst=wb[0] src=w[0,0] extent=[4,3] signal=w_loaded
mxu.load_stationary src=wb[0] rows=4 cols=3 stride=3 wait=w_loaded
mxu.matmul src=ub[0] stride=1 count=5 dst=acc[0] dst_stride=12 wait=x_loaded signal=y_ready vector_extent=[2,10] vector_stride=[16,1] vector_start=8
dma.store src=acc[0] dst=y[0,0] extent=[5,3] wait=y_ready
)";


Instruction matmul_with(std::vector<int64_t> extent, std::vector<int64_t> stride, int64_t start) {
  Instruction in;
  in.opcode = Opcode::MxuMatmul;
  in.vector_extent = std::move(extent);
  in.vector_stride = std::move(stride);
  in.vector_start = start;
  return in;
}

}  // namespace

TEST_CASE("a vector pattern names each element's offset and the runs they form", "[program][vector]") {
  // Without a pattern: K contiguous elements.
  CHECK(vector_offsets(Instruction{}, 4, 2) == std::vector<int64_t>{0, 2, 4, 6});
  // Elements 7..10 of a [2, 9] block whose rows are 30 bytes apart: the end of row 0, then row 1.
  const Instruction in = matmul_with({2, 9}, {30, 1}, 7);
  const std::vector<int64_t> offsets = vector_offsets(in, 4, 1);
  CHECK(offsets == std::vector<int64_t>{7, 8, 30, 31});
  const std::vector<ByteRun> runs = vector_runs(offsets, 1);
  REQUIRE(runs.size() == 2);
  CHECK((runs[0].offset == 7 && runs[0].bytes == 2));
  CHECK((runs[1].offset == 30 && runs[1].bytes == 2));
  // Three dimensions (dilated taps): [kh, kw, c] = [2, 3, 2], taps 4 bytes apart, rows 40.
  CHECK(vector_offsets(matmul_with({2, 3, 2}, {40, 4, 1}, 5), 3, 1) == std::vector<int64_t>{9, 40, 41});
  // bf16: strides in bytes, so element r + 1 is 2 bytes on within a run.
  CHECK(vector_offsets(matmul_with({2, 3}, {64, 2}, 2), 3, 2) == std::vector<int64_t>{4, 64, 66});
}

TEST_CASE("a matmul's vector pattern prints and parses back", "[program][vector]") {
  const Program p = parse_program(kProgram, "gather.tpu");
  const std::string printed = print_program(p);
  CHECK(printed.find("vector_extent=[2,10] vector_stride=[16,1] vector_start=8") != std::string::npos);
  CHECK(print_program(parse_program(printed, "again.tpu")) == printed);
}

TEST_CASE("the verifier checks a vector pattern against its tile and its buffer", "[program][vector][errors]") {
  const TargetLimits target = target_limits(load_arch("teach-4x4"));
  auto problems_of = [&](const std::string& from, const std::string& to) {
    std::string text = kProgram;
    const size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    std::string all;
    for (const auto& p : verify_program(parse_program(text, "gather.tpu"), target)) all += std::string(p.what()) + "\n";
    return all;
  };
  CHECK(problems_of("vector_start=8", "vector_start=8").empty());
  CHECK(problems_of("vector_stride=[16,1] ", "") ==
        "gather.tpu:10:1: error: mxu.matmul vector_stride has 0 entries but vector_extent has 2; give one byte stride per "
        "dimension\n");
  CHECK(problems_of("vector_start=8", "vector_start=17") ==
        "gather.tpu:10:1: error: mxu.matmul a vector of 4 elements from vector_start=17 runs past the 20 elements "
        "vector_extent spans\n");
  CHECK(problems_of("vector_start=8", "vector_start=20") ==
        "gather.tpu:10:1: error: mxu.matmul vector_start must be between 0 and 19 (the elements vector_extent spans, "
        "less one), got 20\n");
  CHECK(problems_of("vector_extent=[2,10] ", "") ==
        "gather.tpu:10:1: error: mxu.matmul vector_stride and vector_start need a vector_extent (the shape the vector's "
        "elements are read in)\n");
  CHECK(problems_of("vector_extent=[2,10]", "vector_extent=[0,10]") ==
        "gather.tpu:10:1: error: mxu.matmul vector_extent[0] must be at least 1, got 0\n");
  CHECK(problems_of("vector_stride=[16,1]", "vector_stride=[-16,1]") ==
        "gather.tpu:10:1: error: mxu.matmul vector_stride[0] must be at least 0 bytes, got -16\n");
  CHECK(problems_of("vector_stride=[16,1]", "vector_stride=[4611686018427387904,1]") ==
        "gather.tpu:10:1: error: mxu.matmul vector_extent and vector_stride span more than 2^40 elements or 2^50 bytes\n");
  // The block's rows 1 MiB apart: the second row's elements lie past the unified buffer.
  const std::string far = problems_of("vector_stride=[16,1]", "vector_stride=[1048576,1]");
  INFO(far);
  CHECK(far.find("mxu.matmul src accesses ub bytes [8, 1048582) but ub has") != std::string::npos);
}

TEST_CASE("a gathered matmul computes the same product at every fidelity", "[simulator][vector]") {
  const ArchConfig arch = load_arch("teach-4x4");
  const TargetLimits target = target_limits(arch);
  const Program program = parse_program(kProgram, "gather.tpu");
  REQUIRE(verify_program(program, target).empty());
  MachineState initial = make_machine_state(program, target);
  load_program_inputs(program, "", 7, initial);

  // Vector t is ub[8+t], ub[9+t], ub[16+t], ub[17+t]: ub byte 16 r + c holds x[r][c] for
  // c < 10 and 0 past a row's end.
  auto ub = [&](int offset) {
    const int r = offset / 16, c = offset % 16;
    return c < 10 ? static_cast<int8_t>(initial.dram[0][static_cast<size_t>(r * 10 + c)]) : int8_t{0};
  };
  auto w = [&](int r, int c) { return static_cast<int8_t>(initial.dram[1][static_cast<size_t>(r * 3 + c)]); };
  std::vector<uint8_t> expected(5 * 3 * 4);
  for (int t = 0; t < 5; ++t) {
    for (int c = 0; c < 3; ++c) {
      const int32_t sum = ub(8 + t) * w(0, c) + ub(9 + t) * w(1, c) + ub(16 + t) * w(2, c) + ub(17 + t) * w(3, c);
      std::memcpy(&expected[static_cast<size_t>((t * 3 + c) * 4)], &sum, 4);
    }
  }
  MachineState reference = initial;
  interpret_program(program, target, reference);
  CHECK(reference.dram[2] == expected);
  const FidelityRun fast = run_at_fidelity(program, arch, initial, Fidelity::Fast);
  const FidelityRun pe = run_at_fidelity(program, arch, initial, Fidelity::Pe);
  CHECK(fast.state.dram[2] == expected);
  CHECK(pe.state.dram[2] == expected);
  const std::string difference = first_difference(pe, fast);
  INFO(difference);
  CHECK(difference.empty());
  // The gathered bytes are counted as a contiguous vector's would be: K elements per vector.
  CHECK(fast.result.counters.value("ub.bytes_read") == 5 * 4);
}
