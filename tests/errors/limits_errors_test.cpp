// Input that once crashed, hung or ate memory -> a located error, at once and in little
// memory. Each case runs the real CLI with its address space held to 1 GiB (so an allocation
// sized by the input fails inside tpusim instead of succeeding) and a 20-second guard against
// hangs; each must exit 1 with the exact message and a peak resident size under 200 MB. The
// cases' inputs are in tests/errors/limits/, each with a comment on what used to happen.
// `bench/limits_regressions.sh` prints how long each takes.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "compiler/pipeline.h"
#include "ir/program.h"
#include "ir/sizes.h"
#include "test_util.h"

using namespace tpusim;

namespace {

constexpr int64_t kAddressSpace = int64_t{1} << 30;
constexpr int64_t kMaxResidentKb = 200 * 1024;

// The stderr of `tpusim ARGS`, which must fail as a user error, promptly and in little memory.
std::string bounded_error(const std::string& arguments) {
  test::BoundedResult r = test::run_tpusim_bounded(arguments, kAddressSpace, 20);
  INFO("tpusim " << arguments << "\nstderr: " << r.err << "\n" << r.seconds << " s, " << r.max_rss_kb << " KB");
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.max_rss_kb < kMaxResidentKb);
  return r.err;
}

const std::string kDir = "tests/errors/limits/";

}  // namespace

TEST_CASE("limits: a YAML file holding only ',' is an error, not an endless loop", "[limits][errors]") {
  CHECK(bounded_error("compile " + kDir + "only_comma.yaml --arch teach-4x4") ==
        kDir + "only_comma.yaml:2:1: error: malformed YAML: no value here; a description is a mapping of 'key: value' "
               "lines\n");
  CHECK(bounded_error("arch show " + kDir + "only_comma.yaml") ==
        kDir + "only_comma.yaml:2:1: error: malformed YAML: no value here; a description is a mapping of 'key: value' "
               "lines\n");
}

TEST_CASE("limits: 100,000 nested YAML sequences are named as too deep", "[limits][errors]") {
  std::string path = test::make_temp_dir("limits-deep") + "/deep.yaml";
  test::write_text_file(path, "name: " + std::string(100000, '[') + "\n");
  CHECK(bounded_error("compile " + path + " --arch teach-4x4") ==
        path + ":2:1: error: malformed YAML: nested more than 2000 levels deep (a description needs only a few)\n");
}

TEST_CASE("limits: sizes past 2^31 - 1 are refused with the key and the limit", "[limits][errors]") {
  CHECK(bounded_error("run " + kDir + "conv_out_channels_int64_max.yaml --arch teach-4x4") ==
        kDir + "conv_out_channels_int64_max.yaml:7:35: error: layers[0].conv.out_channels: must be at most 2147483647 "
               "(the largest size tpusim accepts), got 9223372036854775807\n");
  CHECK(bounded_error("run " + kDir + "conv_out_channels_2e31.yaml --arch teach-4x4") ==
        kDir + "conv_out_channels_2e31.yaml:7:35: error: layers[0].conv.out_channels: must be at most 2147483647 (the "
               "largest size tpusim accepts), got 2147483648\n");
  CHECK(bounded_error("run " + kDir + "linear_out_features_2e62.yaml --arch teach-4x4") ==
        kDir + "linear_out_features_2e62.yaml:7:37: error: layers[0].linear.out_features: must be at most 2147483647 "
               "(the largest size tpusim accepts), got 4611686018427387904\n");
  CHECK(bounded_error("run " + kDir + "conv_kernel_2e62.yaml --arch teach-4x4") ==
        kDir + "conv_kernel_2e62.yaml:7:46: error: layers[0].conv.kernel: must be at most 2147483647 (the largest size "
               "tpusim accepts), got 4611686018427387904\n");
  CHECK(bounded_error("run " + kDir + "input_shape_2e32_cubed.yaml --arch teach-4x4") ==
        kDir + "input_shape_2e32_cubed.yaml:5:15: error: inputs.x.shape[0]: must be at most 2147483647 (the largest "
               "size tpusim accepts), got 4294967296\n");
  CHECK(bounded_error("arch show teach-4x4 --set unified_buffer.bytes=9223372036854775807") ==
        "--set unified_buffer.bytes=9223372036854775807: error: unified_buffer.bytes: must be at most 4294967296 (4 "
        "GiB: the simulator holds every buffer byte in memory), got 9223372036854775807\n");
}

TEST_CASE("limits: tensors of more than 2^48 elements are refused where they are declared", "[limits][errors]") {
  CHECK(bounded_error("run " + kDir + "linear_on_1e9_by_1e9.yaml --arch teach-4x4") ==
        kDir + "linear_on_1e9_by_1e9.yaml:5:3: error: inputs.x: tensor 'x' of shape [1, 1000000000, 1000000000] has "
               "more than 2^48 elements, the most one tensor may have; use smaller dimensions\n");
  CHECK(bounded_error("run " + kDir + "conv_on_1e9_by_1e9.yaml --arch teach-4x4") ==
        kDir + "conv_on_1e9_by_1e9.yaml:5:3: error: inputs.x: tensor 'x' of shape [1, 3, 1000000000, 1000000000] has "
               "more than 2^48 elements, the most one tensor may have; use smaller dimensions\n");
  CHECK(bounded_error("run " + kDir + "tensor_1e27.tpu --arch teach-4x4") ==
        kDir + "tensor_1e27.tpu:2:15: error: tensor 'A' of shape [1000000000, 1000000000, 1000000000] has more than "
               "2^48 elements, the most one tensor may have\n");
  CHECK(bounded_error("run " + kDir + "input_shape_2e9_cubed.graph --arch teach-4x4") ==
        kDir + "input_shape_2e9_cubed.graph:3:15: error: 'x' of shape [2000000000, 2000000000, 2000000000] has more "
               "than 2^48 elements, the most one tensor may have\n");
}

TEST_CASE("limits: a run that needs more memory than --max-memory is refused before allocating", "[limits][errors]") {
  CHECK(bounded_error("run " + kDir + "weights_100_gib.yaml --arch teach-4x4") ==
        kDir + "weights_100_gib.yaml:7:5: error: layers[0].linear: the model's inputs and weights (up to 'y.w') would "
               "take 100 GiB of memory, more than --max-memory allows (" +
            bytes_text(default_max_memory_bytes()) +
            "); use smaller tensors, or raise --max-memory if this machine has the memory\n");
  CHECK(bounded_error("compile " + kDir + "weights_3_gib.yaml --arch tpu-v1 --max-memory 1GiB") ==
        kDir + "weights_3_gib.yaml:7:5: error: layers[0].linear: the model's inputs and weights (up to 'y.w') would take "
               "3 GiB of memory, more than --max-memory allows (1 GiB); use smaller tensors, or raise --max-memory if "
               "this machine has the memory\n");
  CHECK(bounded_error("run " + kDir + "tensor_4e9.tpu --arch teach-4x4 --max-memory 1GiB") ==
        kDir + "tensor_4e9.tpu: error: the simulated machine (its on-chip buffers and DRAM tensors) would take 3.73 GiB "
               "of memory, more than --max-memory allows (1 GiB); use smaller tensors, or raise --max-memory if this "
               "machine has the memory\n");
  CHECK(bounded_error("run examples/models/tiny-cnn.yaml --arch teach-4x4 --check --max-memory 8KiB") ==
        "examples/models/tiny-cnn.yaml: error: the run and its check (the simulated machine, the model's data and the "
        "reference's tensors) would take 9.86 KiB of memory, more than --max-memory allows (8 KiB); use smaller "
        "tensors, or raise --max-memory if this machine has the memory\n");
}

TEST_CASE("limits: simulated work is bounded by --max-instructions and --max-cycles", "[limits][errors]") {
  CHECK(bounded_error("run " + kDir + "repeat_2e40.tpu --arch teach-4x4") ==
        kDir + "repeat_2e40.tpu: error: the program executes 1099511627776 instructions (each iteration of a repeat "
               "counted), more than --max-instructions allows (1000000000); shorten its loops, or raise "
               "--max-instructions\n");
  CHECK(bounded_error("run " + kDir + "long_loop.tpu --arch teach-4x4 --max-cycles 1000") ==
        kDir + "long_loop.tpu: error: the simulation reached --max-cycles (1000) before the program finished; raise "
               "--max-cycles to run it longer\n");
  CHECK(bounded_error("run " + kDir + "long_loop.tpu --arch teach-4x4 --max-instructions 999999") ==
        kDir + "long_loop.tpu: error: the program executes 1000000 instructions (each iteration of a repeat counted), "
               "more than --max-instructions allows (999999); shorten its loops, or raise --max-instructions\n");
  // The address range of a huge affine term is computed without overflow, and is out of range.
  CHECK(bounded_error("run " + kDir + "repeat_address_overflow.tpu --arch teach-4x4") ==
        kDir + "repeat_address_overflow.tpu:4:3: error: dma.load dst accesses ub bytes [0, "
               "10141204801816611838837259239429) but ub has 4096 bytes (address out of range)\n");
}

TEST_CASE("limits: a compile that cannot fit the machine fails before its tiles are built", "[limits][errors]") {
  CHECK(bounded_error("compile examples/models/bert-layer.yaml --arch teach-4x4 --set mxu.operand_type=bf16") ==
        "examples/models/bert-layer.yaml:12:5: error: layers[3].attention: the program for 'bert_layer' on 'teach-4x4' "
        "needs more than 2000000 instructions, the most a compiled program may have (the count passes it at op 'attn', "
        "cut into 3145728 tiles; the compiler does not fold tile loops into repeats yet); compile for a machine with a "
        "larger array or buffers\n");
  CHECK(bounded_error("run examples/models/resnet18.yaml --arch teach-4x4") ==
        "examples/models/resnet18.yaml:24:5: error: layers[3].conv: the program for 'resnet18' on 'teach-4x4' needs "
        "more than 2000000 instructions, the most a compiled program may have (the count passes it at op "
        "'layer1.0.conv2', cut into 903168 tiles; the compiler does not fold tile loops into repeats yet); compile "
        "for a machine with a larger array or buffers\n");
}

TEST_CASE("limits: numeric flags are validated, not wrapped or clamped", "[limits][errors]") {
  CHECK(bounded_error("run examples/models/tiny-cnn.yaml --arch teach-4x4 --seed -1") ==
        "error: --seed: expected an integer from 0 to 18446744073709551615, got '-1'\n");
  CHECK(bounded_error("run examples/models/tiny-cnn.yaml --arch teach-4x4 --seed 99999999999999999999999") ==
        "error: --seed: expected an integer from 0 to 18446744073709551615, got '99999999999999999999999'\n");
  CHECK(bounded_error("run examples/models/tiny-cnn.yaml --arch teach-4x4 --max-cycles 0") ==
        "error: --max-cycles: expected an integer from 1 to 9223372036854775807, got '0'\n");
  CHECK(bounded_error("run examples/models/tiny-cnn.yaml --arch teach-4x4 --max-memory 4gb") ==
        "--max-memory: error: expected a byte size (an integer with an optional unit B, KiB, MiB, GiB, KB, MB or GB), "
        "got '4gb'; units are case-sensitive: did you mean 'GB'?\n");
  // The largest seed is a seed.
  CHECK(test::run_tpusim("run examples/models/tiny-cnn.yaml --arch teach-4x4 -q --seed 18446744073709551615").exit_code == 0);
}

namespace {

int64_t instructions_in(const std::vector<Node>& nodes) {
  int64_t n = 0;
  for (const Node& node : nodes) {
    if (node.kind == Node::Kind::Instruction) ++n;
    if (node.kind == Node::Kind::Repeat) n += instructions_in(node.body);
  }
  return n;
}

}  // namespace

TEST_CASE("limits: the tiling's instruction floor never refuses a program that fits", "[limits]") {
  // Compiled with the limit set to exactly its own size, a program compiles; one less and it
  // is refused (by the tiling's floor or by the emitter). So the floor is never above the
  // real count.
  struct Case {
    const char* model;
    const char* arch;
    std::vector<std::string> overrides;
    AttentionLowering attention;
  };
  const std::vector<Case> cases = {
      {"examples/models/tiny-cnn.yaml", "teach-4x4", {}, AttentionLowering::Flash},
      {"examples/models/tcn.yaml", "edge-32x32", {}, AttentionLowering::Flash},
      {"examples/models/attention-teach.yaml", "teach-4x4", {"mxu.operand_type=bf16"}, AttentionLowering::Flash},
      {"examples/models/attention-teach.yaml", "teach-4x4", {"mxu.operand_type=bf16"}, AttentionLowering::Materialized},
      {"examples/models/mobilenetv2.yaml", "tpu-v1", {}, AttentionLowering::Flash},
  };
  for (const Case& c : cases) {
    INFO(c.model << " on " << c.arch);
    ArchConfig arch = load_arch(c.arch, c.overrides);
    Graph graph = load_model(test::source_dir() + "/" + c.model);
    CompileOptions options;
    options.lowering.attention = c.attention;
    const int64_t size = instructions_in(compile_graph(graph, arch, options).program.body);
    options.limits.max_program_instructions = size;
    CHECK_NOTHROW(compile_graph(graph, arch, options));
    options.limits.max_program_instructions = size - 1;
    CHECK_THROWS_AS(compile_graph(graph, arch, options), Error);
  }
}

TEST_CASE("limits: an .npy file far larger than its tensor is refused before it is read", "[limits][errors]") {
  // A sparse 8 GiB file where tiny-cnn's 192-byte input belongs: refused from its size alone.
  std::string dir = test::make_temp_dir("limits-npy");
  test::write_text_file(dir + "/image.npy", "");
  std::filesystem::resize_file(dir + "/image.npy", std::uintmax_t{8} << 30);
  CHECK(bounded_error("run examples/models/tiny-cnn.yaml --arch teach-4x4 --inputs " + dir) ==
        dir + "/image.npy: error: is 8589934592 bytes, far more than the 192 bytes of data the tensor it is for holds; "
              "check the path\n");
  std::filesystem::remove_all(dir);
}

TEST_CASE("limits: reading a model is linear in its layers", "[limits]") {
  // 20,000 layers once took 250 s to read (every layer re-typed the whole graph); the guard
  // here is the bounded run's 20 seconds, far above the fraction of a second it takes now.
  std::string text = "name: chain\ntype: bf16\ninputs:\n  x: [1, 8]\nlayers:\n";
  for (int i = 0; i < 20000; ++i) text += "  - relu: {}\n";
  std::string path = test::make_temp_dir("limits-layers") + "/chain.yaml";
  test::write_text_file(path, text);
  test::BoundedResult r = test::run_tpusim_bounded("compile " + path + " --arch teach-4x4 --emit graph", kAddressSpace, 20);
  INFO(r.err << "\n" << r.seconds << " s, " << r.max_rss_kb << " KB");
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("value relu20000") != std::string::npos);
}
