// Models and machines the compiler cannot handle -> the exact message a user sees, exit code 1
// and nothing on stdout. Models and machines written for these tests are in
// tests/errors/compiler/.
#include <catch2/catch.hpp>

#include <string>

#include "test_util.h"

using tpusim::test::run_tpusim;

namespace {

// Runs the CLI and returns its stderr after checking that it failed as a user error does.
std::string user_error(const std::string& arguments) {
  auto r = run_tpusim(arguments);
  INFO(arguments << "\n" << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  return r.err;
}

const std::string kPasses = "the passes are infer-shapes, unroll, depthwise, allocate, tile, emit";

}  // namespace

TEST_CASE("a GEMM that does not fit the buffers even one output pixel at a time", "[compiler][errors]") {
  const std::string expected =
      "tests/errors/compiler/wide-conv.yaml:9:5: error: layers[0].conv: op 'squeeze' cannot be tiled for 'tiny-2x2': "
      "even one output "
      "pixel needs 8 bytes of unified buffer (two 2-element input rows and two 2-channel output rows) and 16 bytes "
      "of accumulators, but the machine has 6 and 16; use a machine with larger buffers\n";
  CHECK(user_error("compile tests/errors/compiler/wide-conv.yaml --arch tests/errors/compiler/tiny-2x2.yaml") ==
        expected);
  // `run` compiles the same way and stops at the same place.
  CHECK(user_error("run tests/errors/compiler/wide-conv.yaml --arch tests/errors/compiler/tiny-2x2.yaml") == expected);
}

TEST_CASE("vector kernels that do not fit a shrunken unified buffer", "[compiler][errors]") {
  CHECK(user_error("compile examples/models/tiny-cnn.yaml --arch teach-4x4 --set unified_buffer.bytes=64") ==
        "examples/models/tiny-cnn.yaml:25:5: error: layers[5].global_avgpool: op 'pool': one channel (16 positions) "
        "needs 170 bytes of unified buffer (with its int32/fp32 copies, double-buffered) but the machine has 64; use "
        "a larger unified_buffer\n");
  CHECK(user_error("compile examples/models/tiny-cnn.yaml --arch teach-4x4 --set unified_buffer.bytes=16") ==
        "examples/models/tiny-cnn.yaml:22:5: error: layers[4].add: op 'res': a chunk needs 20 bytes of unified buffer "
        "but the machine has 16\n");
}

TEST_CASE("a model whose type is not what the matrix unit multiplies", "[compiler][errors]") {
  CHECK(user_error("compile examples/models/tiny-cnn.yaml --arch tpu-v4-like") ==
        "examples/models/tiny-cnn.yaml:10:3: error: inputs.image: op 'conv1' multiplies int8 values but the matrix "
        "unit of 'tpu-v4-like' multiplies bf16; use a model of type bf16 (or a machine with operand_type: int8)\n");
  CHECK(user_error("compile examples/models/tcn.yaml --arch edge-32x32 --set mxu.operand_type=bf16") ==
        "examples/models/tcn.yaml:17:3: error: inputs.sequence: op 'proj' multiplies int8 values but the matrix "
        "unit of 'edge-32x32' multiplies bf16; use a model of type bf16 (or a machine with operand_type: int8)\n");
}

TEST_CASE("a machine that is not weight-stationary", "[compiler][errors]") {
  for (const std::string dataflow : {"os", "is"}) {
    DYNAMIC_SECTION(dataflow) {
      CHECK(user_error("compile examples/models/tiny-cnn.yaml --arch teach-4x4 --set mxu.dataflow=" + dataflow) ==
            "examples/models/tiny-cnn.yaml: error: the compiler emits weight-stationary programs, but arch "
            "'teach-4x4' has dataflow: " + dataflow + "; use a ws target (e.g. --set mxu.dataflow=ws) — os and is programs can "
            "be written by hand\n");
    }
  }
}

TEST_CASE("attention the compiler cannot lower for a machine is reported at its layer", "[compiler][errors][attention]") {
  const std::string model = "tests/errors/compiler/attention-window-past-keys.yaml";
  const std::string bf16 = " --arch teach-4x4 --set mxu.operand_type=bf16";
  CHECK(user_error("compile " + model + bf16) ==
        model + ":11:5: error: layers[0].attention: op 'attn': queries 8 to 11 see no key at all (window 2 over 6 keys), "
                "so their softmax is undefined; the compiler lowers attention where every block of queries sees some "
                "key — shorten the queries or widen the window\n");
  CHECK(user_error("compile " + model + " --arch teach-4x4") ==
        model + ":11:5: error: layers[0].attention: op 'attn': attention runs in floating point (its softmax needs it), "
                "but the matrix unit of 'teach-4x4' multiplies int8; use a machine with operand_type: bf16 (e.g. --set "
                "mxu.operand_type=bf16)\n");
  CHECK(user_error("compile " + model + bf16 + " --set unified_buffer.bytes=64") ==
        model + ":11:5: error: layers[0].attention: op 'attn' cannot be tiled for 'teach-4x4': "
        "even a 1 x 1 score tile needs 80 bytes of unified buffer, 40 of accumulators and two 8-byte key/value tiles in "
        "the weight buffer, but the machine has 64, 2048 and 256; use a machine with larger buffers\n");
  CHECK(user_error("compile examples/models/attention-teach.yaml" + bf16 + " --attention fast").find(
            "--attention: fast not in {flash,materialized}") != std::string::npos);
}

TEST_CASE("ops the compiler lowers only in some forms", "[compiler][errors]") {
  CHECK(user_error("compile tests/errors/compiler/broadcast-add.yaml --arch teach-4x4") ==
        "tests/errors/compiler/broadcast-add.yaml:10:5: error: layers[0].add: add 'shifted': the compiler adds "
        "tensors of the same shape only (shapes [1,4,4,4] + [4,4]); broadcast adds are not lowered yet\n");
  CHECK(user_error("compile tests/errors/compiler/gelu-int8.yaml --arch teach-4x4") ==
        "tests/errors/compiler/gelu-int8.yaml:7:5: error: layers[1].gelu: op 'act' (gelu) on int8 values is not "
        "lowered by the compiler; run the model as bf16 (--type bf16)\n");
}

TEST_CASE("compile with --print-after naming a pass that does not exist", "[compiler][errors][cli]") {
  CHECK(user_error("compile examples/models/tiny-cnn.yaml --arch teach-4x4 --print-after tiles") ==
        "error: --print-after: unknown pass 'tiles' (did you mean 'tile'?); " + kPasses + "\n");
  CHECK(user_error("compile examples/models/tiny-cnn.yaml --arch teach-4x4 --print-after infer-shape") ==
        "error: --print-after: unknown pass 'infer-shape' (did you mean 'infer-shapes'?); " + kPasses + "\n");
  CHECK(user_error("compile examples/models/tiny-cnn.yaml --arch teach-4x4 --print-after frobnicate") ==
        "error: --print-after: unknown pass 'frobnicate'; " + kPasses + "\n");
  // One bad name among good ones is still an error, before anything is printed.
  CHECK(user_error("compile examples/models/tiny-cnn.yaml --arch teach-4x4 --print-after unroll --print-after emitt") ==
        "error: --print-after: unknown pass 'emitt' (did you mean 'emit'?); " + kPasses + "\n");
}

TEST_CASE("compile: a missing model file or one of an unknown type", "[compiler][errors][cli]") {
  CHECK(user_error("compile no/such/model.yaml --arch teach-4x4") ==
        "no/such/model.yaml: error: cannot open file: no such file or directory\n");
  CHECK(user_error("compile no/such/model.graph --arch teach-4x4") ==
        "no/such/model.graph: error: cannot open file (check the path)\n");
  // Inputs are judged by their extension, whether or not the file exists; kinds tpusim does not
  // read yet say so.
  CHECK(user_error("compile examples/models/tiny-cnn.onnx --arch teach-4x4") ==
        "examples/models/tiny-cnn.onnx: error: ONNX models are not read yet; describe the model in the model format "
        "(.yaml, docs/model-format.md)\n");
  CHECK(user_error("run examples/models/tiny-cnn.onnx --arch teach-4x4") ==
        "examples/models/tiny-cnn.onnx: error: ONNX models are not read yet; describe the model in the model format "
        "(.yaml, docs/model-format.md)\n");
  CHECK(user_error("run topology.csv --arch teach-4x4") ==
        "topology.csv: error: cannot open file: no such file or directory\n");
  CHECK(user_error("compile README.md --arch teach-4x4") ==
        "README.md: error: unknown file type '.md'; tpusim reads models (.yaml, .graph, .csv) and programs (.tpu)\n");
  CHECK(user_error("run README.md --arch teach-4x4") ==
        "README.md: error: unknown file type '.md'; tpusim reads models (.yaml, .graph, .csv) and programs (.tpu)\n");
  CHECK(user_error("compile examples/models/tiny-cnn --arch teach-4x4") ==
        "examples/models/tiny-cnn: error: a file without an extension; tpusim reads models (.yaml, .graph, .csv) "
        "and programs (.tpu)\n");
  CHECK(user_error("compile examples/programs/gemm-4x4.tpu --arch teach-4x4") ==
        "examples/programs/gemm-4x4.tpu: error: is a program, not a model; run it with `tpusim run`, or give a model "
        "(.yaml, .graph, .csv)\n");
}

TEST_CASE("run: output files are checked before anything is simulated", "[errors][cli]") {
  CHECK(user_error("run examples/models/tiny-cnn.yaml --arch teach-4x4 -q --json /no/such/dir/r.json") ==
        "/no/such/dir/r.json: error: --json: cannot write here: the directory '/no/such/dir' does not exist\n");
  CHECK(user_error("run examples/programs/gemm-4x4.tpu --arch teach-4x4 -q --trace /no/such/dir/t.json") ==
        "/no/such/dir/t.json: error: --trace: cannot write here: the directory '/no/such/dir' does not exist\n");
  CHECK(user_error("run examples/programs/gemm-4x4.tpu --arch teach-4x4 -q --json examples") ==
        "examples: error: --json: is a directory; give a file name\n");
}
